"""test_bounce.py - delivery status notifications reach the sender's mailbox

Mail that local delivery cannot deliver (an alias pointing at a user that
does not exist) must come back to the sender as an RFC 3464 report:
multipart/report; report-type=delivery-status, a message/delivery-status
part with Status: 5.1.1 and the Final-Recipient, and the original message
(or its headers only for RET=HDRS), from the null sender. NOTIFY=NEVER
means no report, NOTIFY=SUCCESS a "delivered" report, ENVID and ORCPT are
carried into it, and a bounce that cannot be delivered goes to postmaster.

The reports are parsed with Python's email package, here and in
dsn_check.py (the structural checks shared with the bounce tests).

DIAGNOSTICS: a failure quotes the report or the maillog.
"""

import email.message
import os
import re

import pytest

import dsn_check
import helpers

pytestmark = pytest.mark.delivery

QUIET_WAIT = 3.0      # seconds during which no report may appear
MAILDIR_MODE = 0o700


def send(posta, sender, rcpt, subject, body="body of the original\n",
         mail_options=(), rcpt_options=()):
    """send - one message with smtplib; the rejected-recipient dict."""
    m = email.message.EmailMessage()
    m["From"] = sender or "MAILER-DAEMON@localhost"
    m["To"] = rcpt
    m["Subject"] = subject
    m.set_content(body)
    with posta.smtp() as s:
        return s.send_message(m, from_addr=sender, to_addrs=[rcpt],
                              mail_options=list(mail_options),
                              rcpt_options=list(rcpt_options))


def ghost_name(users):
    """ghost_name - a login name that does not exist (same tag as the users)."""
    return users.alice.name[:-len("alice")] + "nosuchuser"


@pytest.fixture
def posta(inst, users):
    """posta - (here) a started instance where ghost@localhost aliases a missing user."""
    inst.add_alias("ghost", ghost_name(users))
    inst.set_param("smtpd_error_sleep_time", "0s")
    inst.start()
    return inst


def dsn_parts(msg):
    """dsn_parts - (per-message fields, [per-recipient fields], other parts) of a report."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status", msg["Content-Type"]
    parts = msg.get_payload()
    assert isinstance(parts, list) and len(parts) >= 2, "report has %d parts" % len(parts)
    assert parts[0].get_content_type() == "text/plain", "first part must be for humans"
    status = [p for p in parts if p.get_content_type() == "message/delivery-status"]
    assert len(status) == 1, [p.get_content_type() for p in parts]
    blocks = status[0].get_payload()
    assert isinstance(blocks, list) and len(blocks) >= 2, \
        "delivery-status needs per-message and per-recipient fields"
    return blocks[0], blocks[1:], parts


def reports(path):
    """reports - the messages of mbox path that are delivery reports."""
    return [m for m in helpers.read_mbox(path)
            if m.get_content_type() == "multipart/report"]


def wait_report(posta, path, subject):
    """wait_report - the report in mbox path about the message with subject."""
    def found():
        for m in reports(path):
            if subject in m.as_string():
                return m
        return None
    return posta.wait_for(found, "a delivery report about %r in %s" % (subject, path))


def check_common(m, subject):
    """check_common - headers every report has (null sender, From, Auto-Submitted)."""
    assert m["Return-Path"].strip() == "<>", m["Return-Path"]
    assert "MAILER-DAEMON@localhost" in m["From"], m["From"]
    assert m["Auto-Submitted"].strip().startswith("auto-replied"), m["Auto-Submitted"]
    msg_fields, rcpts, parts = dsn_parts(m)
    assert msg_fields["Reporting-MTA"].replace(" ", "").lower() == "dns;localhost", \
        msg_fields["Reporting-MTA"]
    assert msg_fields["Arrival-Date"], "Arrival-Date missing"
    return msg_fields, rcpts, parts


def test_unknown_user_after_alias(posta, users):
    ghost = ghost_name(users)
    subject = helpers.token("bounce")
    assert send(posta, users.alice.addr, "ghost@localhost", subject) == {}
    m = wait_report(posta, posta.mbox(users.alice.name), subject)
    assert m["Subject"] == "Undelivered Mail Returned to Sender", m["Subject"]
    _, rcpts, parts = check_common(m, subject)
    assert len(rcpts) == 1, rcpts
    r = rcpts[0]
    assert r["Status"].strip() == "5.1.1", r["Status"]
    assert r["Action"].strip() == "failed"
    final = r["Final-Recipient"].replace(" ", "")
    # as Postfix 3.7 (checked): the expanded address is the final recipient,
    # the alias the original one, and the text says "(expanded from <...>)"
    assert final.lower() == "rfc822;%s@localhost" % ghost, r["Final-Recipient"]
    assert (r["Original-Recipient"] or "").replace(" ", "").lower() == \
        "rfc822;ghost@localhost", r["Original-Recipient"]
    human = parts[0].get_payload(decode=True).decode()
    assert "<%s@localhost> (expanded from <ghost@localhost>): unknown user" % ghost \
        in " ".join(human.split()), human
    dsn_check.check_dsn(m.as_bytes(), final_recipient="%s@localhost" % ghost,
                        status="5.1.1", action="failed",
                        original_recipient="rfc822;ghost@localhost", ret="FULL")
    original = [p for p in parts if p.get_content_type() == "message/rfc822"]
    assert len(original) == 1, [p.get_content_type() for p in parts]
    inner = original[0].get_payload()[0]
    assert inner["Subject"] == subject
    assert "body of the original" in inner.get_payload()
    posta.wait_log(r"to=<%s@localhost>, orig_to=<ghost@localhost>, relay=local, "
                   r".*dsn=5\.1\.1, status=bounced" % re.escape(ghost))
    posta.wait_queue_empty()


def test_bounce_of_bounce_goes_to_postmaster(posta, users):
    ghost = ghost_name(users)
    subject = helpers.token("double")
    assert send(posta, "", "ghost@localhost", subject) == {}
    # postmaster -> root (the instance's aliases)
    m = wait_report(posta, posta.mbox("root"), subject)
    _, rcpts, _ = dsn_parts(m)
    assert any(r["Status"].strip() == "5.1.1" for r in rcpts), rcpts
    dsn_check.check_dsn(m.as_bytes(), final_recipient="%s@localhost" % ghost,
                        status="5.1.1", action="failed", ret=None)
    posta.wait_queue_empty()
    assert not reports(posta.mbox(users.alice.name))
    posta.wait_log(r"to=<%s@localhost>, orig_to=<ghost@localhost>, .*status=bounced"
                   % re.escape(ghost))


def test_notify_never_sends_nothing(posta, users):
    ghost = ghost_name(users)
    subject = helpers.token("never")
    assert send(posta, users.alice.addr, "ghost@localhost", subject,
                rcpt_options=["NOTIFY=NEVER"]) == {}
    posta.wait_log(r"to=<%s@localhost>, orig_to=<ghost@localhost>, .*status=bounced"
                   % re.escape(ghost))
    posta.wait_queue_empty()
    assert not helpers.wait_until(lambda: reports(posta.mbox(users.alice.name)), QUIET_WAIT)


def test_notify_success_report(posta, users):
    alice, bob = users.alice, users.bob
    subject = helpers.token("success")
    assert send(posta, alice.addr, bob.addr, subject,
                mail_options=["ENVID=env-%s" % subject[-6:]],
                rcpt_options=["NOTIFY=SUCCESS"]) == {}
    m = wait_report(posta, posta.mbox(alice.name), subject)
    assert m["Subject"] == "Successful Mail Delivery Report", m["Subject"]
    msg_fields, rcpts, _ = check_common(m, subject)
    assert msg_fields["Original-Envelope-Id"].strip() == "env-%s" % subject[-6:]
    assert len(rcpts) == 1
    assert rcpts[0]["Action"].strip() == "delivered"
    assert rcpts[0]["Status"].strip().startswith("2.")
    assert rcpts[0]["Final-Recipient"].replace(" ", "").lower() == "rfc822;" + bob.addr
    dsn_check.check_dsn(m.as_bytes(), final_recipient=bob.addr, status="2.0.0",
                        action="delivered", envid="env-%s" % subject[-6:], ret=None)
    # and the message itself was delivered
    assert [x for x in helpers.read_mbox(posta.mbox(bob.name)) if x["Subject"] == subject]


def test_ret_hdrs_and_orcpt(posta, users):
    ghost = ghost_name(users)
    subject = helpers.token("hdrs")
    assert send(posta, users.alice.addr, "ghost@localhost", subject,
                body="secret body text\n",
                mail_options=["RET=HDRS", "ENVID=envid-hdrs"],
                rcpt_options=["ORCPT=rfc822;ghost@example.org"]) == {}
    m = wait_report(posta, posta.mbox(users.alice.name), subject)
    msg_fields, rcpts, parts = check_common(m, subject)
    assert msg_fields["Original-Envelope-Id"].strip() == "envid-hdrs"
    assert (rcpts[0]["Original-Recipient"] or "").replace(" ", "").lower() == \
        "rfc822;ghost@example.org", rcpts[0]["Original-Recipient"]
    dsn_check.check_dsn(m.as_bytes(), final_recipient="%s@localhost" % ghost,
                        status="5.1.1", action="failed",
                        original_recipient="rfc822;ghost@example.org",
                        envid="envid-hdrs", ret="HDRS")
    types = [p.get_content_type() for p in parts]
    assert "text/rfc822-headers" in types and "message/rfc822" not in types, types
    assert "secret body text" not in m.as_string()


def unwritable_maildir(user):
    """unwritable_maildir - user's ~/Maildir with a new/ that local cannot write."""
    md = user.maildir()
    for sub in ("", "new", "cur", "tmp"):
        (md / sub).mkdir(exist_ok=True)
        os.chown(md / sub, user.uid, user.gid)
        os.chmod(md / sub, MAILDIR_MODE)
    os.chmod(md / "new", 0)      # local delivers as the user: new/ refuses him
    return md


def test_delay_warning_once(inst, users):
    alice, bob, carol = users.alice, users.bob, users.carol
    inst.set_param("home_mailbox", "Maildir/")
    inst.set_param("delay_warning_time", "1s")
    dirs = [unwritable_maildir(bob), unwritable_maildir(carol)]
    inst.start()
    subject = helpers.token("delay")
    deferred_rx = re.compile(r"to=<%s>, relay=local, .*dsn=(4\.\d+\.\d+), status=deferred"
                             % re.escape(bob.addr))

    def deferrals():
        return deferred_rx.findall(inst.log())

    def notices():
        return [m for m in helpers.read_maildir(alice.maildir())
                if m.get_content_type() == "multipart/report"]
    try:
        m = email.message.EmailMessage()
        m["From"], m["To"], m["Subject"] = alice.addr, bob.addr, subject
        m.set_content("body of the delayed original\n")
        with inst.smtp() as s:
            assert s.ehlo()[0] == 250      # smtplib sends options only after EHLO
            assert s.mail(alice.addr)[0] == 250
            assert s.rcpt(bob.addr, ["NOTIFY=DELAY,FAILURE"])[0] == 250
            assert s.rcpt(carol.addr, ["NOTIFY=FAILURE"])[0] == 250
            code, reply = s.data(m.as_bytes())
            assert code == 250, reply
        qid = helpers.queued_id(reply)
        inst.wait_log(r"^.*%s: sender delay notification: \w+" % qid)
        report = inst.wait_for(notices, "a delay notice in %s" % alice.maildir())[0]
        # the notice survives a restart of everything: no second one
        inst.stop()
        inst.start()
        seen = len(deferrals())
        inst.wait_for(lambda: len(deferrals()) >= seen + 2, "two more retries")
        assert len(notices()) == 1, "more than one delay notice"
        assert len(re.findall(r"%s: sender delay notification" % qid, inst.log())) == 1
        assert os.path.exists(inst.spool / "defer" / (qid + ".warned"))
    finally:
        for md in dirs:
            os.chmod(md / "new", MAILDIR_MODE)
    status = deferrals()[0]
    assert report["Subject"] == "Delayed Mail (still being retried)", report["Subject"]
    check_common(report, subject)
    dsn_check.check_dsn(report.as_bytes(), final_recipient=bob.addr, status=status,
                        action="delayed", ret="HDRS")
    blocks = dsn_check.delivery_status(report)[1:]
    assert len(blocks) == 1, "NOTIFY=FAILURE must not be in the delay notice: %r" % blocks
    # retried until delivered; then the message and its marker are gone
    for user in (bob, carol):
        inst.wait_for(lambda u=user: [x for x in helpers.read_maildir(u.maildir())
                                      if x["Subject"] == subject], "delivery to " + user.name)
    inst.wait_queue_empty()
    assert not os.listdir(inst.spool / "defer"), "defer log or marker left behind"
    assert len(notices()) == 1
