#!/usr/bin/python3
"""make_vectors.py - DKIM test vectors signed and judged by dkimpy

Writes tests/golden/dkim/vectors/NAME.eml (a message signed by dkimpy,
then perhaps altered), NAME.dns (the key records the test's resolver
answers: "QNAME<TAB>TXT" lines; a name not listed does not exist) and
NAME.dkimpy (dkimpy's verdict for each signature, one "True"/"False" a
line). test_dkim.c checks that posta's verdicts agree (pass <=> True)
and that its full results match NAME.out.

Keys live beside this script (rsa.key, ed.key, other.key, short.key, and
rsa_traditional.key: rsa.key in the traditional format) and are created
once if missing. They are test keys, published here: never use them. Signing time is fixed (SIGN_TIME), so
re-running only changes the .eml files where the signature does (RSA
PKCS#1 v1.5 and Ed25519 are deterministic: nothing changes).

Run from anywhere: /usr/bin/python3 tests/golden/dkim/make_vectors.py
"""
import base64
import os
import time

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "vectors")
SIGN_TIME = 1700000000          # 2023-11-14: t= of every vector
DOMAIN = b"example.com"

MESSAGE = (b"Received: from client.example.com (client [192.0.2.1])\r\n"
           b"\tby mx.example.org with ESMTP\r\n"
           b"From: Joe SixPack <joe@football.example.com>\r\n"
           b"To: Suzie Q <suzie@shopping.example.net>\r\n"
           b"Subject: Is dinner ready?  \r\n"
           b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
           b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=us-ascii\r\n"
           b"\r\n"
           b"Hi.\r\n"
           b"\r\n"
           b"We lost the game.  Are you hungry yet?\t \r\n"
           b"\r\n"
           b"Joe.\r\n"
           b"\r\n"
           b"\r\n")


def key_file(name, make):
    """PEM private key NAME (created by make() when missing)."""
    path = os.path.join(HERE, name)
    if not os.path.exists(path):
        k = make()
        pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        with open(path, "wb") as f:
            f.write(pem)
    with open(path, "rb") as f:
        return f.read()


def rsa_record(pem, extra=b""):
    k = serialization.load_pem_private_key(pem, None)
    der = k.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    return b"v=DKIM1; k=rsa; " + extra + b"p=" + base64.b64encode(der)


def ed_seed(pem):
    k = serialization.load_pem_private_key(pem, None)
    raw = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                          serialization.NoEncryption())
    return base64.b64encode(raw)


def ed_record(pem):
    k = serialization.load_pem_private_key(pem, None)
    raw = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)


RSA = key_file("rsa.key", lambda: rsa.generate_private_key(65537, 2048))
OTHER = key_file("other.key", lambda: rsa.generate_private_key(65537, 2048))
SHORT = key_file("short.key", lambda: rsa.generate_private_key(65537, 768))
ED = key_file("ed.key", ed25519.Ed25519PrivateKey.generate)


def sign(msg, selector, key, alg=b"rsa-sha256", canon=(b"relaxed", b"relaxed"),
         headers=None, length=False, expire=None):
    """dkimpy's signature header for msg, made at SIGN_TIME (x= when expire)."""
    real = time.time
    time.time = lambda: SIGN_TIME
    try:
        if alg == b"ed25519-sha256":
            key = ed_seed(key)
        d = dkim.DKIM(msg)
        if expire is None:
            return d.sign(selector, DOMAIN, key, signature_algorithm=alg, canonicalize=canon,
                          include_headers=headers, length=length)
        # dkimpy's sign() has no x=: build the tag list as it does, plus x=
        pk = dkim.crypto.parse_pem_private_key(key)
        policy = dkim.CanonicalizationPolicy.from_c_value(b"/".join(canon))
        include = tuple(h.lower() for h in (headers or d.default_sign_headers()))
        d.include_headers = include
        d.signature_algorithm = alg
        d.hasher = dkim.HASH_ALGORITHMS[alg]
        body = policy.canonicalize_body(d.body)
        h = d.hasher()
        h.update(body)
        fields = [(b"v", b"1"), (b"a", alg), (b"c", policy.to_c_value()), (b"d", DOMAIN),
                  (b"s", selector), (b"t", str(SIGN_TIME).encode()),
                  (b"x", str(SIGN_TIME + expire).encode()),
                  (b"h", b" : ".join(include)), (b"bh", base64.b64encode(h.digest())),
                  (b"b", b"0" * 60)]
        return b"DKIM-Signature: " + d.gen_header(fields, include, policy, b"DKIM-Signature", pk)
    finally:
        time.time = real


def verdicts(msg, records):
    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        return records.get(n.rstrip("."), b"")
    d = dkim.DKIM(msg)
    count = len([1 for x, _ in d.headers if x.lower() == b"dkim-signature"])
    out = []
    for i in range(max(count, 1)):
        try:
            out.append(str(bool(d.verify(idx=i, dnsfunc=dnsfunc))))
        except dkim.DKIMException:
            out.append("False")
    return out


def write(name, msg, records):
    with open(os.path.join(OUT, name + ".eml"), "wb") as f:
        f.write(msg)
    with open(os.path.join(OUT, name + ".dns"), "wb") as f:
        for q, txt in sorted(records.items()):
            f.write(q.encode() + b"\t" + txt + b"\n")
    with open(os.path.join(OUT, name + ".dkimpy"), "w") as f:
        f.write("\n".join(verdicts(msg, records)) + "\n")


def write_traditional():
    """rsa_traditional.key - rsa.key as "BEGIN RSA PRIVATE KEY" (test_dkim.c signs with both)."""
    path = os.path.join(HERE, "rsa_traditional.key")
    if not os.path.exists(path):
        k = serialization.load_pem_private_key(RSA, None)
        with open(path, "wb") as f:
            f.write(k.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()))


def main():
    os.makedirs(OUT, exist_ok=True)
    write_traditional()
    rsa_dns = {"rsa._domainkey.example.com": rsa_record(RSA)}
    ed_dns = {"ed._domainkey.example.com": ed_record(ED)}
    both = dict(rsa_dns, **ed_dns)

    sig = sign(MESSAGE, b"rsa", RSA)
    write("rsa_relaxed_valid", sig + MESSAGE, rsa_dns)
    write("rsa_body_changed", sig + MESSAGE.replace(b"hungry", b"thirsty"), rsa_dns)
    write("rsa_header_changed", sig + MESSAGE.replace(b"Subject: Is dinner", b"Subject: Was dinner"),
          rsa_dns)
    # relaxed survives a relay that re-folds headers and changes white space
    write("rsa_relaxed_refolded",
          sig + MESSAGE.replace(b"Subject: Is dinner ready?  \r\n", b"Subject: Is\r\n dinner   ready?\r\n")
          .replace(b"We lost the game.  Are", b"We lost the game. Are"), rsa_dns)
    write("rsa_wrong_key", sig + MESSAGE, {"rsa._domainkey.example.com": rsa_record(OTHER)})
    write("rsa_missing_key", sig + MESSAGE, {})
    write("rsa_revoked_key", sig + MESSAGE, {"rsa._domainkey.example.com": b"v=DKIM1; k=rsa; p="})
    write("rsa_testing_key_fail", sig + MESSAGE.replace(b"hungry", b"thirsty"),
          {"rsa._domainkey.example.com": rsa_record(RSA, b"t=y; ")})

    sig = sign(MESSAGE, b"rsa", RSA, canon=(b"simple", b"simple"))
    write("rsa_simple_valid", sig + MESSAGE, rsa_dns)
    write("rsa_simple_refolded",
          sig + MESSAGE.replace(b"Subject: Is dinner ready?  \r\n", b"Subject: Is\r\n dinner ready?  \r\n"),
          rsa_dns)
    write("rsa_simple_body_ws", sig + MESSAGE.replace(b"yet?\t \r\n", b"yet?\r\n"), rsa_dns)
    sig = sign(MESSAGE, b"rsa", RSA, canon=(b"relaxed", b"simple"))
    write("rsa_relaxed_simple", sig + MESSAGE, rsa_dns)
    write("rsa_relaxed_simple_trailing", sig + MESSAGE + b"\r\n\r\n", rsa_dns)

    sig = sign(MESSAGE, b"rsa", RSA, expire=3600)
    write("rsa_expired", sig + MESSAGE, rsa_dns)

    sig = sign(MESSAGE, b"rsa", RSA, length=True)
    write("rsa_length_appended", sig + MESSAGE + b"Buy cheap pills now!\r\n", rsa_dns)
    write("rsa_length_changed", sig + MESSAGE.replace(b"Joe.", b"Bob."), rsa_dns)

    hdrs = [b"from", b"from", b"to", b"subject", b"date", b"message-id"]
    sig = sign(MESSAGE, b"rsa", RSA, headers=hdrs)
    write("rsa_oversigned_valid", sig + MESSAGE, rsa_dns)
    write("rsa_oversigned_from_added", sig + b"From: Evil <evil@attacker.example>\r\n" + MESSAGE, rsa_dns)
    write("rsa_oversigned_from_appended",
          sig + MESSAGE.replace(b"MIME-Version", b"From: Evil <evil@attacker.example>\r\nMIME-Version"),
          rsa_dns)
    hdrs = [b"from", b"to", b"subject"]
    sig = sign(MESSAGE, b"rsa", RSA, headers=hdrs)
    write("rsa_unsigned_header_changed", sig + MESSAGE.replace(b"text/plain", b"text/html"), rsa_dns)

    sig = sign(MESSAGE, b"short", SHORT)
    write("rsa_short_key", sig + MESSAGE, {"short._domainkey.example.com": rsa_record(SHORT)})

    sig = sign(MESSAGE, b"ed", ED, alg=b"ed25519-sha256")
    write("ed25519_valid", sig + MESSAGE, ed_dns)
    write("ed25519_body_changed", sig + MESSAGE.replace(b"hungry", b"thirsty"), ed_dns)
    write("ed25519_header_changed", sig + MESSAGE.replace(b"Suzie Q", b"Suzie R"), ed_dns)
    sig = sign(MESSAGE, b"ed", ED, alg=b"ed25519-sha256", canon=(b"simple", b"simple"))
    write("ed25519_simple_valid", sig + MESSAGE, ed_dns)

    # two signatures: ed25519 on top of rsa, the body then changed for neither / both
    s1 = sign(MESSAGE, b"rsa", RSA)
    s2 = sign(s1 + MESSAGE, b"ed", ED, alg=b"ed25519-sha256")
    write("two_signatures_valid", s2 + s1 + MESSAGE, both)
    write("two_signatures_one_key_missing", s2 + s1 + MESSAGE, rsa_dns)

    write("unsigned", MESSAGE, {})


if __name__ == "__main__":
    main()
