"""test_access_actions.py - the access-table actions that change the message,
and content_filter

HOLD, DISCARD, PREPEND, REDIRECT, BCC and FILTER in an access table (see
access(5) in Postfix) act on the whole message, as Postfix's smtpd does:
a held message waits in hold/ until "posta super -H" releases it and is
then delivered; a discarded one is answered 250 and never delivered (and
the next message of the session is not discarded); PREPEND puts a field
on top; REDIRECT replaces the recipients; BCC adds one. The actions of a
recipient that a later restriction rejects are forgotten.

content_filter (and FILTER) send every recipient to a filter: here the
re-folding SMTP relay peer, which hands the message back to a second
smtpd listener whose content_filter is empty (the Postfix after-queue
filter set-up); the message arrives once, with the filter's Received
field.
"""

import re

import pytest

import helpers
import netlab
from conftest import add_smtp_services, free_port
from test_local_delivery import send, wait_mbox
from test_restrictions import configure as configure_restrictions

pytestmark = pytest.mark.delivery

OUTSIDE = "127.0.0.2"
SETTLE = 2.0            # seconds a message that must not arrive is given to arrive


def configure(inst, params, tables):
    """configure - mynetworks 127.0.0.1, the tables (texthash) and params (TABLE:x)."""
    configure_restrictions(inst, params, tables, None)


def subjects_in(path):
    """subjects_in - the Subject of every message of the mbox at path ([] if none)."""
    try:
        return [str(m["Subject"]) for m in helpers.read_mbox(path)]
    except FileNotFoundError:
        return []


def test_hold_then_release(inst, users):
    configure(inst, {"smtpd_sender_restrictions": "check_sender_access TABLE:sa"},
              {"sa": "held@example.net HOLD look at it first\n"})
    inst.start()
    subject = helpers.token("hold")
    send(inst, "held@example.net", users.alice.addr, subject)
    qid = inst.wait_for(lambda: inst.complete_files("hold"), "a finished file in hold/")[0]
    log = inst.log()
    assert re.search(r"hold: RCPT from unknown\[127\.0\.0\.1\]: <held@example\.net>: "
                     r"Sender address look at it first; from=<held@example\.net> "
                     r"to=<%s>" % re.escape(users.alice.addr), log), log
    assert re.search(r"%s: hold: <held@example\.net>: Sender address look at it first" % qid,
                     log), log
    assert "! " in inst.posta("queue").stdout or qid in inst.posta("queue").stdout
    helpers.wait_until(lambda: False, SETTLE)
    assert subject not in " ".join(subjects_in(inst.mbox(users.alice.name))), "a held message was delivered"
    r = inst.posta("super", "-H", qid)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_mbox(inst, inst.mbox(users.alice.name), subject)
    inst.wait_queue_empty()


def test_discard_answers_250_and_drops(inst, users):
    configure(inst, {"smtpd_sender_restrictions": "check_sender_access TABLE:sa"},
              {"sa": "junk@example.net DISCARD\n"})
    inst.start()
    dropped, kept = helpers.token("discard"), helpers.token("kept")
    with inst.smtp() as s:
        s.ehlo("client.example")
        msg = "Subject: %s\r\n\r\nbody\r\n" % dropped
        assert s.sendmail("junk@example.net", [users.alice.addr], msg) == {}
        # the second message of the session is not discarded
        s.sendmail("friend@example.net", [users.alice.addr],
                   "Subject: %s\r\n\r\nbody\r\n" % kept)
    wait_mbox(inst, inst.mbox(users.alice.name), kept)
    inst.wait_queue_empty()
    assert dropped not in " ".join(subjects_in(inst.mbox(users.alice.name)))
    log = inst.log()
    assert re.search(r"discard: RCPT from unknown\[127\.0\.0\.1\]: <junk@example\.net>: "
                     r"Sender address triggers DISCARD action", log), log
    assert re.search(r"[0-9A-Za-z]+: discard: <junk@example\.net>: Sender address triggers "
                     r"DISCARD action", log), log
    assert inst.queue_files("hold") == []


def test_discard_reply_is_queued_as(inst, users):
    """The client sees the usual 250 "queued as", for DATA and for BDAT."""
    configure(inst, {"smtpd_sender_restrictions": "check_sender_access TABLE:sa"},
              {"sa": "junk@example.net DISCARD\n"})
    inst.start()
    with inst.raw() as c:
        c.greet()
        for last in (b"DATA", b"BDAT"):
            assert c.cmd("MAIL FROM:<junk@example.net>")[0] == 250
            assert c.cmd("RCPT TO:<%s>" % users.alice.addr)[0] == 250
            if last == b"DATA":
                assert c.cmd("DATA")[0] == 354
                c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
            else:
                body = b"Subject: x\r\n\r\nbody\r\n"
                c.send(b"BDAT %d LAST\r\n%s" % (len(body), body))
            code, text = c.reply()
            assert code == 250 and "queued as" in " ".join(text), text
    assert inst.queued() == []


def test_prepend_redirect_bcc(inst, users):
    configure(inst, {"smtpd_sender_restrictions": "check_sender_access TABLE:sa",
                     "smtpd_recipient_restrictions": "check_recipient_access TABLE:ra"},
              {"sa": "redir@example.net REDIRECT %s\n"
                     "copy@example.net BCC %s\n" % (users.bob.addr, users.bob.addr),
               "ra": "%s PREPEND X-Access-Check: seen by posta\n" % users.alice.addr})
    inst.start()
    s1, s2 = helpers.token("redirect"), helpers.token("bcc")
    send(inst, "redir@example.net", users.alice.addr, s1)
    send(inst, "copy@example.net", users.alice.addr, s2)
    redirected = wait_mbox(inst, inst.mbox(users.bob.name), s1)[0]
    wait_mbox(inst, inst.mbox(users.bob.name), s2)
    copy = wait_mbox(inst, inst.mbox(users.alice.name), s2)[0]
    inst.wait_queue_empty()
    assert s1 not in " ".join(subjects_in(inst.mbox(users.alice.name))), "REDIRECT kept the recipient"
    # PREPEND: on top of the client's header, below this server's Received field
    fields = list(copy.keys())
    assert copy["X-Access-Check"] == "seen by posta"
    assert fields.index("Received") < fields.index("X-Access-Check") < fields.index("From"), fields
    assert redirected["X-Access-Check"] == "seen by posta"
    log = inst.log()
    assert re.search(r"redirect: RCPT from .*<redir@example\.net>: Sender address triggers "
                     r"REDIRECT %s" % re.escape(users.bob.addr), log), log
    assert re.search(r"bcc: RCPT from .*<copy@example\.net>: Sender address triggers BCC", log)


def test_rejected_recipient_forgets_its_action(inst, users):
    """HOLD decided for a recipient that is then refused does not hold the message."""
    configure(inst, {"smtpd_relay_restrictions":
                     "check_recipient_access TABLE:ra, permit_mynetworks, "
                     "reject_unauth_destination"},
              {"ra": "bob@elsewhere.example HOLD\n"})
    inst.start()
    subject = helpers.token("forget")
    with inst.smtp(source=OUTSIDE) as s:
        s.ehlo("client.example")
        s.mail("a@example.net")
        assert s.rcpt("bob@elsewhere.example")[0] == 554
        assert s.rcpt(users.alice.addr)[0] == 250
        assert s.data("Subject: %s\r\n\r\nbody\r\n" % subject)[0] == 250
    wait_mbox(inst, inst.mbox(users.alice.name), subject)
    assert inst.queue_files("hold") == []


def test_bad_action_argument_is_a_configuration_error(inst, users):
    configure(inst, {"smtpd_sender_restrictions": "check_sender_access TABLE:sa"},
              {"sa": "a@example.net PREPEND no header here\nb@example.net REDIRECT\n"})
    inst.start()
    for sender in ("a@example.net", "b@example.net"):
        with inst.smtp() as s:
            s.ehlo("client.example")
            s.mail(sender)
            code, text = s.rcpt(users.alice.addr)
            assert code == 451 and b"4.3.5" in text, (sender, code, text)
    assert "bad action argument" in inst.log()


def add_reinjection_listener(inst):
    """add_reinjection_listener - a second smtpd on 127.0.0.1 with content_filter empty; its port."""
    port = free_port()
    text = inst.master_cf.read_text()
    if not text.endswith("\n"):
        text += "\n"
    text += ("127.0.0.1:%d inet n - n - - smtpd\n"
             "  -o content_filter=\n"
             "  -o smtpd_client_restrictions=\n"
             "  -o smtpd_helo_restrictions=\n"
             "  -o smtpd_sender_restrictions=\n"
             "  -o smtpd_recipient_restrictions=permit_mynetworks,reject\n" % port)
    inst.master_cf.write_text(text)
    return port


@pytest.mark.parametrize("how", ["content_filter", "FILTER"])
def test_content_filter_round_trip(inst, users, lab, how):
    add_smtp_services(inst)
    back = add_reinjection_listener(inst)
    relay = netlab.Peer(lab, lab.root / "filter", "refold_relay.py", listen="127.0.0.1:0",
                        args=["--next", "127.0.0.1:%d" % back, "--width", "200",
                              "--hostname", "filter.test"])
    spec = "smtp:[127.0.0.1]:%d" % relay.port
    if how == "content_filter":
        configure(inst, {"content_filter": spec}, {})
    else:
        configure(inst, {"smtpd_sender_restrictions": "check_sender_access TABLE:sa"},
                  {"sa": "scan@example.net FILTER %s\n" % spec})
    inst.start()
    subject = helpers.token("filter")
    send(inst, "scan@example.net", users.alice.addr, subject)
    got = wait_mbox(inst, inst.mbox(users.alice.name), subject)[0]
    inst.wait_queue_empty()
    received = got.get_all("Received")
    assert any("filter.test" in r for r in received), received
    assert len(relay.events("forwarded")) == 1, relay.events()
    helpers.wait_until(lambda: False, SETTLE)
    assert len([x for x in subjects_in(inst.mbox(users.alice.name)) if subject in x]) == 1, "a loop"
