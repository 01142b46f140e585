"""test_dkim_interop.py - posta's DKIM signatures, after a relay hop that
re-folds the header, judged by independent verifiers (issue 7)

A lab (netlab.Lab) with its own DNS server (dnsmasq at 10.77.0.53, which
publishes the test's key as sel._domainkey.example.com TXT) and four
hosts:

  signer    10.77.0.10  posta, signing (dkim_signing_table, a key made by
                        `posta dkim keygen`, rsa-sha256 or ed25519-sha256)
                        and sending everything to relayhost [10.77.0.20]:25
  relay     10.77.0.20  peers/refold_relay.py: re-folds every header field
            10.77.0.21  (other width, TAB <-> SPACE, WSP runs collapsed and
                        extended; body untouched) and sends the same bytes
                        to a capture peer (10.77.0.21:25) and to the mx
  mx        10.77.0.40  a second posta that verifies DKIM (the relay is not
                        in its mynetworks) and delivers to a file
  verifier  10.77.0.30  where the independent verifiers run: dkimpy's
                        `dkimverify` (Debian python3-dkim, dnspython) and
                        `opendkim-testmsg` (opendkim-tools, libopendkim);
                        both read /etc/resolv.conf, which `ip netns exec`
                        replaces by /etc/netns/NS/resolv.conf (nameserver
                        10.77.0.53), so the key comes from the test's DNS

For each algorithm, with the default relaxed/relaxed canonicalization:
the message as posta sent it and the message after the hop both verify
with dkimverify, opendkim-testmsg and `posta dkim verify` (through the
DNS server), the mx says dkim=pass, and a changed body or a changed word
of a signed header field fails everywhere.
With dkim_canonicalization = simple/simple (the negative control) the
message as posta sent it verifies, and after the hop every verifier
rejects it (dkim=fail at the mx): the hop really changed the signed
header fields, and the verifiers really judge them.

Cleanup (netlab.Lab.close and make_posta, whatever happened): every
process the test started is killed by PID, the namespaces and their
/etc/netns/NS folders are removed.

DIAGNOSTICS: failures quote the verifier's output, the relay's and the
peers' logs, posta's logs and dnsmasq's query log (DIR/lab/dns/).
SECURITY: needs root (namespaces); nothing listens outside the lab's
namespaces.
"""

import email.utils
import os
import re
import subprocess

import pytest

import conftest
import helpers
import netlab

pytestmark = pytest.mark.delivery

DKIMVERIFY = "/usr/bin/dkimverify"
TESTMSG = "/usr/sbin/opendkim-testmsg"
DOMAIN = "example.com"
RCPT_DOMAIN = "example.net"
RCPT = "dkimcheck@" + RCPT_DOMAIN
SENDER = "alice@" + DOMAIN
SIGNER, RELAY, CAPTURE, VERIFIER, MX = "10", "20", "21", "30", "40"
SMTP = netlab.SMTP_PORT
TXT_STRING_MAX = 255
WAIT = 20.0
VERIFY_TIMEOUT = 30
DROP_MODE = 0o1777
REFOLD_WIDTH = 38
CRLF = b"\r\n"
HEADER_END = b"\r\n\r\n"

# Signed header fields written so that a relay has work to do: long, with
# runs of spaces, lists after "," and ";". The body has a line that must be
# dot-stuffed on both hops, trailing white space and a TAB.
SUBJECT = ("DKIM interop:  a subject line long enough that any relay will fold it,"
           " with  double  spaces")
BODY = (b"Hello Bob,\r\n"
        b"\r\n"
        b".a line that starts with a dot\r\n"
        b"  indented, with trailing space   \r\n"
        b"tab\there\r\n"
        b"\r\n"
        b"Regards, Alice\r\n")


def message(token):
    """message - the test message (CRLF), its Message-ID made of token."""
    return ("From: Alice Example <%s>\r\n"
            "To: Dkim Check <%s>,\r\n"
            " Other Reader <other@%s>\r\n"
            "Cc: carol@%s, dave@%s\r\n"
            "Subject: %s\r\n"
            "Date: %s\r\n"
            "Message-ID: <%s@%s>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8;\r\n\tformat=flowed\r\n"
            "\r\n" % (SENDER, RCPT, RCPT_DOMAIN, RCPT_DOMAIN, RCPT_DOMAIN, SUBJECT,
                      email.utils.formatdate(localtime=False), token, DOMAIN)).encode() + BODY


def keygen(folder, selector, ktype):
    """keygen - `posta dkim keygen` for DOMAIN: (key path, qname, record)."""
    key, qname, record = helpers.dkim_keygen(conftest.POSTA, folder, DOMAIN, selector, ktype)
    assert ("k=%s" % ktype) in record, record
    return key, qname, record


def split(msg):
    """split - (header block, body) of a CRLF message."""
    head, sep, body = msg.partition(HEADER_END)
    assert sep, "no end of header in %r" % msg[:300]
    return head, body


def fields(head):
    """fields - [(name lower, raw field with its folding)] of a header block."""
    out = []
    for line in head.split(CRLF):
        if line[:1] in (b" ", b"\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + CRLF + line)
        else:
            out.append((line.split(b":", 1)[0].strip().lower(), line))
    return out


def field(msg, name):
    """field - the one raw field called name (lower case) of msg."""
    found = [f for n, f in fields(split(msg)[0]) if n == name]
    assert len(found) == 1, (name, found)
    return found[0]


def change_body(msg):
    """change_body - msg with one letter of its body changed."""
    head, body = split(msg)
    changed = body.replace(b"Regards, Alice", b"Regards, Alicf")
    assert changed != body
    return head + HEADER_END + changed


def change_subject(msg):
    """change_subject - msg with one letter of its (signed) Subject changed."""
    head, body = split(msg)
    changed = head.replace(b"spaces", b"spaced")
    assert changed != head and b"spaced" in field(changed + HEADER_END, b"subject")
    return changed + HEADER_END + body


class Interop:
    """Interop - the lab of this file: DNS, signer, relay, capture, mx, verifier."""

    def __init__(self, lab, make_posta, tmp_path, ktype, canon):
        self.lab = lab
        self.selector = "s%s" % ktype[:3]
        self.key, self.qname, self.record = keygen(tmp_path / "keys", self.selector, ktype)
        self.dns = lab.dns()
        signer_host = lab.host("signer", SIGNER)
        relay_host = lab.host("relay", RELAY, CAPTURE)
        self.verifier = lab.host("verifier", VERIFIER)
        mx_host = lab.host("mx", MX)
        # dnsmasq takes a long TXT as comma-separated strings of <= 255 bytes
        parts = [self.record[i:i + TXT_STRING_MAX]
                 for i in range(0, len(self.record), TXT_STRING_MAX)]
        self.dns.args += ["--local=/%s/" % DOMAIN, "--local=/%s/" % RCPT_DOMAIN,
                          "--txt-record=%s,%s" % (self.qname, ",".join(parts))]
        self.dns.start()
        self.relay_addr = relay_host.addrs[0]
        capture_addr = relay_host.addrs[1]
        mx_addr = mx_host.addr
        self.capture = netlab.Peer(lab, lab.root / "capture", "capture.py", host=relay_host,
                                   listen="%s:%d" % (capture_addr, SMTP))
        self.mx = make_posta("mx", host=mx_host, hostname="mx.%s" % RCPT_DOMAIN,
                             mydestination="%s, $myhostname, localhost" % RCPT_DOMAIN,
                             smtp=False)
        # the relay is a stranger: its mail is judged
        self.mx.set_param("mynetworks", "127.0.0.0/8")
        self.mx.set_param("smtpd_error_sleep_time", "0s")
        for check in ("spf_verify", "spf_helo_verify", "dmarc_verify"):
            self.mx.set_param(check, "no")
        self.mx.set_param("dkim_verify", "yes")
        drop = tmp_path / "drop"
        drop.mkdir()
        os.chmod(drop, DROP_MODE)
        self.mbox = drop / "dkimcheck"
        self.mx.add_alias(RCPT.split("@")[0], str(self.mbox))
        self.mx.start()
        lab.wait_reachable(relay_host, mx_addr, SMTP)
        self.relay = netlab.Peer(lab, lab.root / "relay", "refold_relay.py", host=relay_host,
                                 listen="%s:%d" % (self.relay_addr, SMTP),
                                 args=["--next", "%s:%d" % (capture_addr, SMTP),
                                       "--next", "%s:%d" % (mx_addr, SMTP),
                                       "--width", str(REFOLD_WIDTH)])
        table = tmp_path / "dkim_domains"
        table.write_text("%s %s:%s\n" % (DOMAIN, self.selector, self.key))
        self.signer = make_posta("signer", host=signer_host, hostname="mail.%s" % DOMAIN,
                                 public=False)
        self.signer.set_param("relayhost", "[%s]:%d" % (self.relay_addr, SMTP))
        self.signer.set_param("dkim_signing_table", "texthash:%s" % table)
        self.signer.set_param("smtpd_error_sleep_time", "0s")
        if canon is not None:
            self.signer.set_param("dkim_canonicalization", canon)
        self.signer.start()
        self.signer.wait_log(r"DKIM signing", timeout=WAIT)
        lab.wait_reachable(signer_host, self.relay_addr, SMTP)
        lab.wait_reachable(self.verifier, self.dns.addr, netlab.DNS_PORT)

    def context(self):
        """context - the logs a failure should show."""
        return ("signer log:\n%s\nmx log:\n%s\nrelay:\n%s\ndnsmasq:\n%s" % (
            self.signer.log()[-3000:], self.mx.log()[-3000:], self.relay.output(),
            self.dns.log.read_text(errors="replace")[-1500:]))

    def send(self):
        """send - one message from a mynetworks client of the signer; the (sent, relayed) pair.

        sent: the message as posta handed it to the relay; relayed: the
        message as the capture peer received it after the hop.
        """
        token = helpers.token("interop")
        with self.signer.smtp(source="127.0.0.1") as c:
            refused = c.sendmail(SENDER, [RCPT], message(token))
        assert refused == {}, refused
        got = self.capture.wait_messages(1, WAIT, self.context)
        assert len(got) == 1, got
        # the relay records its message once every next hop has answered
        hop = self.relay.wait_messages(1, WAIT, self.context)
        assert hop[0]["reply"].startswith("250"), hop[0]
        sent_raw = hop[0]["raw"]
        sent = netlab.unstuff(sent_raw)
        relayed = netlab.unstuff(got[0]["raw"])
        for raw in (sent_raw, got[0]["raw"]):
            assert not netlab.wire_problems(raw), netlab.wire_problems(raw)
        assert token.encode() in sent and token.encode() in relayed
        return sent, relayed

    def mx_verdict(self, relayed):
        """mx_verdict - the mx's Authentication-Results field (unfolded).

        relayed: the capture peer's copy; the mx must have got the same
        re-folded header (its mailbox holds it with LF line ends).
        """
        def delivered():
            msgs = helpers.read_mbox(self.mbox)
            return msgs[0] if msgs else None
        m = self.mx.wait_for(delivered, "delivery to %s at the mx" % self.mbox)
        head = split(relayed)[0].replace(CRLF, b"\n")
        assert head in self.mbox.read_bytes(), "the mx did not get the re-folded header"
        ars = [re.sub(r"\s+", " ", str(v)) for v in m.get_all("Authentication-Results", [])]
        ours = [a for a in ars if a.startswith("mx.%s" % RCPT_DOMAIN)]
        assert len(ours) == 1, (ars, self.mx.log()[-3000:])
        return ours[0]


def verifier_cmd(interop, tool):
    """verifier_cmd - the command line of one verifier, run in the verifier host."""
    if tool == "dkimverify":
        return interop.verifier.cmd([DKIMVERIFY])
    if tool == "opendkim-testmsg":
        return interop.verifier.cmd([TESTMSG])
    return interop.verifier.cmd([str(conftest.POSTA), "dkim", "verify", "--dns-servers",
                                 "%s:%d" % (interop.dns.addr, netlab.DNS_PORT)])


def verify(interop, tool, msg):
    """verify - (passed, output) of one verifier on msg, resolving through the test's DNS.

    dkimverify: exit 0 and "signature ok"; opendkim-testmsg (verify mode:
    no -d/-k/-s): exit 0 and no output at all; posta dkim verify: exit 0
    and "dkim=pass".
    """
    p = subprocess.run(verifier_cmd(interop, tool), input=msg, capture_output=True,
                       timeout=VERIFY_TIMEOUT)
    out = (p.stdout + p.stderr).decode(errors="replace")
    if tool == "dkimverify":
        ok = p.returncode == 0 and p.stdout.strip() == b"signature ok"
    elif tool == "opendkim-testmsg":
        ok = p.returncode == 0 and not out.strip()
    else:
        ok = p.returncode == 0 and p.stdout.startswith(b"dkim=pass")
    return ok, "%s exit %d: %s" % (tool, p.returncode, out[-1500:])


TOOLS = ("dkimverify", "opendkim-testmsg", "posta")


def require_tools():
    """require_tools - fail (not skip) when an independent verifier is not installed."""
    for path, pkg in ((DKIMVERIFY, "python3-dkim"), (TESTMSG, "opendkim-tools")):
        assert os.access(path, os.X_OK), "%s missing: install Debian %s (scripts/deps.sh)" % (
            path, pkg)


def check_refolded(sent, relayed):
    """check_refolded - the hop changed the folding of signed fields, never the body."""
    assert split(relayed)[1] == split(sent)[1], "the relay changed the body"
    for name in (b"subject", b"to", b"content-type", b"dkim-signature"):
        before, after = field(sent, name), field(relayed, name)
        assert before != after, "the relay left %s as it was: %r" % (name, before)
        # ... and only its white space
        assert re.sub(rb"\s+", b"", before) == re.sub(rb"\s+", b"", after), (before, after)
    assert relayed.startswith(b"Received: from "), relayed[:200]


def assert_dns_used(interop):
    """assert_dns_used - the verifier host asked the test's DNS server for the key."""
    log = interop.dns.log.read_text(errors="replace")
    want = "query[TXT] %s from %s.%s" % (interop.qname, netlab.SUBNET, VERIFIER)
    assert want in log, "no %r in dnsmasq's log:\n%s" % (want, log[-2000:])


@pytest.mark.parametrize("ktype", ["rsa", "ed25519"])
def test_relaxed_signature_survives_refolding_relay(lab, make_posta, tmp_path, ktype):
    require_tools()
    interop = Interop(lab, make_posta, tmp_path, ktype, None)   # the default: relaxed/relaxed
    sent, relayed = interop.send()
    sig = field(sent, b"dkim-signature")
    assert re.search(rb"a=%s-sha256\s*;" % ktype.encode(), sig), sig
    assert re.search(rb"c=relaxed/relaxed\s*;", sig), sig
    assert re.search(rb"d=%s\s*;" % DOMAIN.encode(), sig) and b" l=" not in sig, sig
    check_refolded(sent, relayed)
    for tool in TOOLS:
        for what, msg in (("as posta sent it", sent), ("after the re-folding hop", relayed)):
            ok, out = verify(interop, tool, msg)
            assert ok, "%s: %s rejects the %s signature %s\n%s\n%s" % (
                ktype, tool, ktype, what, out, msg.decode(errors="replace"))
        ok, out = verify(interop, tool, change_body(relayed))
        assert not ok, "%s accepts a changed body: %s" % (tool, out)
        ok, out = verify(interop, tool, change_subject(relayed))
        assert not ok, "%s accepts a changed Subject: %s" % (tool, out)
    assert_dns_used(interop)
    ar = interop.mx_verdict(relayed)
    assert re.search(r"\bdkim=pass\b", ar) and ("header.d=%s" % DOMAIN) in ar, ar
    interop.signer.wait_queue_empty()


@pytest.mark.parametrize("ktype", ["rsa", "ed25519"])
def test_simple_signature_broken_by_refolding_relay(lab, make_posta, tmp_path, ktype):
    """The negative control: simple header canonicalization does not survive the hop."""
    require_tools()
    interop = Interop(lab, make_posta, tmp_path, ktype, "simple/simple")
    sent, relayed = interop.send()
    sig = field(sent, b"dkim-signature")
    assert re.search(rb"a=%s-sha256\s*;" % ktype.encode(), sig), sig
    assert re.search(rb"c=simple/simple\s*;", sig), sig
    check_refolded(sent, relayed)
    for tool in TOOLS:
        ok, out = verify(interop, tool, sent)
        assert ok, "%s: %s rejects the simple signature before the hop\n%s" % (ktype, tool, out)
        ok, out = verify(interop, tool, relayed)
        assert not ok, "%s: %s accepts a simple signature after re-folding\n%s" % (
            ktype, tool, out)
        ok, out = verify(interop, tool, change_body(sent))
        assert not ok, "%s accepts a changed body: %s" % (tool, out)
    assert_dns_used(interop)
    ar = interop.mx_verdict(relayed)
    assert re.search(r"\bdkim=fail\b", ar), ar
    interop.signer.wait_queue_empty()
