#!/usr/bin/python3
"""check_pyspf.py - run pyspf (Debian python3-spf) over the SPF golden table

Reads zone.txt and cases.txt next to this script, answers pyspf's DNS
questions from zone.txt (by replacing spf.DNSLookup, the hook pyspf's own
test suite uses) and checks that pyspf's result, and its explanation where
the table gives one, equal the table's. Exit status 0 when all agree.

Explanations are compared ignoring letter case: pyspf writes the hex
nibbles of an IPv6 %{i} in upper case ("D.B.8"), where the examples of
RFC 7208 section 7.4 (and posta) use lower case. The results themselves
are compared exactly.

    /usr/bin/python3 tests/golden/spf/check_pyspf.py
"""
import ipaddress
import os
import sys

import spf

HERE = os.path.dirname(os.path.abspath(__file__))


def load_zone(path):
    """name (lower case) -> list of (type, data)"""
    zone = {}
    with open(path, encoding="utf-8") as fp:
        for line in fp:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, rtype, data = line.split("\t", 2)
            if rtype == "PTR":
                name = ipaddress.ip_address(name).reverse_pointer
            zone.setdefault(name.lower(), []).append((rtype, data))
    return zone


def make_lookup(zone):
    def lookup(name, qtype, strict=True, timeout=None):
        name = name.rstrip(".").lower()
        recs = zone.get(name, [])
        if any(t == "SERVFAIL" for t, _ in recs):
            raise spf.TempError("DNS SERVFAIL for " + name)
        out = []
        for rtype, data in recs:
            if rtype != qtype:
                continue
            if rtype == "TXT":
                out.append(((name, "TXT"), [data.encode()]))
            elif rtype == "MX":
                pref, host = data.split()
                out.append(((name, "MX"), (int(pref), host)))
            else:
                out.append(((name, rtype), data))
        return out
    return lookup


def main():
    zone = load_zone(os.path.join(HERE, "zone.txt"))
    spf.DNSLookup = make_lookup(zone)
    bad = total = 0
    with open(os.path.join(HERE, "cases.txt"), encoding="utf-8") as fp:
        for lineno, line in enumerate(fp, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            f = line.split("\t")
            ip, sender, helo, scope, want = f[:5]
            want_exp = f[5] if len(f) > 5 else None
            if sender == "-" or scope == "helo":
                sender = "postmaster@" + helo
            q = spf.query(i=ip, s=sender, h=helo, receiver="mx.receiver.test",
                          querytime=0)
            res, _code, exp = q.check()
            total += 1
            ok = res == want and (want_exp is None or exp.lower() == want_exp.lower())
            if not ok:
                bad += 1
                print("cases.txt:%d: %s %s %s %s: table says %s%s, pyspf says %s (%s)"
                      % (lineno, ip, sender, helo, scope, want,
                         "" if want_exp is None else " (" + want_exp + ")", res, exp))
    print("%d cases, %d disagree with pyspf %s" % (total, bad, spf.__version__))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
