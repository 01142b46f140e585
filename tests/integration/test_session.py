"""test_session.py - SMTP sessions with real clients: smtplib, swaks, raw sockets

Covers a plain transaction, the EHLO keywords, PIPELINING (one write for
MAIL/RCPT/DATA; swaks --pipeline), BDAT, the small verbs, bad input
(never a hang, always 5xx), over-long lines, SMTPUTF8 and the DSN
parameters as they are stored in the queue file, and hopcount_limit
(a mail loop refused at the end of data).
"""

import re
import subprocess

import pytest

import helpers
from conftest import one_smtpd

OUTSIDE = "127.0.0.2"

SWAKS = "/usr/bin/swaks"
SWAKS_TIMEOUT = 60
LONG_LINE = 10000

MESSAGE = (b"From: sender@localhost\r\n"
           b"To: root@localhost\r\n"
           b"Subject: integration test\r\n"
           b"\r\n"
           b"Hello from the integration tests.\r\n"
           b"..a line that starts with a dot\r\n")


def transaction(c, sender="sender@localhost", rcpt="root@localhost", body=MESSAGE):
    """transaction - MAIL, RCPT, DATA, content on raw client c; the queue ID."""
    assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt)[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(body + b".\r\n")
    code, text = c.reply()
    assert code == 250, (code, text)
    return helpers.queued_id(text)


def run_swaks(posta, *extra):
    """run_swaks - swaks to the instance; the CompletedProcess."""
    cmd = [SWAKS, "--server", "127.0.0.1", "--port", str(posta.port),
           "--from", "sender@localhost", "--to", "root@localhost",
           "--helo", "swaks.example", "--timeout", "20"] + list(extra)
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=SWAKS_TIMEOUT)


def test_smtplib_plain_session(posta):
    with posta.smtp() as s:
        s.ehlo("client.example")
        refused = s.sendmail("sender@localhost", ["root@localhost"], MESSAGE)
        assert refused == {}
    files = posta.complete_files()
    assert len(files) == 1
    q = posta.qfile(files[0])
    assert q["complete"]
    assert q["sender"] == "sender@localhost"
    assert [r["addr"] for r in q["rcpts"]] == ["root@localhost"]
    # smtplib dot-stuffs, the server un-stuffs: the bytes come back as given
    assert helpers.strip_received(q["content"]) == MESSAGE.replace(b"\r\n", b"\n")
    assert q["content"].startswith(b"Received:")
    # mailq format lists the queue ID, size and addresses
    r = posta.posta("queue", "-p")
    assert r.returncode == 0, r.stderr
    assert files[0] in r.stdout
    assert "sender@localhost" in r.stdout and "root@localhost" in r.stdout
    # JSON lines with Postfix's field names
    js = posta.queue_json()
    assert len(js) == 1
    assert js[0]["queue_id"] == files[0]
    assert js[0]["sender"] == "sender@localhost"
    assert [r["address"] for r in js[0]["recipients"]] == ["root@localhost"]
    assert js[0]["message_size"] >= len(MESSAGE.replace(b"\r\n", b"\n"))


def test_reply_names_queue_file(posta):
    with posta.raw() as c:
        c.greet()
        qid = transaction(c)
        assert c.cmd("QUIT")[0] == 221
    assert posta.complete_files() == [qid]
    # the raw client sent MESSAGE already dot-stuffed
    stored = helpers.strip_received(posta.qfile(qid)["content"])
    assert stored == helpers.smtp_to_stored(MESSAGE)


def test_swaks_session(posta):
    r = run_swaks(posta)
    assert r.returncode == 0, r.stdout
    assert "queued as" in r.stdout
    assert len(posta.complete_files()) == 1


def test_ehlo_keywords(posta):
    with posta.smtp() as s:
        code, _ = s.ehlo("client.example")
        assert code == 250
        f = s.esmtp_features
        for kw in ("pipelining", "8bitmime", "enhancedstatuscodes", "smtputf8",
                   "dsn", "chunking"):
            assert kw in f, "EHLO lacks %s: %r" % (kw, f)
        assert f.get("size", "").strip() == "10240000"


def test_size_keyword_follows_config(inst):
    inst.set_param("message_size_limit", "20000")
    inst.start()
    with inst.smtp() as s:
        s.ehlo("client.example")
        assert s.esmtp_features.get("size", "").strip() == "20000"


def test_pipelined_transaction_one_write(posta):
    with posta.raw() as c:
        assert "PIPELINING" in [k.upper() for k in c.greet()]
        c.send(b"MAIL FROM:<sender@localhost>\r\n"
               b"RCPT TO:<root@localhost>\r\n"
               b"RCPT TO:<postmaster@localhost>\r\n"
               b"DATA\r\n")
        codes = [code for code, _ in c.replies(4)]
        assert codes == [250, 250, 250, 354]
        c.send(MESSAGE + b".\r\n")
        code, text = c.reply()
        assert code == 250
        qid = helpers.queued_id(text)
        # a second transaction, with QUIT, in one write after the first
        c.send(b"RSET\r\nMAIL FROM:<a@localhost>\r\nRCPT TO:<root@localhost>\r\n"
               b"NOOP\r\nQUIT\r\n")
        assert [code for code, _ in c.replies(5)] == [250, 250, 250, 250, 221]
    q = posta.qfile(qid)
    assert [r["addr"] for r in q["rcpts"]] == ["root@localhost", "postmaster@localhost"]
    assert len(posta.complete_files()) == 1


def test_pipelined_replies_keep_order_with_errors(posta):
    with posta.raw() as c:
        c.greet()
        c.send(b"MAIL FROM:<sender@localhost>\r\n"
               b"RCPT TO:<no-such-user-xyz@localhost>\r\n"
               b"RCPT TO:<root@localhost>\r\n"
               b"DATA\r\n")
        codes = [code for code, _ in c.replies(4)]
        assert codes[0] == 250 and codes[1] == 550 and codes[2] == 250 and codes[3] == 354
        c.send(MESSAGE + b".\r\n")
        code, text = c.reply()
        assert code == 250
    q = posta.qfile(helpers.queued_id(text))
    assert [r["addr"] for r in q["rcpts"]] == ["root@localhost"]


def test_swaks_pipeline(posta):
    r = run_swaks(posta, "--pipeline")
    assert r.returncode == 0, r.stdout
    assert "queued as" in r.stdout
    assert len(posta.complete_files()) == 1


def test_bdat_chunks(posta):
    part1 = b"From: sender@localhost\r\nSubject: bdat\r\n\r\n"
    part2 = b"line one\r\n.\r\nnot the end: BDAT has no dot rule\r\n"
    part3 = b".leading dot kept as is\r\nlast line\r\n"
    with posta.raw() as c:
        assert "CHUNKING" in [k.upper() for k in c.greet()]
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        assert c.reply()[0] == 250
        c.send(b"BDAT %d\r\n" % len(part2) + part2)
        assert c.reply()[0] == 250
        c.send(b"BDAT %d LAST\r\n" % len(part3) + part3)
        code, text = c.reply()
        assert code == 250, (code, text)
        qid = helpers.queued_id(text)
        assert c.cmd("QUIT")[0] == 221
    content = helpers.strip_received(posta.qfile(qid)["content"])
    assert content == (part1 + part2 + part3).replace(b"\r\n", b"\n")
    assert posta.complete_files() == [qid]


def test_bdat_zero_last_and_pipelined(posta):
    body = b"Subject: bdat zero\r\n\r\nbody\r\n"
    with posta.raw() as c:
        c.greet()
        c.send(b"MAIL FROM:<sender@localhost>\r\nRCPT TO:<root@localhost>\r\n"
               + b"BDAT %d\r\n" % len(body) + body + b"BDAT 0 LAST\r\n")
        codes = c.replies(4)
        assert [code for code, _ in codes] == [250, 250, 250, 250], codes
        qid = helpers.queued_id(codes[3][1])
    content = helpers.strip_received(posta.qfile(qid)["content"])
    assert content == body.replace(b"\r\n", b"\n")


def test_bdat_then_data_is_refused(posta):
    with posta.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        c.send(b"BDAT 5\r\nabcde")
        assert c.reply()[0] == 250
        code, _ = c.cmd("DATA")
        assert code == 503
    assert posta.complete_files() == []


def test_small_verbs(posta):
    with posta.raw() as c:
        c.greet()
        assert c.cmd("NOOP")[0] == 250
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        assert c.cmd("RSET")[0] == 250
        # after RSET the transaction is gone: RCPT needs a new MAIL
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 503
        assert c.cmd("VRFY root")[0] == 252
        code, _ = c.cmd("HELP")
        assert code in (211, 214)
        code, text = c.cmd("QUIT")
        assert code == 221
        assert c.closed_by_peer()


def test_bad_commands_get_5xx(posta):
    bad = [b"FOO bar", b"MAIL", b"MAIL FROM:<unterminated", b"RCPT TO:<root@localhost>",
           b"DATA", b"\x00\xff\xfe", b"MAIL FROM:<a@localhost> BOGUS=1"]
    with posta.raw() as c:
        c.greet()
        for line in bad:
            code, text = c.cmd(line)
            assert 500 <= code <= 599, (line, code, text)
        # still usable afterwards
        qid = transaction(c)
    assert posta.complete_files() == [qid]


def test_bad_bdat_closes(posta):
    """A BDAT without a valid size cannot be skipped: 5xx, then the server hangs up."""
    with posta.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        code, text = c.cmd("BDAT x")
        assert 500 <= code <= 599, (code, text)
        assert c.closed_by_peer()
    assert posta.queue_files() == []


def test_helo_required(inst):
    inst.set_param("smtpd_helo_required", "yes")
    inst.set_param("smtpd_error_sleep_time", "0s")
    inst.start()
    with inst.raw() as c:
        assert c.reply()[0] == 220
        code, text = c.cmd("MAIL FROM:<sender@localhost>")
        assert code == 503, (code, text)
        assert c.cmd("HELO client.example")[0] == 250
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250


def test_no_helo_by_default(posta):
    """As in Postfix (smtpd_helo_required = no), MAIL may come without HELO."""
    with posta.raw() as c:
        assert c.reply()[0] == 220
        qid = transaction(c)
    assert posta.complete_files() == [qid]


def test_long_command_line(posta):
    with posta.raw() as c:
        c.greet()
        c.send(b"NOOP " + b"x" * LONG_LINE + b"\r\n")
        code, text = c.reply()
        assert code == 500, (code, text)
        # the session goes on: exactly one reply for the long line
        assert c.cmd("NOOP")[0] == 250
        qid = transaction(c)
    assert posta.complete_files() == [qid]


def test_long_mail_command(posta):
    with posta.raw() as c:
        c.greet()
        c.send(b"MAIL FROM:<" + b"a" * LONG_LINE + b"@localhost>\r\n")
        code, _ = c.reply()
        assert code == 500
        assert c.cmd("NOOP")[0] == 250


def test_smtputf8_address(posta):
    utf8_sender = "jörg@localhost"
    with posta.raw() as c:
        c.greet()
        code, text = c.cmd("MAIL FROM:<%s>" % utf8_sender)
        assert 550 <= code <= 559, (code, text)
        code, text = c.cmd("MAIL FROM:<%s> SMTPUTF8" % utf8_sender)
        assert code == 250, (code, text)
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: ünïcode\r\n\r\nGrüße\r\n.\r\n".encode("utf-8"))
        code, text = c.reply()
        assert code == 250, (code, text)
    q = posta.qfile(helpers.queued_id(text))
    assert q["sender"] == utf8_sender
    assert q["attrs"].get("smtputf8") == "yes"
    assert "Grüße".encode("utf-8") in q["content"]


def test_8bitmime_body(posta):
    with posta.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost> BODY=8BITMIME")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: 8bit\r\n\r\n\xe9t\xe9\r\n.\r\n")
        code, text = c.reply()
        assert code == 250
    q = posta.qfile(helpers.queued_id(text))
    assert q["attrs"].get("encoding", "").lower() == "8bitmime"
    assert b"\xe9t\xe9\n" in q["content"]


def test_dsn_parameters_stored(posta):
    with posta.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost> RET=HDRS ENVID=posta-envid-1234")[0] == 250
        code, text = c.cmd("RCPT TO:<root@localhost> NOTIFY=SUCCESS,FAILURE "
                           "ORCPT=rfc822;orig+2Buser@example.org")
        assert code == 250, (code, text)
        code, text = c.cmd("RCPT TO:<postmaster@localhost> NOTIFY=NEVER")
        assert code == 250, (code, text)
        assert c.cmd("DATA")[0] == 354
        c.send(MESSAGE + b".\r\n")
        code, text = c.reply()
        assert code == 250
    qid = helpers.queued_id(text)
    raw = (posta.spool / "incoming" / qid).read_bytes()
    assert b"posta-envid-1234" in raw
    assert b"orig+user@example.org" in raw
    q = posta.qfile(qid)
    assert q["attrs"].get("envid") == "posta-envid-1234"
    assert q["attrs"].get("ret") == "HDRS"
    r0, r1 = q["rcpts"]
    assert r0["addr"] == "root@localhost"
    assert r0["orcpt"].lower() == "rfc822;orig+user@example.org"
    assert r0["notify"] == helpers.QNOTIFY_SUCCESS | helpers.QNOTIFY_FAILURE
    assert r1["addr"] == "postmaster@localhost"
    assert r1["orcpt"] is None
    assert r1["notify"] == helpers.QNOTIFY_NEVER
    js = [m for m in posta.queue_json() if m["queue_id"] == qid]
    assert len(js) == 1
    assert [r["address"] for r in js[0]["recipients"]] == [
        "root@localhost", "postmaster@localhost"]


def test_bad_dsn_parameters(posta):
    with posta.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost> RET=SOMETIMES")[0] == 501
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        code, _ = c.cmd("RCPT TO:<root@localhost> NOTIFY=NEVER,SUCCESS")
        assert code == 501


def test_null_sender(posta):
    with posta.raw() as c:
        c.greet()
        qid = transaction(c, sender="")
    assert posta.qfile(qid)["sender"] == ""


def test_many_sessions_at_once(posta):
    clients = [posta.raw() for _ in range(20)]
    try:
        for c in clients:
            c.greet()
        for c in clients:
            c.send(b"MAIL FROM:<sender@localhost>\r\nRCPT TO:<root@localhost>\r\nDATA\r\n")
        for c in clients:
            assert [code for code, _ in c.replies(3)] == [250, 250, 354]
        for c in clients:
            c.send(MESSAGE + b".\r\n")
        ids = {helpers.queued_id(c.reply()[1]) for c in clients}
    finally:
        for c in clients:
            c.close()
    assert len(ids) == 20
    assert sorted(ids) == posta.complete_files()


@pytest.mark.parametrize("hops,code", [(50, 250), (51, 554)])
def test_hopcount_limit(posta, hops, code):
    """More Received: fields than hopcount_limit (50) is a loop: 554 5.4.0, nothing queued."""
    received = "".join("Received: from hop%d.example by hop%d.example; Mon, 23 Nov 2026 "
                       "00:00:00 +0000\r\n" % (i, i + 1) for i in range(hops))
    with posta.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send((received + "Subject: loop\r\n\r\nbody\r\n.\r\n").encode())
        got, text = c.reply()
    assert got == code, text
    if code == 554:
        assert "5.4.0 Error: too many hops" in " ".join(text)
        assert posta.complete_files() == []
        assert re.search(r"reject: END-OF-MESSAGE from .*: 554 5\.4\.0 Error: too many hops; "
                         r"from=<sender@localhost> to=<root@localhost>", posta.log())


def test_junk_command_limit(inst):
    """Past smtpd_junk_command_limit each NOOP/VRFY/RSET is an error; hard limit: 421."""
    inst.set_param("smtpd_junk_command_limit", "3")
    inst.set_param("smtpd_hard_error_limit", "4")
    inst.set_param("smtpd_error_sleep_time", "0s")
    inst.start()
    with inst.raw() as c:
        c.greet()
        for i in range(3 + 3):
            assert c.cmd("NOOP")[0] == 250, i
        # a delivered message starts the count again
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: junk\r\n\r\nbody\r\n.\r\n")
        assert c.reply()[0] == 250
        for i in range(3 + 3):
            assert c.cmd("RSET" if i % 2 else "NOOP")[0] == 250, i
        code, _ = c.cmd("NOOP")                  # the 4th error
        assert code == 250
        code, text = c.reply()
        assert code == 421 and "too many errors" in " ".join(text), text
    assert re.search(r"too many errors after NOOP from", inst.log())


def test_client_rate_limits(inst):
    """smtpd_client_{connection,message}_rate_limit, per client and anvil_rate_time_unit."""
    one_smtpd(inst)          # the counts are per smtpd process
    inst.set_param("mynetworks", "127.0.0.1/32")
    inst.set_param("smtpd_peername_lookup", "no")
    inst.set_param("smtpd_client_connection_rate_limit", "3")
    inst.set_param("smtpd_client_message_rate_limit", "2")
    inst.start()
    myhostname = inst.posta("conf", "-h", "myhostname").stdout.strip()
    with inst.raw(source=OUTSIDE) as c:                 # connection 1
        c.greet()
        for i in range(3):
            code, text = c.cmd("MAIL FROM:<a@example.net>")
            if i < 2:
                assert code == 250, text
                assert c.cmd("RSET")[0] == 250
        assert (code, " ".join(text)) == (450, "4.7.1 Error: too much mail from 127.0.0.2")
    for _ in range(2):                                  # connections 2 and 3
        with inst.raw(source=OUTSIDE) as c:
            c.greet()
    with inst.raw(source=OUTSIDE) as c:                 # connection 4
        code, text = c.reply()
        assert (code, " ".join(text)) == (
            421, "4.7.0 %s Error: too many connections from 127.0.0.2" % myhostname), text
    # clients in smtpd_client_event_limit_exceptions ($mynetworks) are not counted
    for _ in range(5):
        with inst.raw() as c:
            c.greet()
    log = inst.log()
    assert "Message delivery request rate limit exceeded: 3 from unknown[127.0.0.2]" in log
    assert "Connection rate limit exceeded: 4 from unknown[127.0.0.2] for service smtp" in log
    assert not re.search(r"rate limit exceeded: \d+ from unknown\[127\.0\.0\.1\]", log), log


def test_recipient_rate_limit(inst):
    one_smtpd(inst)
    inst.set_param("mynetworks", "127.0.0.1/32")
    inst.set_param("smtpd_peername_lookup", "no")
    inst.set_param("smtpd_client_recipient_rate_limit", "2")
    inst.start()
    with inst.raw(source=OUTSIDE) as c:
        c.greet()
        assert c.cmd("MAIL FROM:<a@example.net>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<postmaster@localhost>")[0] == 250
        code, text = c.cmd("RCPT TO:<root@localhost>")
        assert (code, " ".join(text)) == (
            450, "4.7.1 Error: too many recipients from 127.0.0.2"), text
    assert "Recipient address rate limit exceeded: 3 from unknown[127.0.0.2]" in inst.log()


def test_queue_space(inst):
    """MAIL is refused 452 4.3.1 when the queue file system lacks room (queue_minfree, SIZE)."""
    inst.set_param("message_size_limit", "0")
    inst.start()
    with inst.raw() as c:
        c.greet()
        # SIZE beyond the free space of any disk here (an exabyte)
        code, text = c.cmd("MAIL FROM:<a@localhost> SIZE=%d" % 10 ** 18)
        assert (code, " ".join(text)) == (452, "4.3.1 Insufficient system storage"), text
        assert c.cmd("MAIL FROM:<a@localhost> SIZE=1000")[0] == 250
    assert "not enough free space in mail queue" in inst.log()
    inst.stop()
    inst.set_param("queue_minfree", str(10 ** 18))
    inst.start()
    with inst.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<a@localhost>")[0] == 452


def test_reject_footer(inst):
    r"""smtpd_reject_footer: "\c" continues the last line, "\n" adds lines, $macros expand."""
    inst.set_param("smtpd_reject_footer",
                   r"\c (ask postmaster) \nFor help: $server_name, client $client_address"
                   r"${helo_name? helo $helo_name}")
    inst.start()
    myhostname = inst.posta("conf", "-h", "myhostname").stdout.strip()
    with inst.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<a@localhost>")[0] == 250
        code, text = c.cmd("RCPT TO:<nosuch-user-xyz@localhost>")
        assert code == 550, text
        assert text[0].endswith("User unknown in local recipient table (ask postmaster) "), text
        assert text[1] == "5.1.1 For help: %s, client 127.0.0.1 helo client.example" % (
            myhostname), text
        assert len(text) == 2
        # a 2xx reply has no footer
        assert c.cmd("NOOP") == (250, ["2.0.0 Ok"])
