"""test_tls.py - TLS in smtpd: STARTTLS, implicit TLS (465), policy, safety

Real clients against a real instance: swaks --tls and --tlsc, Python's
smtplib (starttls, SMTP_SSL), openssl s_client (-starttls smtp, session
resumption with -sess_out/-sess_in across two smtpd processes). Extra
smtpd services (587-like and 465-like) are master.cf lines on free ports
of 127.0.0.1 with -o overrides. The instance's certificate is the
self-signed one mkinstance.sh makes (or master's snakeoil one).

Also: the STARTTLS injection test (CVE-2011-0411: "STARTTLS\\r\\nRSET\\r\\n"
in one write gets no answer to RSET over TLS), 530 before STARTTLS at
level encrypt, old protocols refused, a stalled handshake that blocks
nobody else and times out, the Received: header with TLS details.
"""

import os
import re
import shutil
import smtplib
import socket
import ssl
import stat
import subprocess
import time

import pytest

import helpers
import tlshelp

SWAKS = shutil.which("swaks")
LOGLEVEL = {"smtpd_tls_loglevel": "1"}
TLS_LOG = re.compile(r"Anonymous TLS connection established from \S+\[127\.0\.0\.1\]: "
                     r"TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)")
MSG = "From: <a@localhost>\r\nTo: <root@localhost>\r\nSubject: tls\r\n\r\nover TLS\r\n"
STALL_TIMEOUT = 3


def swaks(port, *args):
    """swaks - one swaks run to root@localhost; the CompletedProcess."""
    if SWAKS is None:
        pytest.skip("swaks not installed")
    cmd = [SWAKS, "--server", "127.0.0.1:%d" % port, "--from", "a@localhost",
           "--to", "root@localhost", "--timeout", "20"] + list(args)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)


def test_starttls_swaks(inst):
    port = tlshelp.add_smtpd(inst, dict(LOGLEVEL, smtpd_tls_security_level="encrypt"))
    inst.start()
    r = swaks(port, "--tls")
    assert r.returncode == 0, r.stdout
    assert "queued as" in r.stdout
    assert "STARTTLS" in r.stdout
    inst.wait_log(TLS_LOG.pattern)
    # the first, plaintext port offers STARTTLS too (mkinstance: level may)
    with tlshelp.TlsSMTP(inst.port) as c:
        c.reply()
        assert "STARTTLS" in c.ehlo()


def test_wrappermode_swaks_and_smtp_ssl(inst):
    port = tlshelp.add_smtpd(inst, dict(LOGLEVEL, smtpd_tls_wrappermode="yes"))
    inst.start()
    r = swaks(port, "--tlsc")
    assert r.returncode == 0, r.stdout
    assert "queued as" in r.stdout
    with smtplib.SMTP_SSL("127.0.0.1", port, context=tlshelp.client_ctx(), timeout=20) as s:
        code, _ = s.ehlo("client.example")
        assert code == 250
        assert not s.has_extn("starttls")      # already TLS: not offered again
        s.sendmail("a@localhost", ["root@localhost"], MSG)
    inst.wait_log(TLS_LOG.pattern)


def test_smtplib_starttls_and_received_header(inst):
    port = tlshelp.add_smtpd(inst, dict(LOGLEVEL, smtpd_tls_received_header="yes"))
    inst.start()
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.example")
        assert s.has_extn("starttls")
        s.starttls(context=tlshelp.client_ctx())
        s.ehlo("client.example")
        assert not s.has_extn("starttls")
        s.sendmail("a@localhost", ["root@localhost"], MSG)
    files = inst.complete_files()
    assert len(files) == 1
    content = (inst.spool / "incoming" / files[0]).read_bytes()
    assert re.search(rb"\(using TLSv1\.3 with cipher TLS_\w+ \(\d+/\d+ bits\)\)", content), \
        content[:800]
    assert b"with ESMTPS id" in content


def test_encrypt_requires_starttls(inst):
    port = tlshelp.add_smtpd(inst, {"smtpd_tls_security_level": "encrypt",
                                    "smtpd_error_sleep_time": "0"})
    inst.start()
    with tlshelp.TlsSMTP(port) as c:
        c.reply()
        assert "STARTTLS" in c.ehlo()
        assert c.cmd("MAIL FROM:<a@localhost>") == (
            530, ["5.7.0 Must issue a STARTTLS command first"])
        c.starttls()
        assert "STARTTLS" not in c.ehlo()
        assert c.cmd("MAIL FROM:<a@localhost>")[0] == 250
        assert c.cmd("STARTTLS")[0] == 503     # in a transaction
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("STARTTLS") == (554, ["5.5.1 Error: TLS already active"])


def test_starttls_injection_discarded(inst):
    port = tlshelp.add_smtpd(inst, {"smtpd_helo_required": "yes"})
    inst.start()
    with tlshelp.TlsSMTP(port) as c:
        c.reply()
        c.ehlo()
        # RSET rides in the same segment as STARTTLS, in plaintext
        c.send(b"STARTTLS\r\nRSET\r\n")
        code, _ = c.reply()
        assert code == 220
        assert c.buf == b"", "a reply to the injected RSET came in plaintext"
        tls = c.wrap()
        tls.settimeout(1.5)
        with pytest.raises(socket.timeout):
            data = tls.recv(4096)
            pytest.fail("got %r after the handshake: the injected RSET was answered" % data)
        # the session starts over: HELO/EHLO again
        assert c.cmd("MAIL FROM:<a@localhost>") == (503, ["5.5.1 Error: send HELO/EHLO first"])
        c.ehlo()
        assert c.cmd("NOOP") == (250, ["2.0.0 Ok"])
    inst.wait_log(r"disconnect from \S+ ehlo=2/?\d* starttls=1 ")


def test_resumption_across_processes(inst, tmp_path):
    a = tlshelp.add_smtpd(inst, {"smtpd_tls_security_level": "may"}, maxproc=1)
    b = tlshelp.add_smtpd(inst, {"smtpd_tls_security_level": "may"}, maxproc=1)
    inst.start()
    sess = tmp_path / "sess.pem"
    for tls in ("-tls1_3", "-tls1_2"):
        rc, out = tlshelp.s_client(a, [tls, "-sess_out", str(sess)], b"EHLO x\r\nQUIT\r\n")
        assert "New, TLSv1." in out, out
        # port b is served by another smtpd process
        rc, out = tlshelp.s_client(b, [tls, "-sess_in", str(sess)], b"EHLO x\r\nQUIT\r\n")
        assert "Reused, TLSv1." in out, out
        sess.unlink()
    key = inst.root / "data" / "smtpd_tls_ticket.key"
    st = key.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size in (80, 160)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_old_protocols_refused(inst):
    port = tlshelp.add_smtpd(inst, {"smtpd_tls_wrappermode": "yes"})
    inst.start()
    ctx = tlshelp.client_ctx(maximum=ssl.TLSVersion.TLSv1_1)
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            ctx.wrap_socket(raw, server_hostname="localhost")
    inst.wait_log(r"SSL_accept error from \S+\[127\.0\.0\.1\]: .*(version|protocol)")
    # TLS 1.2 is fine
    ctx = tlshelp.client_ctx(maximum=ssl.TLSVersion.TLSv1_2)
    with smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=20) as s:
        assert s.ehlo()[0] == 250
        assert s.sock.version() == "TLSv1.2"
        assert "ECDHE" in s.sock.cipher()[0]        # forward secrecy first


def test_stalled_handshake_blocks_nobody(inst):
    port = tlshelp.add_smtpd(inst, {"smtpd_tls_wrappermode": "yes",
                                    "smtpd_starttls_timeout": "%ds" % STALL_TIMEOUT},
                             maxproc=1)
    inst.start()
    stalled = socket.create_connection(("127.0.0.1", port), timeout=30)
    # a half ClientHello: the server waits for the rest, inside its event loop
    stalled.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    try:
        t0 = time.monotonic()
        for _ in range(3):
            with smtplib.SMTP_SSL("127.0.0.1", port, context=tlshelp.client_ctx(),
                                  timeout=10) as s:
                assert s.noop()[0] == 250
        assert time.monotonic() - t0 < STALL_TIMEOUT, "sessions waited for the stalled one"
        # then the stalled one is dropped after smtpd_starttls_timeout
        stalled.settimeout(STALL_TIMEOUT + 10)
        assert stalled.recv(100) == b""
        assert time.monotonic() - t0 >= STALL_TIMEOUT - 1
    finally:
        stalled.close()
    inst.wait_log(r"SSL_accept error from \S+: timeout")


def test_snakeoil_when_no_certificate(inst):
    text = inst.main_cf.read_text()
    text = re.sub(r"(?m)^smtpd_tls_(cert|key)_file *=.*\n", "", text)
    inst.main_cf.write_text(text)
    inst.set_param("myhostname", "mx.posta.test")
    inst.start()
    crt = inst.etc / "tls" / "posta-snakeoil.crt"
    key = inst.etc / "tls" / "posta-snakeoil.key"
    assert crt.is_file() and key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    inst.wait_log(r"created self-signed TLS certificate \S+posta-snakeoil\.crt for mx\.posta\.test")
    rc, out = tlshelp.s_client(inst.port, [], b"QUIT\r\n")
    assert "CN = mx.posta.test" in out, out
    assert "TLSv1.3" in out


def test_level_none_offers_nothing(inst):
    inst.set_param("smtpd_tls_security_level", "none")
    inst.start()
    with tlshelp.TlsSMTP(inst.port) as c:
        c.reply()
        assert "STARTTLS" not in c.ehlo()
        assert c.cmd("STARTTLS")[0] == 502


def run_testssl(target, *args):
    """run_testssl - testssl.sh protocols, ciphers, FS and vulnerabilities; its output."""
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    if testssl is None:
        pytest.skip("testssl.sh not installed")
    r = subprocess.run([testssl, "--quiet", "--color", "0", "--warnings", "off",
                        "-p", "-s", "-f", "-U"] + list(args) + [target],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=600)
    return r.stdout


@pytest.mark.parametrize("wrapper", [False, True], ids=["587-starttls", "465-implicit"])
def test_testssl_finds_nothing(inst, wrapper):
    if wrapper:
        port = tlshelp.add_smtpd(inst, {"smtpd_tls_wrappermode": "yes"})
    else:
        port = tlshelp.add_smtpd(inst, {"smtpd_tls_security_level": "encrypt"})
    inst.start()
    args = [] if wrapper else ["--starttls", "smtp"]
    out = run_testssl("127.0.0.1:%d" % port, *args)
    for proto in ("SSLv2", "SSLv3", "TLS 1", "TLS 1.1"):
        assert re.search(r"(?m)^ %s +not offered" % re.escape(proto), out), (proto, out)
    assert re.search(r"(?m)^ TLS 1.3 +offered", out), out
    for kind in ("NULL ciphers", "Anonymous NULL Ciphers", "Export ciphers", "LOW: 64 Bit",
                 "Triple DES Ciphers", "Obsolete CBC ciphers"):
        assert re.search(r"(?m)^ %s.*not offered" % re.escape(kind), out), (kind, out)
    bad = [l for l in out.splitlines()
           if "VULNERABLE" in l.upper() and "NOT VULNERABLE" not in l.upper()]
    assert not bad, "\n".join(bad)
    assert re.search(r"(?m)P?FS is offered \(OK\)", out), out
