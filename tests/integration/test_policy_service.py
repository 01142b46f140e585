"""test_policy_service.py - check_policy_service (Postfix's SMTPD access
policy delegation) through real instances

A scripted policy server (peers/policy.py) answers by the recipient's
local part (OK, REJECT text, DEFER_IF_PERMIT, 450 text, DUNNO, WARN,
garbage, no action, too slow, connection closed) and records every
request, so the tests check the replies smtpd gives, the attributes it
sent (sender, recipient, client and server address, HELO name, SASL
name, protocol_state at each stage), the default action after failures,
the retry after a closed connection, connection reuse across many
concurrent sessions, and the inet: and unix: forms. Then real postgrey
(Debian's package) greylists a first attempt with 450 and accepts the
retry once its delay has passed.

Clients connect from 127.0.0.2 (outside mynetworks); client names are not
looked up (smtpd_peername_lookup = no), so every client is "unknown".
"""

import json
import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import helpers
from conftest import one_smtpd
import tlshelp

OUTSIDE = "127.0.0.2"
PEER = Path(__file__).resolve().parent / "peers" / "policy.py"
PEER_READY_TIMEOUT = 10.0
POSTGREY = "/usr/sbin/postgrey"
POSTGREY_DELAY = 3              # seconds a triplet stays greylisted
CONCURRENT_SESSIONS = 20
POOL_MAX = 4                    # POL_POOL_MAX in smtpd/policy_client.c
SASL_USER, SASL_PASSWORD = "alice", "s3cret-pw"


class PolicyPeer:
    """PolicyPeer - peers/policy.py in a folder of its own, by PID."""

    def __init__(self, folder, unix=None, delay=None):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(PEER), "--dir", str(self.dir)]
        cmd += ["--unix", str(unix)] if unix else ["--listen", "127.0.0.1:0"]
        if delay is not None:
            cmd += ["--delay", str(delay)]
        self.log = open(self.dir / "stderr", "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        ready = self.dir / "ready"
        ok = helpers.wait_until(lambda: ready.exists() or self.proc.poll() is not None,
                                PEER_READY_TIMEOUT)
        assert ok and self.proc.poll() is None, (self.dir / "stderr").read_text()
        self.port = int(ready.read_text())

    def requests(self):
        """requests - every request received so far (dicts)."""
        try:
            text = (self.dir / "requests.jsonl").read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def conns(self):
        """conns - connections accepted so far."""
        try:
            return int((self.dir / "conns").read_text())
        except FileNotFoundError:
            return 0

    def stop(self):
        """stop - end the peer (by its PID)."""
        helpers.stop_tree(self.proc, {}, 5)
        self.log.close()


@pytest.fixture
def peers(tmp_path):
    """peers - peers(**kw): a started PolicyPeer, stopped afterwards."""
    made = []

    def make(**kw):
        p = PolicyPeer(tmp_path / ("peer%d" % len(made)), **kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.stop()


def configure(inst, restrictions, **params):
    """configure - outside clients judged by restrictions (recipient list); start."""
    inst.set_param("mynetworks", "127.0.0.1/32")
    inst.set_param("smtpd_error_sleep_time", "0s")
    inst.set_param("smtpd_peername_lookup", "no")
    inst.set_param("smtpd_recipient_restrictions", restrictions)
    inst.set_param("smtpd_reject_unlisted_recipient", "no")   # any local part will do
    for k, v in params.items():
        inst.set_param(k, v)
    inst.start()


def dialog(inst, rcpts, sender="alice@example.net", helo="client.example", data=False):
    """dialog - EHLO, MAIL, one RCPT each (and DATA); [(code, text)] of the RCPTs (and DATA)."""
    got = []
    with inst.raw(source=OUTSIDE) as c:
        code, text = c.reply()
        assert code == 220, text
        code, text = c.cmd("EHLO %s" % helo)
        assert code == 250, text
        code, text = c.cmd("MAIL FROM:<%s> SIZE=1234" % sender)
        assert code == 250, text
        for r in rcpts:
            code, text = c.cmd("RCPT TO:<%s>" % r)
            got.append((code, " ".join(text)))
        if data:
            code, text = c.cmd("DATA")
            got.append((code, " ".join(text)))
            if code == 354:
                c.send(b"Subject: t\r\n\r\nbody\r\n.\r\n")
                code, text = c.reply()
                got.append((code, " ".join(text)))
        c.send(b"QUIT\r\n")
    return got


def service(peer, extra=""):
    """service - the check_policy_service restriction for peer (inet:)."""
    if extra:
        return "check_policy_service { inet:127.0.0.1:%d, %s }" % (peer.port, extra)
    return "check_policy_service inet:127.0.0.1:%d" % peer.port


ACTIONS = [
    ("ok@localhost", 250, "2.1.5"),
    ("reject@localhost", 554,
     "554 5.7.1 <reject@localhost>: Recipient address rejected: Policy says no"),
    ("tempfail@localhost", 450, "450 4.7.1 Greylisted, try again later"),
    ("dip@localhost", 450, "450 4.7.1 <dip@localhost>: Recipient address rejected: "
     "Policy says later"),
    ("dunno@localhost", 250, "2.1.5"),
    ("warn@localhost", 250, "2.1.5"),
    ("garbage@localhost", 451, "451 4.3.5 Server configuration problem"),
    ("noaction@localhost", 451, "451 4.3.5 Server configuration problem"),
    ("close@localhost", 250, "2.1.5"),              # retried on a new connection: OK
]


def test_actions(inst, peers):
    """Each action as Postfix applies it; failures end in default_action; a closed connection is retried."""
    peer = peers()
    configure(inst, "reject_unauth_destination, %s" % service(peer),
              smtpd_policy_service_retry_delay="1s")
    got = dialog(inst, [r for r, _, _ in ACTIONS])
    for (r, code, frag), (gc, gt) in zip(ACTIONS, got):
        assert gc == code and frag in "%d %s" % (gc, gt), (r, gc, gt, inst.log()[-3000:])
    log = inst.log()
    assert "warn: RCPT from unknown[127.0.0.2]: policy warning" in log, log
    ep = "inet:127.0.0.1:%d" % peer.port
    assert "warning: problem talking to server %s: malformed reply attribute" % ep in log, log
    assert "warning: problem talking to server %s: reply without action" % ep in log, log
    assert "warning: problem talking to server %s: lost connection" % ep in log, log
    by_rcpt = {}
    for q in peer.requests():
        by_rcpt.setdefault(q["recipient"], []).append(q)
    assert len(by_rcpt["garbage@localhost"]) == 2          # try_limit 2
    assert len(by_rcpt["close@localhost"]) == 2
    assert len(by_rcpt["ok@localhost"]) == 1
    assert ": reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 <reject@localhost>: " \
        "Recipient address rejected: Policy says no; from=<alice@example.net> " \
        "to=<reject@localhost> proto=ESMTP helo=<client.example>" in log, log


def test_message_actions(inst, peers):
    """HOLD and PREPEND from a policy server act on the message as an access table's do."""
    peer = peers()
    configure(inst, "reject_unauth_destination, %s" % service(peer))
    got = dialog(inst, ["prepend@localhost", "hold@localhost"], data=True)
    assert [c for c, _ in got] == [250, 250, 354, 250], got
    qid = helpers.queued_id(got[-1][1])
    assert inst.wait_for(lambda: qid in inst.complete_files("hold"), "the message in hold/")
    content = inst.qfile(qid, "hold")["content"]
    assert b"\nX-Policy: checked\nSubject: t\n" in content, content
    log = inst.log()
    assert "hold: RCPT from unknown[127.0.0.2]: <hold@localhost>: Recipient address " \
        "policy hold; from=<alice@example.net> to=<hold@localhost>" in log, log
    assert inst.complete_files("incoming") == []


def test_end_of_data(inst, peers):
    """smtpd_end_of_data_restrictions: the server sees END-OF-MESSAGE with the real size."""
    peer = peers()
    configure(inst, "reject_unauth_destination",
              smtpd_end_of_data_restrictions=service(peer))
    got = dialog(inst, ["reject@localhost"], data=True)
    assert [c for c, _ in got] == [250, 354, 554], got
    assert got[-1][1] == ("5.7.1 <END-OF-MESSAGE>: End-of-data rejected: Policy says no"), got
    got = dialog(inst, ["ok@localhost"], data=True)
    assert [c for c, _ in got] == [250, 354, 250], got
    reqs = peer.requests()
    assert [q["protocol_state"] for q in reqs] == ["END-OF-MESSAGE"] * 2, reqs
    body = len(b"Subject: t\n\nbody\n")
    assert all(int(q["size"]) == body for q in reqs), reqs
    assert inst.complete_files() != [] and len(inst.complete_files()) == 1
    log = inst.log()
    assert "reject: END-OF-MESSAGE from unknown[127.0.0.2]: 554 5.7.1 <END-OF-MESSAGE>: " \
        "End-of-data rejected: Policy says no; from=<alice@example.net> " \
        "to=<reject@localhost>" in log, log


def test_request_attributes(inst, peers):
    """The request carries what Postfix sends: addresses, names, state, ports, size, context."""
    peer = peers()
    configure(inst, "reject_unauth_destination, %s" % service(peer),
              smtpd_policy_service_policy_context="lab")
    got = dialog(inst, ["ok@localhost"], sender="sender@example.net", helo="helo.example")
    assert got[0][0] == 250, got
    (q,) = peer.requests()
    want = {"request": "smtpd_access_policy", "protocol_state": "RCPT",
            "protocol_name": "ESMTP", "helo_name": "helo.example",
            "sender": "sender@example.net", "recipient": "ok@localhost",
            "recipient_count": "0", "client_address": OUTSIDE, "client_name": "unknown",
            "reverse_client_name": "unknown", "size": "1234", "policy_context": "lab",
            "server_address": "127.0.0.1", "server_port": str(inst.port),
            "sasl_method": "", "sasl_username": "", "encryption_protocol": "",
            "stress": ""}
    for k, v in want.items():
        assert q.get(k) == v, (k, q)
    assert q["client_port"].isdigit() and q["queue_id"] and q["instance"], q


def test_stages(inst, peers):
    """protocol_state names the command judged; with smtpd_delay_reject every list runs at RCPT."""
    peer = peers()
    svc = service(peer)
    configure(inst, "reject_unauth_destination", smtpd_delay_reject="no",
              smtpd_helo_restrictions=svc, smtpd_sender_restrictions=svc,
              smtpd_data_restrictions=svc)
    got = dialog(inst, ["ok@localhost"], data=True)
    assert [c for c, _ in got] == [250, 354, 250], got
    states = [q["protocol_state"] for q in peer.requests()]
    assert states == ["EHLO", "MAIL", "DATA"], states
    data = peer.requests()[-1]
    assert data["recipient_count"] == "1" and data["recipient"] == "ok@localhost", data
    # a reject from the sender list at MAIL with smtpd_delay_reject = no
    with inst.raw(source=OUTSIDE) as c:
        c.reply()
        c.cmd("EHLO client.example")
        code, text = c.cmd("MAIL FROM:<reject@example.net>")
        assert code == 554 and "Sender address rejected: Policy says no" in " ".join(text)


def test_delay_reject_state(inst, peers):
    """With smtpd_delay_reject = yes a HELO-list policy check runs at RCPT (state RCPT)."""
    peer = peers()
    configure(inst, "reject_unauth_destination", smtpd_helo_restrictions=service(peer))
    got = dialog(inst, ["ok@localhost", "reject@localhost"])
    assert got[0][0] == 250 and got[1][0] == 554, got
    assert "Helo command rejected: Policy says no" in got[1][1], got
    assert [q["protocol_state"] for q in peer.requests()] == ["RCPT", "RCPT"]


def test_timeout_default_action(inst, peers):
    """A server slower than timeout: retried, then the braced default_action applies."""
    peer = peers(delay=20)
    configure(inst, "reject_unauth_destination, %s" % service(
        peer, "timeout=1s, retry_delay=1s, {default_action = 450 4.7.1 Policy unavailable}"))
    start = time.monotonic()
    got = dialog(inst, ["slow@localhost"])
    took = time.monotonic() - start
    assert got[0][0] == 450 and "4.7.1 Policy unavailable" in got[0][1], got
    assert took < 10, took
    assert inst.log().count("problem talking to server inet:127.0.0.1:%d: timeout"
                            % peer.port) == 2, inst.log()
    # the next request gets a fresh connection and a real answer
    assert dialog(inst, ["ok@localhost"])[0][0] == 250


def test_server_down(inst, tmp_path):
    """Nobody listens: "Connection refused" twice, then the default default_action."""
    port = helpers.free_dns_port()      # a free loopback port nobody listens on
    configure(inst, "reject_unauth_destination, check_policy_service inet:127.0.0.1:%d" % port)
    got = dialog(inst, ["ok@localhost"])
    assert got[0] == (451, "4.3.5 Server configuration problem"), got
    assert "problem talking to server inet:127.0.0.1:%d: Connection refused" % port in inst.log()


def test_many_sessions_share_connections(inst, peers):
    """Concurrent sessions of one smtpd share its small pool; later sessions reuse it."""
    peer = peers()
    one_smtpd(inst)
    configure(inst, "reject_unauth_destination, %s" % service(peer))
    results = []
    errors = []

    def one(i):
        try:
            results.append(dialog(inst, ["ok%d@localhost" % i]))
        except Exception as exc:        # reported below, with the others
            errors.append(repr(exc))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(CONCURRENT_SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == CONCURRENT_SESSIONS
    assert all(r[0][0] == 250 for r in results), results
    assert len(peer.requests()) == CONCURRENT_SESSIONS
    opened = peer.conns()
    assert 1 <= opened <= POOL_MAX, opened
    for i in range(5):
        assert dialog(inst, ["ok@localhost"])[0][0] == 250
    assert peer.conns() == opened, "sequential sessions opened new connections"


def test_unix_relative_to_queue_directory(inst, peers):
    """unix:private/NAME is relative to queue_directory (chroot or not)."""
    configure(inst, "reject_unauth_destination, check_policy_service unix:private/policytest")
    peer = peers(unix=inst.spool / "private" / "policytest")
    got = dialog(inst, ["ok@localhost", "reject@localhost"])
    assert got[0][0] == 250 and got[1][0] == 554, got
    assert len(peer.requests()) == 2 and peer.conns() == 1


def test_session_gone_while_waiting(inst, peers):
    """A client that leaves while its request is pending: released when the answer comes."""
    peer = peers(delay=2)
    configure(inst, "reject_unauth_destination, %s" % service(peer, "timeout=10s"))
    with inst.raw(source=OUTSIDE) as c:
        c.reply()
        c.cmd("EHLO client.example")
        c.cmd("MAIL FROM:<a@example.net>")
        c.send(b"RCPT TO:<slow@localhost>\r\n")
    helpers.wait_until(lambda: len(peer.requests()) == 1, 5)
    time.sleep(3)
    assert dialog(inst, ["ok@localhost"])[0][0] == 250
    assert "panic" not in inst.log(), inst.log()


def test_bad_arguments(inst):
    """A bad check_policy_service argument is refused by posta check and posta start."""
    inst.killed_on_purpose = True
    inst.set_param("smtpd_recipient_restrictions",
                   "reject_unauth_destination, check_policy_service { inet:127.0.0.1:1, "
                   "timeout=soon }")
    r = inst.posta("check")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "smtpd_recipient_restrictions: check_policy_service: timeout: bad time value " \
        '"soon"' in out, out
    inst.set_param("smtpd_recipient_restrictions",
                   "reject_unauth_destination, check_policy_service")
    r = inst.posta("start")
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "requires an inet:host:port or unix:pathname" in out, out


@pytest.fixture
def dovecot(inst, tmp_path):
    """dovecot - Dovecot's auth socket at the instance's private/auth (user alice)."""
    if shutil.which("dovecot") is None and not os.path.exists(tlshelp.DOVECOT):
        pytest.skip("dovecot not installed (scripts/deps.sh test)")
    d = tlshelp.DovecotAuth(tmp_path / "dovecot", inst.spool / "private" / "auth",
                            {SASL_USER: SASL_PASSWORD})
    yield d
    d.stop()


def test_sasl_and_tls_attributes(inst, peers, dovecot):
    """After STARTTLS and AUTH the request carries sasl_* and encryption_* attributes."""
    peer = peers()
    sub = tlshelp.add_smtpd(inst, {
        "smtpd_tls_security_level": "encrypt", "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "dovecot", "smtpd_sasl_path": "private/auth",
        "smtpd_relay_restrictions": "permit_sasl_authenticated,reject"})
    dovecot.start()
    configure(inst, "reject_unauth_destination, %s" % service(peer))
    with smtplib.SMTP("127.0.0.1", sub, timeout=30) as s:
        s.ehlo("client.example")
        s.starttls(context=tlshelp.client_ctx())
        s.ehlo("client.example")
        s.user, s.password = SASL_USER, SASL_PASSWORD
        s.auth("PLAIN", s.auth_plain)
        s.mail("alice@example.net")
        code, text = s.rcpt("reject@localhost")
        assert code == 554 and b"Policy says no" in text, (code, text)
    q = peer.requests()[-1]
    assert q["sasl_username"] == SASL_USER and q["sasl_method"] == "PLAIN", q
    assert q["encryption_protocol"].startswith("TLSv1"), q
    assert q["encryption_cipher"] and int(q["encryption_keysize"]) >= 128, q
    assert q["server_port"] == str(sub), q


@pytest.fixture
def postgrey(tmp_path):
    """postgrey - Debian's postgrey on 127.0.0.1 with a temporary database; its port."""
    if not os.access(POSTGREY, os.X_OK):
        pytest.skip("postgrey is not installed (Debian package postgrey)")
    dbdir = tmp_path / "postgrey"
    dbdir.mkdir()
    user = "postgrey"
    try:
        pw = pwd.getpwnam(user)
        os.chown(dbdir, pw.pw_uid, pw.pw_gid)
    except KeyError:
        user = pwd.getpwuid(os.getuid()).pw_name
    port = helpers.free_dns_port()
    logf = open(tmp_path / "postgrey.log", "wb")
    cmd = [POSTGREY, "--inet=127.0.0.1:%d" % port, "--dbdir=%s" % dbdir,
           "--delay=%d" % POSTGREY_DELAY, "--user=%s" % user, "--max-age=1",
           "--whitelist-clients=/dev/null", "--whitelist-recipients=/dev/null"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)

    def listening():
        assert proc.poll() is None, (tmp_path / "postgrey.log").read_text()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False
    try:
        assert helpers.wait_until(listening, 20), (tmp_path / "postgrey.log").read_text()
        yield port
    finally:
        helpers.stop_tree(proc, {}, 10)
        logf.close()
        shutil.rmtree(dbdir, ignore_errors=True)


def test_postgrey_greylisting(inst, postgrey):
    """Real postgrey: the first attempt is greylisted (450), the retry after the delay accepted."""
    configure(inst, "reject_unauth_destination, check_policy_service inet:127.0.0.1:%d"
              % postgrey)
    first = dialog(inst, ["root@localhost"], sender="grey@example.net")
    assert first[0][0] == 450 and "Greylisted" in first[0][1], first
    again = dialog(inst, ["root@localhost"], sender="grey@example.net")
    assert again[0][0] == 450, again            # still within the delay
    time.sleep(POSTGREY_DELAY + 2)
    later = dialog(inst, ["root@localhost"], sender="grey@example.net")
    assert later[0][0] == 250, (later, inst.log()[-3000:])
    other = dialog(inst, ["root@localhost"], sender="new@example.net")
    assert other[0][0] == 450, other            # another triplet starts over
