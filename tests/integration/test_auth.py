"""test_auth.py - SMTP AUTH in smtpd with real Dovecot and real Cyrus sasldb

The instance gets a 587-like service (the course's stanza: level encrypt,
AUTH through Dovecot's socket at private/auth, only authenticated clients
relay) and a 465-like one (wrappermode); the test's own Dovecot serves
the auth socket (passwd-file users), or a sasldb2 made with saslpasswd2
backs smtpd_sasl_type = cyrus.

Clients: swaks (--tls/--tlsc with --auth PLAIN, LOGIN, CRAM-MD5), Python
smtplib (starttls + login + send_message, SMTP_SSL), curl --ssl-reqd with
--user. Refusals: AUTH before STARTTLS, plaintext mechanisms before TLS,
relaying without AUTH (587) and from outside mynetworks (25), a wrong
password (535 after the error sleep, a log line that fail2ban's postfix
filter in mode auth matches, checked with fail2ban-regex), too many
failures (421). The RFC 4954 dialogue details ("*" cancels, 503 when
already authenticated) are checked on the raw protocol.
"""

import base64
import email.message
import re
import shutil
import smtplib
import subprocess
import time

import pytest

import conftest
import helpers
import tlshelp

SWAKS = shutil.which("swaks")
CURL = shutil.which("curl")
FAIL2BAN_REGEX = shutil.which("fail2ban-regex")
USER, PASSWORD = "alice", "s3cret-pw"
REMOTE = "someone@remote.example"       # relaying: not a local domain
ERROR_SLEEP = 2


def submission_opts(**extra):
    """submission_opts - the course's 587 stanza (plus extra -o settings)."""
    opts = {
        "smtpd_tls_security_level": "encrypt",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": "private/auth",
        "smtpd_relay_restrictions": "permit_sasl_authenticated,reject",
    }
    opts.update(extra)
    return opts


@pytest.fixture
def dovecot(inst, tmp_path):
    """dovecot - a running Dovecot whose auth socket is the instance's private/auth."""
    if shutil.which("dovecot") is None and not tlshelp.os.path.exists(tlshelp.DOVECOT):
        pytest.skip("dovecot not installed (scripts/deps.sh test)")
    d = tlshelp.DovecotAuth(tmp_path / "dovecot", inst.spool / "private" / "auth",
                            {USER: PASSWORD, "bob": "other-pw"})
    yield d
    d.stop()


def started(inst, dovecot, **extra):
    """started - add a 587-like and a 465-like service, start all; (587, 465)."""
    sub = tlshelp.add_smtpd(inst, submission_opts(**extra))
    smtps = tlshelp.add_smtpd(inst, submission_opts(smtpd_tls_wrappermode="yes",
                                                    smtpd_tls_security_level="", **extra))
    # the socket is there before smtpd first looks for it
    dovecot.start()
    inst.start()
    return sub, smtps


def swaks(port, *args):
    """swaks - one swaks run to REMOTE; the CompletedProcess."""
    if SWAKS is None:
        pytest.skip("swaks not installed")
    cmd = [SWAKS, "--server", "127.0.0.1:%d" % port, "--from", "alice@localhost",
           "--to", REMOTE, "--timeout", "20"] + list(args)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)


def message():
    """message - a small email.message.EmailMessage."""
    m = email.message.EmailMessage()
    m["From"] = "alice@localhost"
    m["To"] = REMOTE
    m["Subject"] = helpers.token("auth")
    m.set_content("submitted with a password\n")
    return m


def b64(text):
    """b64 - base64 of text, as an ASCII string."""
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks_starttls_auth_dovecot(inst, dovecot, mech):
    sub, _ = started(inst, dovecot)
    r = swaks(sub, "--tls", "--auth", mech, "--auth-user", USER, "--auth-password", PASSWORD)
    assert r.returncode == 0, r.stdout + dovecot.logtext()
    assert "235 2.7.0 Authentication successful" in r.stdout
    assert "queued as" in r.stdout
    inst.wait_log(r": client=\S+\[127\.0\.0\.1\], sasl_method=%s, sasl_username=%s$"
                  % (mech, USER))


def test_swaks_tlsc_465(inst, dovecot):
    _, smtps = started(inst, dovecot)
    r = swaks(smtps, "--tlsc", "--auth", "LOGIN", "--auth-user", USER,
              "--auth-password", PASSWORD)
    assert r.returncode == 0, r.stdout
    assert "queued as" in r.stdout


def test_smtplib_login_587_and_465(inst, dovecot):
    sub, smtps = started(inst, dovecot, smtpd_sasl_authenticated_header="yes")
    with smtplib.SMTP("127.0.0.1", sub, timeout=20) as s:
        s.ehlo("client.example")
        assert not s.has_extn("auth"), "AUTH offered before STARTTLS"
        s.starttls(context=tlshelp.client_ctx())
        s.ehlo("client.example")
        assert "PLAIN" in s.esmtp_features["auth"].split()
        s.login(USER, PASSWORD)
        s.send_message(message())
    with smtplib.SMTP_SSL("127.0.0.1", smtps, context=tlshelp.client_ctx(), timeout=20) as s:
        s.login(USER, PASSWORD)
        s.send_message(message())
    files = inst.complete_files()
    assert len(files) == 2
    for f in files:
        content = (inst.spool / "incoming" / f).read_bytes()
        assert b"(Authenticated sender: alice)" in content
        assert b"with ESMTPSA id" in content


def test_curl_ssl_reqd_user(inst, dovecot, tmp_path):
    if CURL is None:
        pytest.skip("curl not installed")
    sub, _ = started(inst, dovecot)
    mail = tmp_path / "mail.txt"
    mail.write_bytes(b"From: alice@localhost\r\nTo: %s\r\nSubject: curl\r\n\r\nhi\r\n"
                     % REMOTE.encode())
    r = subprocess.run([CURL, "-sS", "--ssl-reqd", "-k", "--url", "smtp://127.0.0.1:%d" % sub,
                        "--mail-from", "alice@localhost", "--mail-rcpt", REMOTE,
                        "--user", "%s:%s" % (USER, PASSWORD), "--upload-file", str(mail), "-v"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    assert "235 2.7.0" in r.stdout
    assert len(inst.complete_files()) == 1


def test_auth_refused_before_starttls(inst, dovecot):
    sub, _ = started(inst, dovecot)
    with tlshelp.TlsSMTP(sub) as c:
        c.reply()
        assert tlshelp.auth_keyword(c.ehlo()) is None
        assert c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD))) == (
            530, ["5.7.0 Must issue a STARTTLS command first"])
        c.starttls()
        assert "PLAIN" in tlshelp.auth_keyword(c.ehlo())


def test_plaintext_mechanisms_need_tls(inst, dovecot):
    """posta's default noplaintext: PLAIN and LOGIN only after STARTTLS."""
    inst.set_param("smtpd_sasl_auth_enable", "yes")
    inst.set_param("smtpd_sasl_type", "dovecot")
    inst.set_param("smtpd_sasl_path", "private/auth")
    inst.set_param("smtpd_error_sleep_time", "0")
    dovecot.start()
    inst.start()
    with tlshelp.TlsSMTP(inst.port) as c:
        c.reply()
        assert tlshelp.auth_keyword(c.ehlo()) == ["CRAM-MD5"]
        assert c.cmd("AUTH PLAIN")[0] == 504
        c.starttls()
        assert tlshelp.auth_keyword(c.ehlo()) == ["PLAIN", "LOGIN", "CRAM-MD5"]
        code, text = c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD)))
        assert (code, text) == (235, ["2.7.0 Authentication successful"])
        assert c.cmd("AUTH LOGIN")[0] == 503           # already authenticated
        # authenticated clients may relay on 25 too (permit_sasl_authenticated)
        assert c.cmd("MAIL FROM:<alice@localhost> AUTH=<>")[0] == 250
        assert c.cmd("RCPT TO:<%s>" % REMOTE)[0] == 250
        assert c.cmd("AUTH LOGIN")[0] == 503           # in a transaction


def test_auth_dialogue(inst, dovecot):
    sub, _ = started(inst, dovecot, smtpd_error_sleep_time="0", broken_sasl_auth_clients="yes")
    with tlshelp.TlsSMTP(sub) as c:
        c.reply()
        c.ehlo()
        c.starttls()
        kws = c.ehlo()
        assert "AUTH=PLAIN LOGIN CRAM-MD5" in kws
        assert c.cmd("AUTH X-UNKNOWN") == (504, ["5.5.4 Unsupported authentication mechanism"])
        assert c.cmd("AUTH LOGIN") == (334, [b64("Username:")])
        assert c.cmd("*") == (501, ["5.0.0 Authentication aborted"])
        assert c.cmd("AUTH PLAIN") == (334, [""])
        assert c.cmd(b64("\0%s\0%s" % (USER, PASSWORD))) == (
            235, ["2.7.0 Authentication successful"])
        assert c.cmd("MAIL FROM:<alice@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<%s>" % REMOTE)[0] == 250
    inst.wait_log(r"disconnect from .* auth=1/3 ")


def test_relay_refused_without_auth_587(inst, dovecot):
    sub, _ = started(inst, dovecot, smtpd_error_sleep_time="0")
    with tlshelp.TlsSMTP(sub) as c:
        c.reply()
        c.ehlo()
        c.starttls()
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@localhost>")[0] == 250
        code, text = c.cmd("RCPT TO:<%s>" % REMOTE)
        # smtpd_relay_restrictions = permit_sasl_authenticated, reject
        assert code == 554 and text[0].startswith("5.7.1 <%s>: " % REMOTE), (code, text)


def test_relay_refused_outside_mynetworks_25(inst):
    inst.set_param("mynetworks", "192.0.2.0/24")
    inst.set_param("smtpd_error_sleep_time", "0")
    inst.start()
    with tlshelp.TlsSMTP(inst.port) as c:
        c.reply()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
        code, text = c.cmd("RCPT TO:<%s>" % REMOTE)
        assert code == 554 and "Relay access denied" in text[0], (code, text)
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250      # local mail is fine


def test_wrong_password_535_logged_for_fail2ban(inst, dovecot, tmp_path):
    if FAIL2BAN_REGEX is None:
        pytest.skip("fail2ban not installed")
    inst.set_param("syslog_name", "postfix")
    sub, _ = started(inst, dovecot, smtpd_error_sleep_time="%ds" % ERROR_SLEEP)
    with tlshelp.TlsSMTP(sub) as c:
        c.reply()
        c.ehlo()
        c.starttls()
        c.ehlo()
        t0 = time.monotonic()
        code, text = c.cmd("AUTH PLAIN " + b64("\0%s\0wrong" % USER))
        assert code == 535 and text[0].startswith("5.7.8 Error: authentication failed"), text
        assert time.monotonic() - t0 >= ERROR_SLEEP - 0.5, "535 was not delayed"
        assert c.cmd("AUTH LOGIN") == (334, [b64("Username:")])
        assert c.cmd(b64(USER))[0] == 334
        assert c.cmd(b64("also wrong"))[0] == 535
    inst.wait_log(r"postfix/smtpd\[\d+\]: warning: \S+\[127\.0\.0\.1\]: "
                  r"SASL LOGIN authentication failed: ")
    lines = [l for l in inst.log().splitlines() if "authentication failed" in l]
    assert any("SASL PLAIN authentication failed" in l for l in lines), lines
    sample = tmp_path / "f2b.log"
    sample.write_text("\n".join(lines) + "\n")
    r = subprocess.run([FAIL2BAN_REGEX, str(sample), "postfix[mode=auth]"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert r.returncode == 0, r.stdout
    mm = re.search(r"Lines: (\d+) lines, \d+ ignored, (\d+) matched", r.stdout)
    assert mm and mm.group(1) == mm.group(2) == str(len(lines)), r.stdout


def test_error_sleep_blocks_nobody_and_hard_limit(inst, dovecot):
    sub, _ = started(inst, dovecot, smtpd_error_sleep_time="%ds" % ERROR_SLEEP,
                     smtpd_hard_error_limit="3")
    # one smtpd process serves both sessions (maxproc: CPUs; the same
    # service): the other session's replies must not wait for the sleep
    with tlshelp.TlsSMTP(sub) as bad, tlshelp.TlsSMTP(sub) as good:
        bad.reply()
        bad.ehlo()
        bad.starttls()
        bad.ehlo()
        good.reply()
        good.ehlo()
        bad.send("AUTH PLAIN %s\r\n" % b64("\0%s\0wrong" % USER))
        time.sleep(0.3)
        t0 = time.monotonic()
        for _ in range(5):
            assert good.cmd("NOOP")[0] == 250
        assert time.monotonic() - t0 < 1.0
        assert bad.reply()[0] == 535
        assert bad.cmd("AUTH PLAIN %s" % b64("\0%s\0wrong2" % USER))[0] == 535
        code, text = bad.cmd("AUTH PLAIN %s" % b64("\0%s\0wrong3" % USER))
        assert code == 535
        assert bad.reply() == (421, ["4.7.0 localhost Error: too many errors"])
    inst.wait_log(r"too many errors after AUTH from")


def test_backend_down_454(inst, dovecot):
    sub = tlshelp.add_smtpd(inst, submission_opts(smtpd_error_sleep_time="0"), maxproc=1)
    dovecot.start()
    inst.start()
    with tlshelp.TlsSMTP(sub) as c:       # the process learns the mechanisms
        c.reply()
        c.ehlo()
        c.starttls()
        assert tlshelp.auth_keyword(c.ehlo()) is not None
    dovecot.stop()
    with tlshelp.TlsSMTP(sub) as c:
        c.reply()
        c.ehlo()
        c.starttls()
        mechs = tlshelp.auth_keyword(c.ehlo())
        code, text = c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD)))
        if mechs is None:       # the backend forgot its mechanisms: AUTH not offered
            assert code == 503, (code, text)
        else:                   # offered, but the backend cannot answer
            assert code == 454 and text[0].startswith("4.7.0"), (code, text)
        assert c.cmd("NOOP")[0] == 250       # the session goes on


@pytest.mark.parametrize("mech", ["PLAIN", "CRAM-MD5"])
def test_cyrus_sasldb(inst, tmp_path, mech):
    if not tlshelp.os.path.exists(tlshelp.SASLPASSWD2):
        pytest.skip("sasl2-bin not installed")
    cy = tlshelp.CyrusSasldb(tmp_path / "sasl", "localhost", {USER: PASSWORD})
    sub = tlshelp.add_smtpd(inst, {
        "smtpd_tls_security_level": "encrypt",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "cyrus",
        "smtpd_sasl_path": "smtpd",
        "cyrus_sasl_config_path": str(cy.dir),
        "smtpd_sasl_local_domain": "localhost",
        "smtpd_relay_restrictions": "permit_sasl_authenticated,reject",
        "smtpd_error_sleep_time": "0",
    })
    inst.start()
    r = swaks(sub, "--tls", "--auth", mech, "--auth-user", USER, "--auth-password", PASSWORD)
    assert r.returncode == 0, r.stdout
    assert "queued as" in r.stdout
    r = swaks(sub, "--tls", "--auth", mech, "--auth-user", USER, "--auth-password", "nope")
    assert "535 5.7.8" in r.stdout, r.stdout
    inst.wait_log(r"warning: \S+\[127\.0\.0\.1\]: SASL %s authentication failed" % mech)
    inst.wait_log(r"sasl_method=%s, sasl_username=%s@localhost" % (mech, USER))


def test_course_stanza_chrooted(inst, dovecot):
    """The course's submission stanza as written (chroot = y): STARTTLS,
    AUTH through Dovecot's socket at private/auth inside the jail, local
    users still known (passwd copied before the jail), relaying after AUTH."""
    port = conftest.free_port()
    with open(inst.master_cf, "a") as f:
        f.write("127.0.0.1:%d inet n - y - - smtpd\n"
                "  -o smtpd_tls_security_level=encrypt\n"
                "  -o smtpd_sasl_auth_enable=yes\n"
                "  -o smtpd_sasl_type=dovecot\n"
                "  -o smtpd_sasl_path=private/auth\n" % port)
    inst.set_param("mynetworks", "127.0.0.1/32")   # the client below is "outside"
    dovecot.start()
    inst.start()
    outside = ("--local-interface", "127.0.0.2")
    r = swaks(port, "--tls", "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD,
              *outside)
    assert r.returncode == 0, r.stdout + inst.log()[-3000:]
    assert "queued as" in r.stdout
    r = swaks(port, "--tls", "--to", "root@localhost", "--quit-after", "RCPT", *outside)
    assert "250 2.1.5" in r.stdout, r.stdout + inst.log()[-3000:]
    r = swaks(port, "--tls", "--to", "no-such-user-x@localhost", "--quit-after", "RCPT", *outside)
    assert "550 5.1.1" in r.stdout, r.stdout
    r = swaks(port, "--tls", "--quit-after", "RCPT", *outside)    # relaying without AUTH
    assert "554 5.7.1" in r.stdout, r.stdout
    assert "fatal" not in inst.log()
