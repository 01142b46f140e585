"""test_smuggling.py - SMTP smuggling: only CR LF . CR LF ends DATA

Each case sends, on one connection, a message whose content holds a fake
end-of-data sequence followed by a second transaction (MAIL/RCPT/DATA of
"evil"), then the real CR LF . CR LF and QUIT. A server that takes the
fake ending would queue two messages. The test counts the files in
spool/incoming: exactly one must appear, holding the smuggled text as
content (the fake endings are content, not a reason to refuse). Run from a client inside mynetworks (exempt from
smtpd_forbid_bare_newline by default) and from one outside it.
"""

import pytest

import helpers

FAKE_ENDINGS = [
    b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r",
    b"\r\n\x00.\r\n", b"\r\n.\x00\r\n", b"\r\n.\r\x00\n", b"\n.\x00\n",
]
SMUGGLED = (b"MAIL FROM:<evil@x>\r\n"
            b"RCPT TO:<root@localhost>\r\n"
            b"DATA\r\n"
            b"smuggled\r\n")
OUTSIDE = "127.0.0.2"


def ending_id(ending):
    """ending_id - a readable test id for an ending."""
    return ending.replace(b"\r", b"CR").replace(b"\n", b"LF").replace(
        b"\x00", b"NUL").decode()


@pytest.mark.parametrize("source", ["127.0.0.1", OUTSIDE], ids=["mynetworks", "outside"])
@pytest.mark.parametrize("ending", FAKE_ENDINGS, ids=ending_id)
def test_fake_end_of_data(inst, ending, source):
    inst.set_param("mynetworks", "127.0.0.1/32")
    inst.set_param("smtpd_error_sleep_time", "0s")
    inst.start()
    before = inst.queue_files()
    replies = []
    with inst.raw(source=source) as c:
        c.greet()
        c.send(b"MAIL FROM:<sender@localhost>\r\n")
        replies.append(c.reply())
        c.send(b"RCPT TO:<root@localhost>\r\n")
        replies.append(c.reply())
        c.send(b"DATA\r\n")
        replies.append(c.reply())
        assert [code for code, _ in replies] == [250, 250, 354], replies
        c.send(b"Subject: smuggling test\r\n\r\nfirst part" + ending + SMUGGLED
               + b"\r\n.\r\nQUIT\r\n")
        # read every reply until the server closes: collect the codes
        codes = []
        while True:
            try:
                code, text = c.reply()
            except helpers.SMTPProtocolError:
                break
            codes.append((code, text))
            if code == 221:
                break
    new = [f for f in inst.queue_files() if f not in before]
    assert len(new) == 1, "expected one queue file, got %d: %r" % (len(new), codes)
    queued = [t for code, t in codes if code == 250]
    assert len(queued) == 1, codes
    assert helpers.queued_id(queued[0]) == new[0]
    q = inst.qfile(new[0])
    assert q["complete"]
    assert q["sender"] == "sender@localhost"
    assert [r["addr"] for r in q["rcpts"]] == ["root@localhost"]
    assert b"smuggled" in q["content"]
    assert b"MAIL FROM:<evil@x>" in q["content"]
    assert "evil@x" not in "".join(
        str(m.get("sender")) for m in inst.queue_json())


def test_bare_lf_endings_kept_as_content(posta):
    """test_bare_lf_endings_kept_as_content - "\\n.\\n" is content and one message results."""
    with posta.raw() as c:
        c.greet()
        c.send(b"MAIL FROM:<sender@localhost>\r\nRCPT TO:<root@localhost>\r\nDATA\r\n")
        assert [code for code, _ in c.replies(3)] == [250, 250, 354]
        c.send(b"Subject: lf\r\n\r\nbefore\n.\nafter\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, (code, text)
        assert c.cmd("NOOP")[0] == 250
    files = posta.complete_files()
    assert len(files) == 1
    content = posta.qfile(files[0])["content"]
    assert b"before" in content and b"after" in content
