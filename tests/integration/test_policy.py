"""test_policy.py - who may send what to whom

Relay control by mynetworks (client 127.0.0.2 outside 127.0.0.1/32 is
"the Internet"), local recipients (unknown user 550 5.1.1, aliases),
message_size_limit (SIZE= at MAIL and the real size at the end of DATA)
and smtpd_recipient_limit.
"""

import pytest

import helpers

OUTSIDE = "127.0.0.2"
INSIDE = "127.0.0.1"
SIZE_LIMIT = 20000
RCPT_LIMIT = 3


@pytest.fixture
def policy(inst):
    """policy - an instance where only 127.0.0.1 is in mynetworks."""
    inst.set_param("mynetworks", "127.0.0.1/32")
    inst.set_param("smtpd_error_sleep_time", "0s")
    inst.set_param("message_size_limit", str(SIZE_LIMIT))
    inst.set_param("smtpd_recipient_limit", str(RCPT_LIMIT))
    inst.add_alias("team-alias", "root")
    inst.start()
    return inst


def rcpt_reply(inst, source, rcpt):
    """rcpt_reply - (code, text) of RCPT TO:<rcpt> from source."""
    with inst.raw(source=source) as c:
        c.greet()
        assert c.cmd("MAIL FROM:<someone@example.net>")[0] == 250
        code, text = c.cmd("RCPT TO:<%s>" % rcpt)
        return code, " ".join(text)


def test_relay_denied_from_outside(policy):
    with policy.smtp(source=OUTSIDE) as s:
        s.ehlo("outside.example")
        assert s.mail("someone@example.net")[0] == 250
        code, text = s.rcpt("user@example.com")
        assert code == 554, (code, text)
        assert b"5.7.1" in text
        assert b"Relay access denied" in text
        # the transaction is not accepted either
        code, _ = s.docmd("DATA")
        assert code in (503, 554)
    assert policy.queue_files() == []
    assert "Relay access denied" in policy.log()


def test_relay_allowed_from_mynetworks(policy):
    with policy.smtp(source=INSIDE) as s:
        s.ehlo("inside.example")
        refused = s.sendmail("someone@localhost", ["user@example.com"],
                             b"Subject: relay\r\n\r\nrelayed\r\n")
        assert refused == {}
    files = policy.complete_files()
    assert len(files) == 1
    assert [r["addr"] for r in policy.qfile(files[0])["rcpts"]] == ["user@example.com"]


def test_local_domain_from_outside(policy):
    code, text = rcpt_reply(policy, OUTSIDE, "root@localhost")
    assert code == 250, text
    with policy.smtp(source=OUTSIDE) as s:
        refused = s.sendmail("someone@example.net", ["root@localhost"],
                             b"Subject: inbound\r\n\r\nhi\r\n")
        assert refused == {}
    assert len(policy.complete_files()) == 1


def test_unknown_local_user(policy):
    for source in (OUTSIDE, INSIDE):
        code, text = rcpt_reply(policy, source, "no-such-user-xyz@localhost")
        assert code == 550, (source, code, text)
        assert "5.1.1" in text


def test_alias_accepted(policy):
    code, text = rcpt_reply(policy, OUTSIDE, "team-alias@localhost")
    assert code == 250, text
    # and the aliases that mkinstance.sh writes
    code, text = rcpt_reply(policy, OUTSIDE, "postmaster@localhost")
    assert code == 250, text


def test_size_declared_too_big(policy):
    with policy.raw() as c:
        features = c.greet()
        assert "SIZE %d" % SIZE_LIMIT in [f.upper() for f in features]
        code, text = c.cmd("MAIL FROM:<a@localhost> SIZE=%d" % (SIZE_LIMIT + 1))
        assert code == 552, (code, text)
        code, text = c.cmd("MAIL FROM:<a@localhost> SIZE=%d" % (SIZE_LIMIT // 2))
        assert code == 250, (code, text)


def test_size_actual_too_big(policy):
    line = b"x" * 998 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (SIZE_LIMIT // len(line) + 5)
    with policy.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<a@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(body + b".\r\n")
        code, text = c.reply()
        assert code == 552, (code, text)
        # the session goes on and a small message is taken
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("MAIL FROM:<a@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: small\r\n\r\nsmall\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, (code, text)
    assert policy.complete_files() == [helpers.queued_id(text)]


def test_size_too_big_bdat(policy):
    chunk = b"y" * (SIZE_LIMIT + 100)
    with policy.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<a@localhost>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        code, text = c.reply()
        assert code == 552, (code, text)
        assert c.cmd("NOOP")[0] == 250
    assert policy.queue_files() == []


def test_recipient_limit(policy):
    accepted = ["root@localhost", "postmaster@localhost", "abuse@localhost"]
    assert len(accepted) == RCPT_LIMIT
    with policy.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<a@localhost>")[0] == 250
        for rcpt in accepted:
            code, text = c.cmd("RCPT TO:<%s>" % rcpt)
            assert code == 250, (rcpt, code, text)
        code, text = c.cmd("RCPT TO:<mailer-daemon@localhost>")
        assert code == 452, (code, text)
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: limit\r\n\r\nx\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, (code, text)
    q = policy.qfile(helpers.queued_id(text))
    assert [r["addr"] for r in q["rcpts"]] == accepted


def test_relay_domains_and_relay_recipient_maps(inst):
    """relay_domains are accepted from anyone; with relay_recipient_maps
    only the users listed there (user@domain or @domain keys)."""
    table = inst.root / "etc" / "relay_recipients"
    table.write_text("known@relayed.test OK\n@catchall.test OK\n")
    inst.set_param("mynetworks", "127.0.0.1/32")
    inst.set_param("smtpd_error_sleep_time", "0s")
    inst.set_param("relay_domains", "relayed.test, catchall.test, open.test")
    inst.set_param("relay_recipient_maps", "texthash:%s" % table)
    inst.start()
    code, _ = rcpt_reply(inst, OUTSIDE, "known@relayed.test")
    assert code == 250
    code, _ = rcpt_reply(inst, OUTSIDE, "anyone@catchall.test")
    assert code == 250
    code, text = rcpt_reply(inst, OUTSIDE, "stranger@relayed.test")
    assert code == 550
    assert "5.1.1" in text and "User unknown in relay recipient table" in text
    # The local part alone is not a key of relay_recipient_maps.
    code, _ = rcpt_reply(inst, OUTSIDE, "known@open.test")
    assert code == 550
    # Not a relay domain: relay access denied, not "user unknown".
    code, text = rcpt_reply(inst, OUTSIDE, "known@elsewhere.test")
    assert code == 554 and "Relay access denied" in text


def test_relay_domains_without_recipient_maps(inst):
    """Without relay_recipient_maps every user of a relay domain is taken."""
    inst.set_param("mynetworks", "127.0.0.1/32")
    inst.set_param("relay_domains", "relayed.test")
    inst.start()
    code, _ = rcpt_reply(inst, OUTSIDE, "whoever@relayed.test")
    assert code == 250
