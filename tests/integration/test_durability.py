"""test_durability.py - a 250 means the message survives; no 250, no file

After "250 queued as ID" every posta process is killed with SIGKILL (no
chance to flush anything) and the instance is started again: the message
must be in the queue, complete and byte-identical (apart from the
Received header posta adds). A client that disappears in the middle of
DATA or BDAT must leave nothing in incoming/.
"""

import os

import helpers

BODY_LINES = 200
DROP_WAIT = 10.0


def message():
    """message - a few KiB with dots, long lines and 8-bit bytes."""
    lines = [b"From: sender@localhost", b"To: root@localhost",
             b"Subject: durability", b""]
    for i in range(BODY_LINES):
        lines.append(b"line %d " % i + b"abcdefghij" * (i % 50))
    lines += [b"..dot-stuffed line", b".", b"\xc3\xa9 8-bit"]
    return b"\r\n".join(lines) + b"\r\n"


def test_kill9_after_250_keeps_message(posta):
    body = message()
    with posta.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost> BODY=8BITMIME")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(body.replace(b"\r\n.\r\n", b"\r\n..\r\n") + b".\r\n")
        code, text = c.reply()
        assert code == 250, (code, text)
        qid = helpers.queued_id(text)
        # kill at once, before QUIT, while the session is still open
        pids = posta.remember()
        assert len(pids) >= 2, "expected master and smtpd: %r" % pids
        posta.kill9_all()
    assert not posta.alive()
    posta.start()
    assert posta.status() == 0
    assert qid in posta.queue_files()
    q = posta.qfile(qid)
    assert q["complete"]
    mode = os.stat(posta.spool / "incoming" / qid).st_mode & 0o777
    assert mode == helpers.QFILE_MODE_DONE
    assert q["sender"] == "sender@localhost"
    assert [r["addr"] for r in q["rcpts"]] == ["root@localhost"]
    expected = helpers.smtp_to_stored(body.replace(b"\r\n.\r\n", b"\r\n..\r\n"))
    assert helpers.strip_received(q["content"]) == expected
    assert [m["queue_id"] for m in posta.queue_json()] == [qid]


def test_many_messages_then_kill9(posta):
    ids = []
    with posta.raw() as c:
        c.greet()
        for i in range(20):
            assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
            assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            c.send(b"Subject: n%d\r\n\r\nmessage %d\r\n.\r\n" % (i, i))
            code, text = c.reply()
            assert code == 250
            ids.append(helpers.queued_id(text))
        posta.kill9_all()
    posta.start()
    assert sorted(ids) == posta.complete_files()
    for i, qid in enumerate(ids):
        assert helpers.strip_received(posta.qfile(qid)["content"]) == (
            b"Subject: n%d\n\nmessage %d\n" % (i, i))


def test_drop_mid_data_leaves_nothing(posta):
    with posta.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: dropped\r\n\r\n" + b"partial line\r\n" * 1000)
    # the file may exist for a moment while the server notices the EOF
    assert helpers.wait_until(lambda: posta.queue_files() == [], DROP_WAIT), \
        posta.queue_files()
    # and the server is fine
    with posta.raw() as c:
        c.greet()
        assert c.cmd("NOOP")[0] == 250


def test_drop_mid_bdat_leaves_nothing(posta):
    with posta.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        c.send(b"BDAT 20\r\n0123456789abcdefghij")
        assert c.reply()[0] == 250
        c.send(b"BDAT 100000 LAST\r\n" + b"z" * 5000)
    assert helpers.wait_until(lambda: posta.queue_files() == [], DROP_WAIT), \
        posta.queue_files()


def test_drop_after_dot_before_reply_is_consistent(posta):
    """A client gone right after the final dot: either one complete file or none."""
    with posta.raw() as c:
        c.greet()
        c.send(b"MAIL FROM:<sender@localhost>\r\nRCPT TO:<root@localhost>\r\nDATA\r\n")
        assert [code for code, _ in c.replies(3)] == [250, 250, 354]
        c.send(b"Subject: gone\r\n\r\nbye\r\n.\r\n")
    helpers.wait_until(lambda: posta.queue_files() == posta.complete_files(), DROP_WAIT)
    files = posta.queue_files()
    assert files == posta.complete_files()
    assert len(files) <= 1
