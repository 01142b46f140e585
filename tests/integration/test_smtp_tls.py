"""test_smtp_tls.py - TLS and SASL AUTH in posta's smtp client (issue 5)

A posta instance relays ($relayhost) to a peer and the test checks what
the client did:
  - a satellite posta relays through a real Postfix that requires
    STARTTLS and AUTH (Dovecot's auth service, a CA and a
    server certificate made with openssl): the mail arrives, the satellite
    logs a Verified TLS connection, Postfix logs the TLS session and
    "sasl_method=PLAIN, sasl_username=alice"; with the default security
    options (noplaintext) the client picks CRAM-MD5; a wrong password
    defers with Postfix's 535 in `posta queue -p`;
  - levels against a scripted server (tlslab.FakeSMTP): encrypt without
    STARTTLS offered defers (4.7.4); verify passes with the right CA and
    name and defers on a wrong name; may falls back to a clear-text
    connection when the handshake fails; TLS on connect (wrappermode);
  - a second connection to the same server resumes the TLS session;
  - response injection: a server that answers STARTTLS with
    "220 ...\\r\\n250 injected\\r\\n" in one write: the client throws the
    injected reply away, sends EHLO afresh over TLS and authenticates with
    the AUTH that only the post-TLS EHLO offers;
  - AUTH with no usable mechanism defers, credentials never in the log.

DIAGNOSTICS: failures quote the maillog, the fake server's transcript
and Postfix's log.
"""

import os
import pwd
import re
import time

import pytest

import helpers
import netlab
import tlshelp
import tlslab

pytestmark = pytest.mark.delivery

WAIT = 30.0
USER, PASSWORD = "alice", "s3cret-pw"
RELAY_OCTET, SAT_OCTET = 40, 41
RELAY_NAME = "relay.tls.test"
FINAL_DOMAIN = "final.test"


@pytest.fixture
def pki(tmp_path):
    """pki - a test CA with a certificate for localhost and one for a wrong name."""
    p = tlslab.Pki(tmp_path / "pki")
    p.localhost = p.server("localhost", ["localhost"])
    p.wrong = p.server("wrong", ["wrong.example"])
    return p


@pytest.fixture
def fake():
    """fake - fake(**kw): a started tlslab.FakeSMTP, closed after the test."""
    made = []

    def make(**kw):
        f = tlslab.FakeSMTP(**kw)
        made.append(f)
        return f
    yield make
    for f in made:
        f.close()


def client(make_posta, fake_srv, host="127.0.0.1", **params):
    """client - a started posta relaying to fake_srv ([host]:port)."""
    inst = make_posta("posta")
    inst.set_param("relayhost", "[%s]:%d" % (host, fake_srv.port))
    inst.set_param("smtp_tls_loglevel", "1")
    inst.set_param("maximal_backoff_time", "300s")
    inst.set_param("minimal_backoff_time", "300s")
    for name, value in params.items():
        inst.set_param(name, value)
    inst.start()
    return inst


def wait_delivered(inst, fake_srv, count=1):
    """wait_delivered - fake_srv got count messages."""
    ok = helpers.wait_until(lambda: len(fake_srv.messages) >= count, WAIT, interval=0.2)
    assert ok, "no delivery to the fake server\n%s\nlog:\n%s" % (
        fake_srv.transcript(), inst.log()[-4000:])


def wait_deferred(inst, needle):
    """wait_deferred - `posta queue -p` shows needle; the text."""
    def shown():
        text = netlab.queue_text(inst)
        return text if needle in text else None
    return inst.wait_for(shown, "%r in posta queue -p" % needle, WAIT)


def password_map(inst, entries):
    """password_map - a hash: table built with `posta map`; its type:name."""
    src = inst.root / "sasl_passwd"
    src.write_text("".join("%s %s\n" % kv for kv in entries.items()))
    os.chmod(src, 0o600)
    r = inst.posta("map", "hash:%s" % src)
    assert r.returncode == 0, "posta map: %s%s" % (r.stdout, r.stderr)
    # the client re-reads a changed table after it dropped privileges
    os.chmod(str(src) + ".db", 0o644)
    return "hash:%s" % src


def mail(inst, subject, rcpt="bob@remote.example"):
    """mail - one message into inst over SMTP."""
    netlab.send(inst, "alice@posta.test", [rcpt], subject)


# ---- levels against a scripted server ------------------------------------------

def test_encrypt_not_offered_defers(make_posta, fake, pki):
    srv = fake(ctx=None)
    inst = client(make_posta, srv, smtp_tls_security_level="encrypt")
    mail(inst, helpers.token("enc"))
    text = wait_deferred(inst, "TLS is required, but was not offered by host "
                               "127.0.0.1[127.0.0.1]")
    assert not any(l.startswith("MAIL") for _, l in srv.commands()), srv.transcript()
    inst.wait_log(r"dsn=4\.7\.4, status=deferred \(TLS is required")
    assert text


def test_verify_right_ca_and_name(make_posta, fake, pki):
    srv = fake(ctx=tlslab.server_ctx(*pki.localhost))
    inst = client(make_posta, srv, host="localhost", smtp_host_lookup="native",
                  smtp_tls_security_level="verify", smtp_tls_CAfile=pki.ca)
    mail(inst, helpers.token("verify"))
    wait_delivered(inst, srv)
    inst.wait_log(r"Verified TLS connection established to localhost\[127\.0\.0\.1\]:%d: "
                  r"TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)" % srv.port)
    cmds = srv.commands(1)
    # EHLO in the clear, STARTTLS, EHLO again over TLS, then the mail
    assert [l.split()[0] for t, l in cmds[:3]] == ["EHLO", "STARTTLS", "EHLO"], cmds
    assert cmds[2][0] and all(t for t, l in cmds[2:]), srv.transcript()


def test_session_resumed_on_next_connection(make_posta, fake, pki):
    srv = fake(ctx=tlslab.server_ctx(*pki.localhost))
    # one transaction per connection: the second message needs a new handshake
    inst = client(make_posta, srv, host="localhost", smtp_host_lookup="native",
                  smtp_tls_security_level="verify", smtp_tls_CAfile=pki.ca,
                  smtp_connection_reuse_count_limit="1")
    mail(inst, helpers.token("first"))
    wait_delivered(inst, srv)
    inst.wait_log(r"status=sent")
    mail(inst, helpers.token("second"))
    wait_delivered(inst, srv, 2)
    assert srv.nconn == 2, srv.transcript()
    inst.wait_log(r"Verified TLS connection reused to localhost\[127\.0\.0\.1\]:%d"
                  % srv.port)


def test_verify_wrong_name_defers(make_posta, fake, pki):
    srv = fake(ctx=tlslab.server_ctx(*pki.wrong))
    inst = client(make_posta, srv, host="localhost", smtp_host_lookup="native",
                  smtp_tls_security_level="verify", smtp_tls_CAfile=pki.ca)
    mail(inst, helpers.token("wrongname"))
    wait_deferred(inst, "Server certificate not verified")
    inst.wait_log(r"server certificate verification failed for localhost\[127\.0\.0\.1\]")
    assert not any(l.startswith("MAIL") for _, l in srv.commands()), srv.transcript()


def test_verify_unknown_ca_defers(make_posta, fake, pki, tmp_path):
    other = tlslab.Pki(tmp_path / "other", name="another CA")
    srv = fake(ctx=tlslab.server_ctx(*pki.localhost))
    inst = client(make_posta, srv, host="localhost", smtp_host_lookup="native",
                  smtp_tls_security_level="verify", smtp_tls_CAfile=other.ca)
    mail(inst, helpers.token("unknownca"))
    wait_deferred(inst, "Server certificate not verified")


def test_may_falls_back_to_plaintext(make_posta, fake, pki):
    srv = fake(ctx=tlslab.server_ctx(*pki.localhost), break_tls=True)
    inst = client(make_posta, srv, smtp_tls_security_level="may")
    mail(inst, helpers.token("may"))
    wait_delivered(inst, srv)
    inst.wait_log(r"Cannot start TLS: handshake failure; trying again without TLS")
    first, second = srv.commands(1), srv.commands(2)
    assert [l for _, l in first][-1] == "STARTTLS", srv.transcript()
    assert not any(l == "STARTTLS" for _, l in second), srv.transcript()
    assert any(l.startswith("MAIL") for _, l in second), srv.transcript()
    inst.wait_log(r"status=sent")


def test_may_untrusted_is_used(make_posta, fake, pki):
    srv = fake(ctx=tlslab.server_ctx(*pki.localhost))
    inst = client(make_posta, srv, smtp_tls_security_level="may")
    mail(inst, helpers.token("mayok"))
    wait_delivered(inst, srv)
    inst.wait_log(r"Untrusted TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:%d"
                  % srv.port)
    assert any(t and l.startswith("MAIL") for t, l in srv.commands()), srv.transcript()


def test_wrappermode(make_posta, fake, pki):
    srv = fake(ctx=tlslab.server_ctx(*pki.localhost), implicit=True, starttls=False)
    inst = client(make_posta, srv, host="localhost", smtp_host_lookup="native",
                  smtp_tls_security_level="verify", smtp_tls_CAfile=pki.ca,
                  smtp_tls_wrappermode="yes")
    mail(inst, helpers.token("wrapper"))
    wait_delivered(inst, srv)
    inst.wait_log(r"Verified TLS connection established to localhost\[127\.0\.0\.1\]:%d"
                  % srv.port)
    assert all(t for t, _ in srv.commands()), srv.transcript()


# ---- response injection and AUTH against the scripted server ------------------

def test_starttls_injection_ignored(make_posta, fake, pki):
    srv = fake(ctx=tlslab.server_ctx(*pki.localhost), inject=b"250 injected\r\n",
               users={USER: PASSWORD})
    inst = make_posta("posta")
    nexthop = "[127.0.0.1]:%d" % srv.port
    inst.set_param("smtp_sasl_password_maps",
                   password_map(inst, {nexthop: "%s:%s" % (USER, PASSWORD)}))
    inst.set_param("relayhost", nexthop)
    inst.set_param("smtp_tls_loglevel", "1")
    inst.set_param("smtp_tls_security_level", "encrypt")
    inst.set_param("smtp_sasl_auth_enable", "yes")
    inst.set_param("smtp_sasl_tls_security_options", "noanonymous")
    inst.start()
    mail(inst, helpers.token("inject"))
    wait_delivered(inst, srv)
    inst.wait_log(r"discarding 14 bytes that 127\.0\.0\.1\[127\.0\.0\.1\] sent after its "
                  r"reply to STARTTLS")
    cmds = [(t, l) for t, l in srv.commands(1)]
    verbs = [l.split()[0] for _, l in cmds]
    # after the handshake: a fresh EHLO, then AUTH (offered only then), then MAIL
    i = verbs.index("STARTTLS")
    assert verbs[i + 1:i + 3] == ["EHLO", "AUTH"], srv.transcript()
    assert all(t for t, _ in cmds[i + 1:]), srv.transcript()
    assert "(authenticated PLAIN as %s)" % USER in srv.transcript()
    assert srv.nconn == 1, srv.transcript()
    assert PASSWORD not in inst.log()


def test_auth_no_mechanism_defers(make_posta, fake, pki):
    # the server offers only PLAIN and LOGIN; the default options forbid plaintext
    srv = fake(ctx=tlslab.server_ctx(*pki.localhost), users={USER: PASSWORD})
    inst = make_posta("posta")
    nexthop = "[127.0.0.1]:%d" % srv.port
    inst.set_param("smtp_sasl_password_maps",
                   password_map(inst, {nexthop: "%s:%s" % (USER, PASSWORD)}))
    inst.set_param("relayhost", nexthop)
    inst.set_param("smtp_tls_security_level", "encrypt")
    inst.set_param("smtp_sasl_auth_enable", "yes")
    inst.start()
    mail(inst, helpers.token("nomech"))
    wait_deferred(inst, "SASL authentication failed: cannot authenticate to server "
                        "127.0.0.1[127.0.0.1]: no mechanism available")
    assert not any(l.startswith("AUTH") for _, l in srv.commands()), srv.transcript()


def test_auth_login_and_wrong_password(make_posta, fake, pki):
    srv = fake(ctx=tlslab.server_ctx(*pki.localhost), users={USER: PASSWORD},
               mechs="LOGIN")
    inst = make_posta("posta")
    nexthop = "[127.0.0.1]:%d" % srv.port
    table = password_map(inst, {nexthop: "%s:%s" % (USER, PASSWORD)})
    inst.set_param("smtp_sasl_password_maps", table)
    inst.set_param("relayhost", nexthop)
    inst.set_param("smtp_tls_security_level", "encrypt")
    inst.set_param("smtp_sasl_auth_enable", "yes")
    inst.set_param("smtp_sasl_tls_security_options", "noanonymous")
    inst.set_param("maximal_backoff_time", "300s")
    inst.set_param("minimal_backoff_time", "300s")
    inst.start()
    mail(inst, helpers.token("login"))
    wait_delivered(inst, srv)
    assert "(authenticated LOGIN as %s)" % USER in srv.transcript()
    # a wrong password: the table changes under the running client
    time.sleep(1.1)
    password_map(inst, {nexthop: "%s:%s" % (USER, "wrong-pw")})
    time.sleep(1.1)
    mail(inst, helpers.token("badpw"))
    wait_deferred(inst, "SASL authentication failed; server 127.0.0.1[127.0.0.1] said: "
                        "535 5.7.8 Error: authentication failed")
    inst.wait_log(r"dsn=4\.7\.8, status=deferred \(SASL authentication failed")
    assert "wrong-pw" not in inst.log() and PASSWORD not in inst.log()


# ---- a satellite through a real Postfix relay ----------------------------------

def postfix_relay(lab, pki_dir, tmp_path):
    """postfix_relay - a started Postfix that requires STARTTLS and AUTH; (host, pf, box)."""
    if not os.access(netlab.POSTFIX, os.X_OK):
        pytest.skip("Postfix not installed")
    pki = tlslab.Pki(pki_dir)
    cert, key = pki.server("relay", [RELAY_NAME])
    os.chmod(key, 0o600)
    # Debian's Postfix with cyrus_sasl_config_path still opened /etc/sasldb2
    # here, so the relay authenticates through a real Dovecot instead
    auth = tlshelp.DovecotAuth(tmp_path / "dovecot", tmp_path / "dovecot" / "auth",
                               {USER: PASSWORD})
    lab.closers.append(auth.stop)
    auth.start()
    box = tmp_path / "vmail"
    box.mkdir()
    pw = pwd.getpwnam("postfix")
    os.chown(box, pw.pw_uid, pw.pw_gid)
    vmaps = tmp_path / "vmailbox"
    vmaps.write_text("bob@%s bob/\n" % FINAL_DOMAIN)
    os.chmod(vmaps, 0o644)
    host = lab.host("relay", RELAY_OCTET)
    pf = netlab.PostfixPeer(lab, host, lab.root / "postfix-relay", RELAY_NAME, "tls.test",
                            "127.0.0.1/32", extra={
                                "smtpd_tls_cert_file": cert,
                                "smtpd_tls_key_file": key,
                                "smtpd_tls_security_level": "encrypt",
                                "smtpd_tls_auth_only": "yes",
                                "smtpd_tls_loglevel": "1",
                                "smtpd_sasl_auth_enable": "yes",
                                "smtpd_sasl_type": "dovecot",
                                "smtpd_sasl_path": auth.socket,
                                "smtpd_relay_restrictions":
                                    "permit_sasl_authenticated, reject_unauth_destination",
                                "smtpd_recipient_restrictions": "",
                                "virtual_mailbox_domains": FINAL_DOMAIN,
                                "virtual_mailbox_base": box,
                                "virtual_mailbox_maps": "texthash:%s" % vmaps,
                                "virtual_uid_maps": "static:%d" % pw.pw_uid,
                                "virtual_gid_maps": "static:%d" % pw.pw_gid,
                            })
    pf.start()
    return host, pf, box, pki


def test_satellite_through_postfix_with_tls_and_auth(lab, make_posta, tmp_path):
    dns = lab.dns()
    dns.a(RELAY_NAME, "%s.%d" % (netlab.SUBNET, RELAY_OCTET)).start()
    rhost, pf, box, pki = postfix_relay(lab, tmp_path / "pki", tmp_path)
    shost = lab.host("sat", SAT_OCTET)
    sat = make_posta("sat", host=shost, hostname="sat.tls.test", mydestination="",
                     public=False)
    table = password_map(sat, {"[%s]" % RELAY_NAME: "%s:%s" % (USER, PASSWORD)})
    for name, value in {
            "relayhost": "[%s]" % RELAY_NAME,
            "smtp_tls_security_level": "verify",
            "smtp_tls_CAfile": pki.ca,
            "smtp_tls_loglevel": "1",
            "smtp_sasl_auth_enable": "yes",
            "smtp_sasl_password_maps": table,
            "smtp_sasl_tls_security_options": "noanonymous",
            "maximal_backoff_time": "300s",
            "minimal_backoff_time": "300s"}.items():
        sat.set_param(name, value)
    sat.start()
    lab.wait_reachable(shost, rhost.addr)

    subject = helpers.token("sat-tls")
    netlab.send(sat, "alice@tls.test", ["bob@%s" % FINAL_DOMAIN], subject)

    def arrived():
        new = box / "bob" / "new"
        return [p for p in new.iterdir() if subject in p.read_text(errors="replace")] \
            if new.is_dir() else None
    helpers.wait_until(arrived, WAIT, interval=0.3)
    assert arrived(), "not delivered by the relay\nsat log:\n%s\nrelay log:\n%s" % (
        sat.log()[-4000:], pf.log()[-4000:])
    sat.wait_log(r"Verified TLS connection established to %s\[%s\]:25: TLSv1\.[23] with "
                 r"cipher" % (re.escape(RELAY_NAME), re.escape(rhost.addr)))
    sat.wait_log(r"to=<bob@final\.test>, relay=%s\[%s\]:25, .*status=sent"
                 % (re.escape(RELAY_NAME), re.escape(rhost.addr)))
    log = pf.log()
    assert re.search(r"TLS connection established from \S+\[%s\]"
                     % re.escape(shost.addr), log), log[-3000:]
    assert re.search(r"client=\S+\[%s\], sasl_method=PLAIN, sasl_username=%s"
                     % (re.escape(shost.addr), USER), log), log[-3000:]
    assert PASSWORD not in sat.log()

    # the default options (noplaintext) over TLS: CRAM-MD5
    sat.set_param("smtp_sasl_tls_security_options", "$smtp_sasl_security_options")
    sat.reload()
    time.sleep(1.5)
    subject2 = helpers.token("sat-cram")
    netlab.send(sat, "alice@tls.test", ["bob@%s" % FINAL_DOMAIN], subject2)
    ok = helpers.wait_until(lambda: re.search(
        r"client=\S+\[%s\], sasl_method=CRAM-MD5, sasl_username=%s"
        % (re.escape(shost.addr), USER), pf.log()), WAIT, interval=0.3)
    assert ok, "no CRAM-MD5 login\nsat log:\n%s\nrelay log:\n%s" % (
        sat.log()[-3000:], pf.log()[-3000:])

    # a wrong password: deferred with the relay's answer
    time.sleep(1.1)
    password_map(sat, {"[%s]" % RELAY_NAME: "%s:%s" % (USER, "not-the-password")})
    time.sleep(1.1)
    netlab.send(sat, "alice@tls.test", ["bob@%s" % FINAL_DOMAIN], helpers.token("badpw"))
    text = wait_deferred(sat, "SASL authentication failed; server %s[%s] said: 535"
                         % (RELAY_NAME, rhost.addr))
    assert "not-the-password" not in sat.log() + text
