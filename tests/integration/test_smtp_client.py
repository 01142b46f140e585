"""test_smtp_client.py - posta's smtp client against real SMTP/LMTP peers (issue 4)

One posta instance (qmgr, local, pickup, smtp) with relayhost
[127.0.0.1]:PORT hands mail for other domains to one of the aiosmtpd
peers of peers/, which records the raw bytes it got and the
connections it saw (netlab.Peer). The tests check what is on the wire
and what posta does with each answer:
  - CRLF-only line ends and correct dot-stuffing whatever the stored
    message holds (bare LFs, lines starting with dots, a lone dot),
    submitted through sendmail/pickup and through SMTP; nothing smuggled
    as a second transaction;
  - 1,000 messages to one destination go over a few reused connections;
  - 451 twice then 250: deferred with the reason in `posta queue -p`,
    retried by `posta flush`, delivered exactly once;
  - 550 for one of two recipients: one delivered, one bounced with an
    RFC 3464 report naming the Remote-MTA and an smtp Diagnostic-Code;
  - NOTIFY=SUCCESS to a peer without DSN: a "relayed" notice; to a peer
    with DSN: the parameters passed on and no notice;
  - SIZE: a message bigger than the peer's limit is never sent;
  - LMTP over unix: and inet: next hops with per-recipient replies;
  - the Postfix log form of a delivery;
  - HELO when EHLO is refused; SMTPUTF8 passed on when offered, 5.6.7
    when needed and not offered;
  - a slow destination (limited to 2 sessions) does not hold up another;
  - recipients of one message grouped per delivery, within the
    per-destination recipient limit;
  - lines longer than SMTP's 998 octets broken on the wire (RFC 5321
    4.5.3.1.6; Postfix's smtp_line_length_limit), nothing lost;
  - a server that never greets: deferred after smtp_helo_timeout;
  - delay_warning_time: the "delayed" notice carries the remote reply.

DIAGNOSTICS: every wait is bounded; failures quote the maillog and the
peer's output.
"""

import os
import re
import subprocess
import threading
import time

import pytest

import conftest
import dsn_check
import helpers
import netlab

pytestmark = pytest.mark.delivery

REMOTE = "remote.example"
SENDMAIL = conftest.BUILD / "bin" / "sendmail"
WAIT = 20.0                   # seconds for one message to get through
BULK_MESSAGES = 1000
BULK_THREADS = 4
BULK_CONCURRENCY = 5          # smtp_destination_concurrency_limit in that test
REUSE_FACTOR = 4              # connections allowed per session slot
BULK_WAIT = 100.0
QUIET_WAIT = 3.0              # seconds during which nothing more may happen
LONG_BACKOFF = "300s"         # only `posta flush` retries within the test
SIZE_LIMIT = 2000
BIG_BODY_LINES = 200

# The message of the wire tests, as lines; several start with dots and one
# is a lone dot, which a client that does not stuff would send as the end
# of DATA, with the rest (an SMTP command) as a smuggled transaction.
BODY_LINES = [
    b".leading dot",
    b"..two dots",
    b".",
    b"plain line",
    b"MAIL FROM:<smuggled@evil.example>",
    b"RCPT TO:<victim@evil.example>",
    b"DATA",
    b". dot space",
    b"...",
    b"last line",
]


@pytest.fixture
def relay(make_posta, lab):
    """relay - relay(script, *peer_args, **params): a started instance relaying to a peer."""
    def make(script, *peer_args, **params):
        peer = netlab.Peer(lab, lab.root / ("peer-" + script.split(".")[0]), script,
                           listen="127.0.0.1:0", args=peer_args)
        inst = make_posta("posta")
        inst.set_param("relayhost", "[127.0.0.1]:%d" % peer.port)
        inst.set_param("smtpd_error_sleep_time", "0s")
        for name, value in params.items():
            inst.set_param(name, value)
        inst.start()
        return inst, peer
    return make


def relay_name(peer):
    """relay_name - the relay= text of a delivery to the peer."""
    return r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % peer.port


def stuffed(lines):
    """stuffed - lines as SMTP DATA (dots doubled), each ending CRLF."""
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)


def check_wire(inst, peer, subject):
    """check_wire - the one message with subject arrived intact and well-formed."""
    msgs = peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    assert len(msgs) == 1, "expected one message, got %d" % len(msgs)
    raw = msgs[0]["raw"]
    problems = netlab.wire_problems(raw)
    assert not problems, "malformed DATA on the wire:\n%s\nraw: %r" % (
        "\n".join(problems), raw)
    content = netlab.unstuff(raw)
    head, sep, body = content.partition(b"\r\n\r\n")
    assert sep, "no header/body separator in %r" % content
    assert b"Subject: " + subject.encode() in head, head
    assert body == b"".join(l + b"\r\n" for l in BODY_LINES), \
        "body changed on the way:\n%r\nwire:\n%r" % (body, raw)
    # exactly the stuffed lines on the wire
    assert stuffed(BODY_LINES) + b".\r\n" in raw, raw
    # the lone dot and the commands after it stayed inside the one message
    mails = peer.events("mail")
    assert len(mails) == 1, "the peer saw %d MAIL commands: %r" % (len(mails), mails)
    assert not any(r["address"].endswith("evil.example") for r in peer.events("rcpt"))


def test_wire_from_smtp_with_bare_lf(relay):
    inst, peer = relay("capture.py")
    subject = helpers.token("wire-smtp")
    rcpt = "someone@" + REMOTE
    # Submitted over SMTP with a mix of bare LF and CRLF line ends and
    # stuffed dots; smtpd stores LF-only lines with the dots removed.
    header = ("From: sender@localhost\nTo: %s\r\nSubject: %s\n\n" % (rcpt, subject)).encode()
    data = bytearray(header)
    for i, line in enumerate(BODY_LINES):
        data += (b"." + line if line.startswith(b".") else line)
        data += b"\n" if i % 2 == 0 else b"\r\n"
    data += b".\r\n"
    with inst.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<%s>" % rcpt)[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(bytes(data))
        code, text = c.reply()
        assert code == 250, (code, text)
        c.cmd("QUIT")
    check_wire(inst, peer, subject)
    inst.wait_queue_empty()


def test_wire_from_sendmail_with_bare_lf(relay):
    inst, peer = relay("capture.py")
    assert SENDMAIL.is_file(), "posta's sendmail not built"
    subject = helpers.token("wire-sendmail")
    rcpt = "someone@" + REMOTE
    # sendmail -i: a lone dot is content; LF and CRLF line ends mixed
    text = ("From: root@localhost\nTo: %s\nSubject: %s\r\n\n" % (rcpt, subject)).encode()
    for i, line in enumerate(BODY_LINES):
        text += line + (b"\n" if i % 3 else b"\r\n")
    env = dict(os.environ, MAIL_CONFIG=str(inst.etc))
    r = subprocess.run([str(SENDMAIL), "-i", "-f", "root@localhost", rcpt], input=text,
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=WAIT)
    assert r.returncode == 0, "sendmail failed: %r\nlog:\n%s" % (r.stdout, inst.log())
    check_wire(inst, peer, subject)
    inst.wait_queue_empty()


def test_log_line_in_postfix_form(relay):
    inst, peer = relay("capture.py")
    subject = helpers.token("logform")
    rcpt = "logged@" + REMOTE
    assert netlab.send(inst, "sender@localhost", rcpt, subject) == {}
    peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    inst.wait_log(r"to=<%s>, relay=%s, delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/"
                  r"[0-9.]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as PEER1\)"
                  % (re.escape(rcpt), relay_name(peer)))
    inst.wait_queue_empty()
    # the peer got the envelope as submitted
    m = peer.messages()[0]
    assert m["mail_from"] == "sender@localhost" and m["rcpts"] == [rcpt], m
    ehlo = peer.events("ehlo")
    assert ehlo and ehlo[0]["name"], "no EHLO: %r" % peer.events()


def test_thousand_messages_reuse_connections(relay):
    inst, peer = relay("capture.py",
                       smtp_destination_concurrency_limit=str(BULK_CONCURRENCY),
                       default_destination_concurrency_limit=str(BULK_CONCURRENCY))
    tag = helpers.token("bulk")
    errors = []

    def submit(part):
        try:
            with inst.smtp(timeout=60) as s:
                for i in range(part, BULK_MESSAGES, BULK_THREADS):
                    msg = ("From: bulk@localhost\r\nTo: r%d@%s\r\nSubject: %s-%d\r\n\r\n"
                           "message %d\r\n" % (i, REMOTE, tag, i, i))
                    s.sendmail("bulk@localhost", ["r%d@%s" % (i, REMOTE)], msg)
        except Exception as e:          # reported by the main thread
            errors.append(repr(e))
    t0 = time.monotonic()
    threads = [threading.Thread(target=submit, args=(k,)) for k in range(BULK_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BULK_WAIT)
    assert not errors, "submission failed: %s" % errors[:3]
    msgs = peer.wait_messages(BULK_MESSAGES, max(1.0, BULK_WAIT - (time.monotonic() - t0)),
                              lambda: inst.log()[-3000:])
    subjects = []
    for m in msgs:
        found = re.search(rb"Subject: (\S+)", m["raw"])
        subjects.append(found.group(1) if found else None)
    assert len(msgs) == BULK_MESSAGES, "%d messages arrived" % len(msgs)
    assert len(set(subjects)) == BULK_MESSAGES, "duplicates or missing subjects"
    conns = peer.connections()
    limit = BULK_CONCURRENCY * REUSE_FACTOR
    assert conns <= limit, (
        "%d connections for %d messages to one destination (at most %d expected: "
        "concurrency %d, sessions reused)" % (conns, BULK_MESSAGES, limit, BULK_CONCURRENCY))
    inst.wait_queue_empty()


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_tempfail_twice_then_delivered_once(relay, stage):
    inst, peer = relay("tempfail.py", "--tempfail-stage", stage,
                       minimal_backoff_time=LONG_BACKOFF, maximal_backoff_time=LONG_BACKOFF)
    subject = helpers.token("grey")
    rcpt = "grey@" + REMOTE
    assert netlab.send(inst, "sender@localhost", rcpt, subject) == {}
    for attempt in (1, 2):
        kind = "rcpt" if stage == "rcpt" else "refused"
        inst.wait_for(lambda: any(e.get("attempt") == attempt and "451" in e["reply"]
                                  for e in peer.events(kind)),
                      "attempt %d answered 451 by the peer" % attempt)
        # deferred: the remote's reply in the log and in `posta queue -p`
        inst.wait_log(r"to=<%s>, relay=%s, .*dsn=4\.\d\.\d, status=deferred "
                      r"\(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 451 .*attempt %d"
                      % (re.escape(rcpt), relay_name(peer), attempt))
        text = inst.wait_for(lambda: (lambda t: t if "attempt %d" % attempt in t else None)(
            netlab.queue_text(inst)), "the 451 reason in `posta queue -p`")
        assert "451" in text and rcpt in text, text
        js = inst.queue_json()
        assert len(js) == 1 and js[0].get("queue_name") in (None, "deferred"), js
        assert "451" in str(js), js
        assert len(peer.events("message")) == 0, "delivered while the peer said 451"
        r = inst.posta("flush")
        assert r.returncode == 0, r.stderr
    msgs = peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    assert msgs[0]["attempt"] == 3 and msgs[0]["rcpts"] == [rcpt], msgs
    inst.wait_log(r"to=<%s>, relay=%s, .*dsn=2\.0\.0, status=sent"
                  % (re.escape(rcpt), relay_name(peer)))
    inst.wait_queue_empty()
    inst.posta("flush")
    time.sleep(QUIET_WAIT)
    assert len(peer.events("message")) == 1, "delivered more than once: %r" % (
        peer.events("message"),)


def test_one_of_two_recipients_rejected(relay, users):
    inst, peer = relay("reject.py")
    alice = users.alice
    subject = helpers.token("half")
    good, bad = "good@" + REMOTE, "rejectme@" + REMOTE
    assert netlab.send(inst, alice.addr, [good, bad], subject) == {}
    msgs = peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    assert msgs[0]["rcpts"] == [good], msgs[0]
    inst.wait_log(r"to=<%s>, relay=%s, .*dsn=2\.0\.0, status=sent" % (
        re.escape(good), relay_name(peer)))
    inst.wait_log(r"to=<%s>, relay=%s, .*dsn=5\.1\.1, status=bounced \(host "
                  r"127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.1\.1 " % (
                      re.escape(bad), relay_name(peer)))
    report = netlab.wait_report(inst, inst.mbox(alice.name), subject)
    dsn_check.check_dsn(report.as_bytes(), final_recipient=bad, status="5.1.1",
                        action="failed", ret=None)
    blocks = dsn_check.delivery_status(report)
    rcpt_blocks = blocks[1:]
    assert len(rcpt_blocks) == 1, "only the rejected recipient is reported: %r" % blocks
    b = rcpt_blocks[0]
    assert "remote-mta" in b, "no Remote-MTA: %r" % b
    assert b["remote-mta"].replace(" ", "").lower() == "dns;127.0.0.1", b["remote-mta"]
    assert "diagnostic-code" in b, "no Diagnostic-Code: %r" % b
    diag = b["diagnostic-code"]
    assert diag.lower().startswith("smtp;"), diag
    assert "550 5.1.1" in diag and bad in diag, diag
    inst.wait_queue_empty()
    assert len(peer.events("message")) == 1


def test_notify_success_to_peer_without_dsn_gives_relayed(relay, users):
    inst, peer = relay("capture.py")
    alice = users.alice
    subject = helpers.token("relayed")
    rcpt = "notify@" + REMOTE
    assert netlab.send(inst, alice.addr, rcpt, subject, mail_options=["RET=HDRS"],
                       rcpt_options=["NOTIFY=SUCCESS"]) == {}
    msgs = peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    # the peer offers no DSN: no DSN parameters may reach it
    assert msgs[0]["rcpt_options"] == [[]], msgs[0]
    assert not any(o.startswith(("RET=", "ENVID=")) for o in msgs[0]["mail_options"]), msgs[0]
    report = netlab.wait_report(inst, inst.mbox(alice.name), subject)
    dsn_check.check_dsn(report.as_bytes(), final_recipient=rcpt, status="2.0.0",
                        action="relayed", ret=None)
    inst.wait_queue_empty()


def test_notify_passed_to_peer_with_dsn(relay, users):
    inst, peer = relay("capture.py", "--dsn")
    alice = users.alice
    subject = helpers.token("dsnpass")
    rcpt = "notify@" + REMOTE
    assert netlab.send(inst, alice.addr, rcpt, subject,
                       mail_options=["RET=HDRS", "ENVID=env-" + subject],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                                     "ORCPT=rfc822;orig@" + REMOTE]) == {}
    msgs = peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    mopts = msgs[0]["mail_options"]
    ropts = msgs[0]["rcpt_options"][0]
    assert "RET=HDRS" in mopts, mopts
    assert ("ENVID=ENV-" + subject.upper()) in mopts, mopts
    assert "NOTIFY=SUCCESS,FAILURE" in ropts, ropts
    assert ("ORCPT=RFC822;ORIG@" + REMOTE.upper()) in ropts, ropts
    inst.wait_queue_empty()
    # the peer took over the duty to notify: no "relayed" notice from us
    time.sleep(QUIET_WAIT)
    notices = netlab.reports(inst.mbox(alice.name))
    assert not notices, "unexpected notice (the peer offered DSN):\n%s\nlog:\n%s" % (
        notices[0].as_string()[:3000], inst.log()[-3000:])


def test_size_refused_before_sending(relay, users):
    inst, peer = relay("capture.py", "--size", str(SIZE_LIMIT))
    alice = users.alice
    subject = helpers.token("big")
    rcpt = "big@" + REMOTE
    body = "".join("line %04d of a message too big for the peer\n" % i
                   for i in range(BIG_BODY_LINES))
    assert netlab.send(inst, alice.addr, rcpt, subject, body=body) == {}
    inst.wait_log(r"to=<%s>, relay=%s, .*dsn=5\.3\.4, status=bounced" % (
        re.escape(rcpt), relay_name(peer)))
    report = netlab.wait_report(inst, inst.mbox(alice.name), subject)
    dsn_check.check_dsn(report.as_bytes(), final_recipient=rcpt, status="5.3.4",
                        action="failed", ret=None)
    assert peer.events("message") == [], "a message over the peer's SIZE was sent"
    inst.wait_queue_empty()


@pytest.mark.parametrize("kind", ["unix", "inet"])
def test_lmtp_per_recipient(make_posta, lab, kind):
    conftest.require_programs("lmtp")
    peer_dir = lab.root / "lmtp"
    if kind == "unix":
        sock = lab.root / "lmtp.sock"
        peer = netlab.Peer(lab, peer_dir, "lmtp.py", unix=sock)
        nexthop = "lmtp:unix:%s" % sock
        relay_re = r"[^,]*%s[^,]*" % re.escape(str(sock))
    else:
        peer = netlab.Peer(lab, peer_dir, "lmtp.py", listen="127.0.0.1:0")
        nexthop = "lmtp:inet:127.0.0.1:%d" % peer.port
        relay_re = relay_name(peer)
    inst = make_posta("posta")
    transport = inst.etc / "transport"
    transport.write_text("lmtp.example %s\n" % nexthop)
    inst.set_param("transport_maps", "texthash:%s" % transport)
    inst.start()
    subject = helpers.token("lmtp")
    ok, full = "ok@lmtp.example", "full@lmtp.example"
    assert netlab.send(inst, "sender@localhost", [ok, full], subject) == {}
    msgs = peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    assert sorted(msgs[0]["rcpts"]) == sorted([ok, full]), msgs[0]
    assert netlab.wire_problems(msgs[0]["raw"]) == []
    inst.wait_log(r"to=<%s>, relay=%s, .*dsn=2\.0\.0, status=sent \(250 2\.0\.0 <%s> "
                  r"delivered" % (re.escape(ok), relay_re, re.escape(ok)))
    inst.wait_log(r"to=<%s>, relay=%s, .*dsn=4\.2\.2, status=deferred \(.*452 4\.2\.2"
                  % (re.escape(full), relay_re))
    js = inst.queue_json()
    assert len(js) == 1, js
    pending = [r["address"] for r in js[0]["recipients"]]
    assert pending == [full], "only the deferred recipient stays queued: %r" % js
    lhlo = [line for line in (peer.dir / "conn-1.raw").read_bytes().split(b"\r\n")
            if line.upper().startswith(b"LHLO ")]
    assert lhlo, "the client did not say LHLO"


def test_helo_fallback(relay):
    inst, peer = relay("capture.py", "--no-ehlo")
    subject = helpers.token("helo")
    rcpt = "old@" + REMOTE
    assert netlab.send(inst, "sender@localhost", rcpt, subject) == {}
    msgs = peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    assert msgs[0]["rcpts"] == [rcpt]
    assert peer.events("helo"), "no HELO after EHLO was refused: %r" % peer.events()
    # no ESMTP parameters to a server that only speaks HELO
    assert msgs[0]["mail_options"] == [] and msgs[0]["rcpt_options"] == [[]], msgs[0]
    inst.wait_queue_empty()


def submit_utf8(inst, sender, rcpt, subject):
    """submit_utf8 - one message with SMTPUTF8 to a UTF-8 recipient (raw SMTP)."""
    with inst.raw() as c:
        assert "SMTPUTF8" in [k.split()[0].upper() for k in c.greet()], "posta lacks SMTPUTF8"
        assert c.cmd("MAIL FROM:<%s> SMTPUTF8" % sender)[0] == 250
        code, text = c.cmd("RCPT TO:<%s>" % rcpt)
        assert code == 250, (code, text)
        assert c.cmd("DATA")[0] == 354
        c.send(("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nol\u00e1\r\n.\r\n"
                % (sender, rcpt, subject)).encode("utf-8"))
        code, text = c.reply()
        assert code == 250, (code, text)
        c.cmd("QUIT")


def test_smtputf8_needed_and_offered(relay):
    inst, peer = relay("capture.py", "--smtputf8")
    subject = helpers.token("utf8")
    rcpt = "jos\u00e9@" + REMOTE
    submit_utf8(inst, "sender@localhost", rcpt, subject)
    msgs = peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    assert msgs[0]["rcpts"] == [rcpt], msgs[0]
    assert "SMTPUTF8" in msgs[0]["mail_options"], msgs[0]
    inst.wait_queue_empty()


def test_smtputf8_needed_not_offered_bounces(relay, users):
    inst, peer = relay("capture.py")
    alice = users.alice
    subject = helpers.token("utf8no")
    rcpt = "jos\u00e9@" + REMOTE
    submit_utf8(inst, alice.addr, rcpt, subject)
    inst.wait_log(r"to=<%s>, relay=%s, .*dsn=5\.6\.7, status=bounced" % (
        re.escape(rcpt), relay_name(peer)))
    netlab.wait_report(inst, inst.mbox(alice.name), subject)
    assert peer.events("message") == [] and peer.events("mail") == [], peer.events()
    inst.wait_queue_empty()


SLOW_DELAY = 3.0              # seconds the slow peer takes per message
SLOW_MESSAGES = 4
SLOW_CONCURRENCY = 2
FAST_WAIT = 2.5               # the fast domain's mail must not wait for the slow one


def max_busy(events):
    """max_busy - the most transactions a peer had in progress at once (events in order).

    A transaction runs from MAIL to the reply after DATA (or the end of
    its connection); idle cached connections do not count, as in
    Postfix, whose concurrency limit counts deliveries, not sessions.
    """
    busy = set()
    best = 0
    for ev in events:
        if ev["ev"] == "mail":
            busy.add(ev["conn"])
            best = max(best, len(busy))
        elif ev["ev"] in ("message", "refused", "close"):
            busy.discard(ev["conn"])
    return best


def test_slow_destination_does_not_block_others(make_posta, lab):
    slow = netlab.Peer(lab, lab.root / "slow", "capture.py", listen="127.0.0.1:0",
                       args=["--delay", str(SLOW_DELAY)])
    fast = netlab.Peer(lab, lab.root / "fast", "capture.py", listen="127.0.0.1:0")
    inst = make_posta("posta")
    transport = inst.etc / "transport"
    transport.write_text("slow.example smtp:[127.0.0.1]:%d\n" % slow.port)
    inst.set_param("transport_maps", "texthash:%s" % transport)
    inst.set_param("relayhost", "[127.0.0.1]:%d" % fast.port)
    inst.set_param("smtp_destination_concurrency_limit", str(SLOW_CONCURRENCY))
    inst.start()
    tag = helpers.token("slow")
    for i in range(SLOW_MESSAGES):
        assert netlab.send(inst, "sender@localhost", "s%d@slow.example" % i,
                           "%s-%d" % (tag, i)) == {}
    t0 = time.monotonic()
    assert netlab.send(inst, "sender@localhost", "quick@" + REMOTE, tag + "-fast") == {}
    fast.wait_messages(1, FAST_WAIT, lambda: "the fast destination waited for the slow one\n"
                       + inst.log()[-3000:])
    assert time.monotonic() - t0 < FAST_WAIT
    slow.wait_messages(SLOW_MESSAGES, SLOW_DELAY * SLOW_MESSAGES + WAIT,
                       lambda: inst.log()[-3000:])
    assert max_busy(slow.events()) <= SLOW_CONCURRENCY, (
        "more than %d deliveries at once to one destination: %r" % (
            SLOW_CONCURRENCY, [(e["ev"], e.get("conn")) for e in slow.events()
                               if e["ev"] in ("connect", "mail", "message", "close")]))
    inst.wait_queue_empty()


def test_recipients_grouped_and_limited(relay):
    inst, peer = relay("capture.py", smtp_destination_recipient_limit="2")
    subject = helpers.token("group")
    rcpts = ["g%d@%s" % (i, REMOTE) for i in range(3)]
    assert netlab.send(inst, "sender@localhost", rcpts, subject) == {}
    inst.wait_queue_empty()
    msgs = peer.wait_messages(2, WAIT, lambda: inst.log()[-4000:])
    got = sorted(len(m["rcpts"]) for m in msgs)
    assert got == [1, 2], "3 recipients with a limit of 2 per delivery: %r" % (
        [m["rcpts"] for m in msgs],)
    assert sorted(r for m in msgs for r in m["rcpts"]) == rcpts


LONG_LINE = 3000              # characters in one body line (SMTP allows 998)
SMTP_LINE_MAX = 1000          # RFC 5321 4.5.3.1.6, CRLF included


def test_long_lines_folded_on_the_wire(relay):
    inst, peer = relay("capture.py")
    subject = helpers.token("long")
    line = "".join(chr(ord("a") + i % 26) for i in range(LONG_LINE))
    # raw SMTP: the email package would encode a long line as quoted-printable
    rcpt = "long@" + REMOTE
    with inst.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<%s>" % rcpt)[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(("Subject: %s\r\n\r\nshort\r\n%s\r\nend\r\n.\r\n" % (subject, line)).encode())
        code, text = c.reply()
        assert code == 250, (code, text)
        c.cmd("QUIT")
    msgs = peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    raw = msgs[0]["raw"]
    assert netlab.wire_problems(raw) == []
    too_long = [len(l) for l in raw.split(b"\r\n") if len(l) + 2 > SMTP_LINE_MAX]
    assert not too_long, "lines over %d octets on the wire: %r" % (SMTP_LINE_MAX, too_long)
    # nothing lost: the letters are all there in order once the breaks are removed
    joined = re.sub(rb"\r\n[ \t]?", b"", netlab.unstuff(raw))
    assert line.encode() in joined
    inst.wait_queue_empty()


HELO_TIMEOUT = 2


def test_greeting_timeout_defers(make_posta):
    import socket
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)            # connections complete, nobody ever greets
    try:
        inst = make_posta("posta")
        inst.set_param("relayhost", "[127.0.0.1]:%d" % mute.getsockname()[1])
        inst.set_param("smtp_helo_timeout", "%ds" % HELO_TIMEOUT)
        inst.start()
        subject = helpers.token("mute")
        rcpt = "mute@" + REMOTE
        t0 = time.monotonic()
        assert netlab.send(inst, "sender@localhost", rcpt, subject) == {}
        inst.wait_log(r"to=<%s>, relay=[^,]*, .*dsn=4\.\d\.\d, status=deferred \(conversation "
                      r"with 127\.0\.0\.1\[127\.0\.0\.1\] timed out while receiving the initial "
                      r"server greeting\)" % re.escape(rcpt), timeout=HELO_TIMEOUT + WAIT)
        assert time.monotonic() - t0 < HELO_TIMEOUT + WAIT
        assert "timed out" in netlab.queue_text(inst)
    finally:
        mute.close()


def test_delay_warning_names_the_remote_reply(relay, users):
    inst, peer = relay("tempfail.py", "--tempfail", "1000", delay_warning_time="1s")
    alice = users.alice
    subject = helpers.token("delayed")
    rcpt = "slow@" + REMOTE
    assert netlab.send(inst, alice.addr, rcpt, subject) == {}
    report = netlab.wait_report(inst, inst.mbox(alice.name), subject)
    dsn_check.check_dsn(report.as_bytes(), final_recipient=rcpt, status="4.7.1",
                        action="delayed", ret=None)
    b = [x for x in dsn_check.delivery_status(report)[1:]
         if x.get("final-recipient", "").endswith(rcpt)][0]
    assert b.get("remote-mta", "").replace(" ", "").lower() == "dns;127.0.0.1", b
    assert b.get("diagnostic-code", "").lower().startswith("smtp; 451 4.7.1"), b
    assert peer.events("message") == []
    assert len(inst.queue_json()) == 1, "the message stays queued"
