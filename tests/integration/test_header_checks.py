"""test_header_checks.py - header_checks and body_checks in smtpd and pickup

A started instance with qmgr, local and pickup (marker "delivery") and
real accounts (fixture `users`); the tables are regexp: files in the
instance's etc/. Over SMTP (smtplib, and BDAT through helpers.RawSMTP):
REJECT with its text at the end of DATA and of BDAT, body_checks REJECT,
mime_header_checks on an attachment's header, IGNORE of smtpd's own
Received: field, REPLACE, PREPEND and WARN (delivered message and log
line), DISCARD (250, logged, not delivered) and HOLD (250, in hold/,
shown by "posta queue"), a table lookup failure (451 4.3.0). Local submission (sendmail -> postdrop ->
pickup): REJECT returns the message to the sender, HOLD with REPLACE
puts the changed message into hold/, DISCARD drops it, DEFER leaves it in
maildrop/. A message that
was answered 250 is delivered or held, except for DISCARD.

DIAGNOSTICS: every wait is bounded (conftest DELIVERY_TIMEOUT) and a
failure quotes the queue and the end of the maillog.
"""

import os
import re
import smtplib
import subprocess

import pytest

import conftest
import helpers

pytestmark = pytest.mark.delivery

SENDMAIL = conftest.BUILD / "bin" / "sendmail"
SENDMAIL_TIMEOUT = 30
REJECT_TEXT = "Spam is not welcome here"


def tables(inst, header=None, body=None, mime=None):
    """tables - write the regexp tables that are given and name them in main.cf."""
    for name, text in (("header_checks", header), ("body_checks", body),
                       ("mime_header_checks", mime)):
        if text is None:
            continue
        path = inst.etc / name
        path.write_text(text)
        inst.set_param(name, "regexp:%s" % path)


def message(sender, rcpt, subject, extra="", body="hello\n"):
    """message - a small message as bytes (CR LF line ends for SMTP)."""
    text = ("From: %s\nTo: %s\nSubject: %s\n%sMessage-ID: <%s@tests.posta>\n\n%s"
            % (sender, rcpt, subject, extra, subject, body))
    return text.replace("\n", "\r\n").encode()


def wait_mbox(inst, path, subject):
    """wait_mbox - until the mbox at path holds a message whose Subject has subject."""
    def found():
        msgs = [m for m in helpers.read_mbox(path) if subject in str(m["Subject"])]
        return msgs or None
    return inst.wait_for(found, "message %r in %s" % (subject, path))


def sendmail(inst, sender, rcpt, text):
    """sendmail - a local submission with posta's sendmail; the CompletedProcess."""
    env = dict(os.environ, MAIL_CONFIG=str(inst.etc))
    return subprocess.run([str(SENDMAIL), "-i", "-f", sender, rcpt], input=text.encode(),
                          env=env, capture_output=True, timeout=SENDMAIL_TIMEOUT)


def test_reject_at_end_of_data_and_bdat(inst, users):
    alice, bob = users.alice, users.bob
    tables(inst, header="/^Subject:.*viagra/ REJECT %s\n" % REJECT_TEXT)
    inst.start()
    with inst.smtp() as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(alice.addr, [bob.addr], message(alice.addr, bob.addr, "buy viagra"))
        assert e.value.smtp_code == 550
        assert e.value.smtp_error.decode() == "5.7.1 " + REJECT_TEXT
        # the session goes on: the next message is accepted
        c.sendmail(alice.addr, [bob.addr], message(alice.addr, bob.addr, "fine one"))
    inst.wait_log(r"\w+: reject: header Subject: buy viagra from localhost\[127\.0\.0\.1\]; "
                  r"from=<%s> to=<%s> proto=ESMTP helo=<[^>]*>: 5\.7\.1 %s$"
                  % (re.escape(alice.addr), re.escape(bob.addr), REJECT_TEXT))
    # BDAT: the refusal is the reply to the LAST chunk
    data = message(alice.addr, bob.addr, "viagra again")
    with inst.raw() as r:
        r.greet()
        assert r.cmd("MAIL FROM:<%s>" % alice.addr)[0] == 250
        assert r.cmd("RCPT TO:<%s>" % bob.addr)[0] == 250
        half = len(data) // 2
        r.send(b"BDAT %d\r\n" % half + data[:half])
        assert r.reply()[0] == 250
        r.send(b"BDAT %d LAST\r\n" % (len(data) - half) + data[half:])
        code, text = r.reply()
        assert (code, text) == (550, ["5.7.1 " + REJECT_TEXT])
        r.cmd("QUIT")
    msgs = wait_mbox(inst, inst.mbox(bob.name), "fine one")
    assert len(helpers.read_mbox(inst.mbox(bob.name))) == 1, msgs
    inst.wait_queue_empty()


def test_body_and_mime_header_checks(inst, users):
    alice, bob = users.alice, users.bob
    tables(inst, body="/^click here now/ REJECT 5.7.0 body refused\n",
           mime='/^Content-Disposition:.*filename="?[^"]*\\.exe"?/ REJECT No executables\n')
    inst.start()
    with inst.smtp() as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(alice.addr, [bob.addr],
                       message(alice.addr, bob.addr, "body", body="hi\nclick here now\n"))
        assert (e.value.smtp_code, e.value.smtp_error) == (550, b"5.7.0 body refused")
        mime = ("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n")
        body = ("--XX\nContent-Type: text/plain\n\ntext\n--XX\n"
                "Content-Type: application/octet-stream\n"
                "Content-Disposition: attachment; filename=\"tool.exe\"\n\nAAAA\n--XX--\n")
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(alice.addr, [bob.addr],
                       message(alice.addr, bob.addr, "attach", extra=mime, body=body))
        assert (e.value.smtp_code, e.value.smtp_error) == (550, b"5.7.1 No executables")
        # the same words in the primary header are not a MIME part header
        ok = body.replace("tool.exe", "notes.txt")
        c.sendmail(alice.addr, [bob.addr],
                   message(alice.addr, bob.addr, "attach ok", extra=mime, body=ok))
    inst.wait_log(r": reject: body click here now from localhost")
    inst.wait_log(r': reject: header Content-Disposition: attachment; filename="tool\.exe" '
                  r"from localhost")
    wait_mbox(inst, inst.mbox(bob.name), "attach ok")
    inst.wait_queue_empty()


def test_ignore_replace_prepend_warn(inst, users):
    alice, bob = users.alice, users.bob
    tables(inst, header=(
        # smtpd's own Received: field (the submission case: "with ESMTPSA")
        "/^Received:.*with ESMTPS?A? id / IGNORE\n"
        "/^Subject: (.*)/ REPLACE Subject: [checked] $1\n"
        "/^From:/ PREPEND X-Checked: yes\n"
        "/^X-Warn-Me:/ WARN header looked odd\n"))
    inst.start()
    with inst.smtp() as c:
        c.sendmail(alice.addr, [bob.addr],
                   message(alice.addr, bob.addr, "edited", extra="X-Warn-Me: 1\n"))
    m = wait_mbox(inst, inst.mbox(bob.name), "edited")[0]
    assert str(m["Subject"]) == "[checked] edited"
    assert m["X-Checked"] == "yes"
    assert m.get_all("Received") is None, m.items()
    keys = [k.lower() for k in m.keys()]
    assert keys.index("x-checked") == keys.index("from") - 1, keys
    inst.wait_log(r"\w+: warning: header X-Warn-Me: 1 from localhost\[127\.0\.0\.1\]; "
                  r"from=<%s> to=<%s> proto=ESMTP helo=<[^>]*>: header looked odd$"
                  % (re.escape(alice.addr), re.escape(bob.addr)))
    inst.wait_queue_empty()


def test_discard_and_hold(inst, users):
    alice, bob = users.alice, users.bob
    tables(inst, header="/^Subject: drop/ DISCARD unwanted\n/^Subject: keep/ HOLD look first\n")
    inst.start()
    with inst.smtp() as c:
        assert c.sendmail(alice.addr, [bob.addr], message(alice.addr, bob.addr, "drop me")) == {}
        c.sendmail(alice.addr, [bob.addr], message(alice.addr, bob.addr, "keep me"))
        c.sendmail(alice.addr, [bob.addr], message(alice.addr, bob.addr, "normal"))
    inst.wait_log(r": discard: header Subject: drop me from localhost\[127\.0\.0\.1\];"
                  r".*: unwanted$")
    inst.wait_log(r"(\w+): hold: header Subject: keep me from localhost.*: look first$")
    held = inst.wait_for(lambda: inst.complete_files("hold"), "a message in hold/")
    assert len(held) == 1
    assert b"Subject: keep me" in inst.qfile(held[0], "hold")["content"]
    q = inst.queue_json()
    assert [e["queue_id"] for e in q if e.get("queue_name") == "hold"] == held, q
    r = inst.posta("queue")
    assert re.search(r"^%s!" % held[0], r.stdout, re.M), r.stdout
    wait_mbox(inst, inst.mbox(bob.name), "normal")
    inst.wait_queue_empty()
    subjects = [str(m["Subject"]) for m in helpers.read_mbox(inst.mbox(bob.name))]
    assert subjects == ["normal"], subjects


def test_pickup_reject_returns_to_sender(inst, users):
    alice, bob = users.alice, users.bob
    tables(inst, header="/^Subject:.*forbidden/ REJECT %s\n" % REJECT_TEXT)
    inst.start()
    text = "From: %s\nTo: %s\nSubject: forbidden words\n\nbody\n" % (alice.addr, bob.addr)
    r = sendmail(inst, alice.addr, bob.addr, text)
    assert r.returncode == 0, r
    inst.wait_log(r"(\w+): reject: header Subject: forbidden words from local; "
                  r"from=<%s> to=<%s>: 5\.7\.1 %s$"
                  % (re.escape(alice.addr), re.escape(bob.addr), REJECT_TEXT))
    notice = wait_mbox(inst, inst.mbox(alice.name), "Undelivered Mail Returned to Sender")
    assert REJECT_TEXT in notice[0].as_string()
    inst.wait_queue_empty()
    assert inst.queue_files("maildrop") == []
    assert not inst.mbox(bob.name).exists() or \
        helpers.read_mbox(inst.mbox(bob.name)) == []


def test_pickup_hold_replace_and_discard(inst, users):
    alice, bob = users.alice, users.bob
    tables(inst, header=("/^Subject: (hold.*)/ REPLACE Subject: [held] $1\n"
                         "/^X-Hold:/ HOLD local hold\n"
                         "/^Subject: throw/ DISCARD\n"
                         "/^Subject: later/ DEFER not now\n"),
           body="/^secret/ IGNORE\n")
    inst.start()
    held_text = ("From: %s\nTo: %s\nSubject: hold this\nX-Hold: 1\n\nkept\nsecret line\n"
                 % (alice.addr, bob.addr))
    assert sendmail(inst, alice.addr, bob.addr, held_text).returncode == 0
    assert sendmail(inst, alice.addr, bob.addr,
                    "Subject: throw away\n\nx\n").returncode == 0
    assert sendmail(inst, alice.addr, bob.addr, "Subject: later\n\nx\n").returncode == 0
    held = inst.wait_for(lambda: inst.complete_files("hold"), "a message in hold/")
    content = inst.qfile(held[0], "hold")["content"]
    assert b"Subject: [held] hold this\n" in content
    assert b"\nkept\n" in content and b"secret" not in content
    inst.wait_log(r"\w+: hold: header X-Hold: 1 from local; from=<%s> to=<%s>: local hold$"
                  % (re.escape(alice.addr), re.escape(bob.addr)))
    inst.wait_log(r"\w+: discard: header Subject: throw away from local; ")
    # a temporary refusal is never bounced: the file waits in maildrop
    inst.wait_log(r"(\w+): 450 4\.7\.1 not now: left in maildrop, tried again at the next scan")
    inst.wait_for(lambda: len(inst.queue_files("maildrop")) == 1, "only the deferred file left")
    inst.wait_queue_empty()
    assert len(inst.complete_files("hold")) == 1
    assert not inst.mbox(alice.name).exists(), "no notice for a temporary refusal"


def test_lookup_failure_defers(inst, users):
    """A table that fails (here: a result over the regexp table's size limit) never
    lets the message through: 451 4.3.0, and a warning names the setting."""
    alice, bob = users.alice, users.bob
    tables(inst, header="/^X-Big: (.*)/ WARN %s\n" % ("$1" * 600))
    inst.start()
    folded = "\n".join(" " + "x" * 99 for _ in range(20))
    with inst.smtp() as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(alice.addr, [bob.addr],
                       message(alice.addr, bob.addr, "big", extra="X-Big:%s\n" % folded))
        assert (e.value.smtp_code, e.value.smtp_error) == (451, b"4.3.0 Temporary lookup failure")
    inst.wait_log(r"warning: \w+: header_checks map lookup problem -- message not accepted, "
                  r"try again later")
    assert [s for s in ("incoming", "active", "deferred") if inst.complete_files(s)] == []
