"""test_dkim_lib.py - posta's DKIM against dkimpy, and `posta dkim` itself

Independent checks of the DKIM library through the `posta dkim` command:
  - keygen writes a 0600 PEM key and prints a TXT record in strings of at
    most 255 bytes, for RSA and Ed25519;
  - messages signed by `posta dkim sign` (rsa-sha256 and ed25519-sha256,
    relaxed and simple) verify with dkimpy (Debian python3-dkim), whose
    DNS function answers with the record keygen printed; changes break
    them, and relaxed survives a relay that re-folds headers;
  - a message signed by dkimpy verifies with `posta dkim verify`;
  - the asynchronous path: `posta dkim verify` asks a dnsmasq on
    127.0.0.1 (c-ares through util/dns.h) for the key;
  - a key file readable by others is a warning, a missing one an error
    naming the file.

The command is $POSTA_BUILD/bin/posta (build/ by default). No network
beyond 127.0.0.1.
"""

import base64
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

import helpers

dkim = pytest.importorskip("dkim")

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("POSTA_BUILD", str(REPO / "build"))).resolve()
POSTA = BUILD / "bin" / "posta"
DNSMASQ = "/usr/sbin/dnsmasq"
TIMEOUT = 60
TXT_STRING_MAX = 255

MESSAGE = (b"From: Alice Example <alice@example.com>\r\n"
           b"To: bob@example.org, carol@example.net\r\n"
           b"Cc: dave@example.org\r\n"
           b"Subject: DKIM   cross-check with a long subject line that a relay may well fold\r\n"
           b"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
           b"Message-ID: <dkim-test-1@example.com>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"X-Unsigned: not covered\r\n"
           b"\r\n"
           b"Hello Bob,\r\n"
           b"\r\n"
           b"  indented line with trailing space   \r\n"
           b"tab\there\r\n"
           b"\r\n"
           b"\r\n")


def posta(*args, stdin=b"", check=True):
    """posta - run `posta ARGS`, return the CompletedProcess."""
    p = subprocess.run([str(POSTA)] + list(args), input=stdin, capture_output=True,
                       timeout=TIMEOUT)
    if b"unknown command" in p.stderr:
        pytest.fail("posta has no `dkim` command: cli/posta.c must dispatch it to cmd_dkim()")
    if check and p.returncode != 0:
        raise AssertionError("posta %s: exit %d\n%s" % (" ".join(args), p.returncode,
                                                        p.stderr.decode(errors="replace")))
    return p


def parse_record(out):
    """parse_record - (qname, TXT text, [strings]) from keygen's zone line."""
    text = out.decode()
    m = re.search(r"^(\S+)\. IN TXT \((.*?)\)", text, re.M | re.S)
    assert m, text
    strings = re.findall(r'"([^"]*)"', m.group(2))
    return m.group(1), "".join(strings), strings


def keygen(tmp_path, domain, selector, *opts):
    """keygen - a new key: (key path, qname, record)."""
    p = posta("dkim", "keygen", domain, selector, "--dir", str(tmp_path), *opts)
    key = tmp_path / ("%s.%s.key" % (domain, selector))
    assert key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    qname, record, strings = parse_record(p.stdout)
    assert all(len(s) <= TXT_STRING_MAX for s in strings)
    assert qname == "%s._domainkey.%s" % (selector, domain)
    return key, qname, record


def dkimpy_verify(msg, qname, record):
    """dkimpy_verify - dkimpy's verdict, the key served by a DNS function."""
    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        return record.encode() if n.rstrip(".") == qname else b""
    return dkim.verify(msg, dnsfunc=dnsfunc)


def sign(key, selector, msg=MESSAGE, canon="relaxed/relaxed", domain="example.com"):
    """sign - the message as `posta dkim sign` prints it."""
    return posta("dkim", "sign", "--key", str(key), "--domain", domain, "--selector", selector,
                 "--canon", canon, stdin=msg).stdout


@pytest.mark.parametrize("ktype", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple", "relaxed/simple"])
def test_dkimpy_verifies_posta(tmp_path, ktype, canon):
    key, qname, record = keygen(tmp_path, "example.com", "s1", "--type", ktype)
    assert ("k=%s" % ktype) in record
    signed = sign(key, "s1", canon=canon)
    assert signed.startswith(b"DKIM-Signature: v=1; a=%s-sha256; c=%s;"
                             % (ktype.encode(), canon.encode()))
    head = signed.split(b"\r\nFrom: ", 1)[0]     # the signature header, folded
    for line in head.split(b"\r\n"):
        assert len(line) <= 78, line
    assert re.search(rb"h=from:from:to:cc:subject:date:message-id:mime-version:\s*content-type;",
                     head), head
    assert b"x-unsigned" not in head.split(b"From:")[0].lower()
    assert b" l=" not in head and b";l=" not in head
    assert dkimpy_verify(signed, qname, record)
    # posta agrees with itself through the record
    out = posta("dkim", "verify", "--record", "%s=%s" % (qname, record), stdin=signed).stdout
    assert out.startswith(b"dkim=pass"), out

    # a changed body, a changed signed header, an added From: all fail
    assert not dkimpy_verify(signed.replace(b"Hello Bob", b"Hello Eve"), qname, record)
    assert not dkimpy_verify(signed.replace(b"Subject: DKIM", b"Subject: DKIN"), qname, record)
    added = signed.replace(b"From: Alice", b"From: Mallory <m@evil.example>\r\nFrom: Alice")
    assert not dkimpy_verify(added, qname, record)
    p = posta("dkim", "verify", "--record", "%s=%s" % (qname, record), stdin=added, check=False)
    assert p.returncode == 1 and p.stdout.startswith(b"dkim=fail"), p.stdout
    # an unsigned header may change
    assert dkimpy_verify(signed.replace(b"not covered", b"changed"), qname, record)
    # a relay that re-folds headers: relaxed header canonicalisation survives it
    refolded = signed.replace(b"that a relay may", b"that a relay\r\n may")
    assert dkimpy_verify(refolded, qname, record) == canon.startswith("relaxed")


def test_posta_verifies_dkimpy(tmp_path):
    key, qname, record = keygen(tmp_path, "example.com", "py")
    sig = dkim.sign(MESSAGE, b"py", b"example.com", key.read_bytes(),
                    canonicalize=(b"relaxed", b"simple"))
    out = posta("dkim", "verify", "--record", "%s=%s" % (qname, record), stdin=sig + MESSAGE)
    assert out.stdout.startswith(b"dkim=pass (2048-bit key) header.d=example.com"), out.stdout
    p = posta("dkim", "verify", "--record", "%s=%s" % (qname, record),
              stdin=sig + MESSAGE.replace(b"tab\there", b"tab here"), check=False)
    assert p.returncode == 1 and b"body hash did not verify" in p.stdout


def test_keygen_record_and_refusals(tmp_path):
    key, qname, record = keygen(tmp_path, "example.org", "big", "--bits", "4096")
    p = posta("dkim", "keygen", "example.org", "big", "--dir", str(tmp_path), check=False)
    assert p.returncode == 1 and b"not replaced" in p.stderr
    der = base64.b64decode(record.split("p=", 1)[1])
    assert len(der) > 500          # a 4096-bit key: the record needs several strings
    p = posta("dkim", "keygen", "example.org", "x", "--bits", "512", "--dir", str(tmp_path),
              check=False)
    assert p.returncode == 2
    # default folder: CONFIG_DIR/dkim, created 0700
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "main.cf").write_text("")
    p = posta("-c", str(conf), "dkim", "keygen", "example.net", "sel", "--type", "ed25519")
    assert (conf / "dkim" / "example.net.sel.key").is_file()
    assert stat.S_IMODE((conf / "dkim").stat().st_mode) == 0o700


def test_key_file_warnings(tmp_path):
    key, qname, record = keygen(tmp_path, "example.com", "w", "--type", "ed25519")
    os.chmod(key, 0o644)
    p = posta("dkim", "sign", "--key", str(key), "--domain", "example.com", "--selector", "w",
              stdin=MESSAGE)
    assert b"readable by others" in p.stderr
    assert dkimpy_verify(p.stdout, qname, record)
    missing = tmp_path / "nope.key"
    p = posta("dkim", "sign", "--key", str(missing), "--domain", "example.com", "--selector",
              "w", stdin=MESSAGE, check=False)
    assert p.returncode == 1 and str(missing).encode() in p.stderr


def test_verify_through_dns(tmp_path):
    """The asynchronous driver (dkim_verify_run -> dns_lookup_txt) against dnsmasq."""
    if not os.access(DNSMASQ, os.X_OK):
        pytest.skip("dnsmasq is not installed")
    key, qname, record = keygen(tmp_path, "example.com", "dns")
    port = helpers.free_dns_port()
    # dnsmasq splits nothing itself: give it the record in 255-byte strings
    # (separated by commas, unquoted: on its command line quotes stay in)
    parts = [record[i:i + TXT_STRING_MAX] for i in range(0, len(record), TXT_STRING_MAX)]
    txt = ",".join(parts)
    log = tmp_path / "dnsmasq.log"
    cmd = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
           "--pid-file", "--bind-interfaces", "--listen-address=127.0.0.1",
           "--port=%d" % port, "--cache-size=0", "--user=root", "--local=/example.com/",
           "--txt-record=%s,%s" % (qname, txt)]
    with open(log, "wb") as lf:
        proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        assert proc.poll() is None, log.read_text()
        signed = sign(key, "dns")
        out = posta("dkim", "verify", "--dns-servers", "127.0.0.1:%d" % port,
                    stdin=signed).stdout
        assert out.startswith(b"dkim=pass (2048-bit key) header.d=example.com"), out
        other = sign(key, "nokey")
        p = posta("dkim", "verify", "--dns-servers", "127.0.0.1:%d" % port, stdin=other,
                  check=False)
        assert p.returncode == 1
        assert p.stdout.startswith(b"dkim=permerror (no key for signature)"), p.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_opendkim_sha1_refused(tmp_path):
    """opendkim-testmsg signs with rsa-sha1, which RFC 8301 retired: permerror."""
    testmsg = "/usr/sbin/opendkim-testmsg"
    if not os.access(testmsg, os.X_OK):
        pytest.skip("opendkim-tools is not installed")
    key, qname, record = keygen(tmp_path, "example.com", "od")
    p = subprocess.run([testmsg, "-C", "-d", "example.com", "-s", "od", "-k", str(key)],
                       input=MESSAGE, capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert b"a=rsa-sha1" in p.stdout
    out = posta("dkim", "verify", "--record", "%s=%s" % (qname, record), stdin=p.stdout,
                check=False)
    assert out.returncode == 1
    assert out.stdout.startswith(b"dkim=permerror (unsupported algorithm)"), out.stdout
