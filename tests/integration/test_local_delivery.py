"""test_local_delivery.py - mail over SMTP ends up in a real user's mailbox

A started instance with qmgr and local (marker "delivery") and real
accounts (fixture `users`): a message sent with smtplib or swaks must
reach the recipient's mbox in mail_spool_directory (DIR/mail/USER, owned
by the user, mode 0600, with a From_ line, Return-Path and Delivered-To)
or ~/Maildir/new with home_mailbox = Maildir/; address extensions,
aliases (several users, a file, a command, postmaster -> root) and
.forward are followed as Postfix's local(8) does; a mailbox that cannot
be written defers the message, which is delivered on a later try.

DIAGNOSTICS: every wait is bounded (conftest DELIVERY_TIMEOUT) and a
failure quotes the queue and the end of the maillog.
"""

import email.message
import os
import re
import stat
import subprocess

import pytest

import helpers

pytestmark = pytest.mark.delivery

MBOX_MODE = 0o600
SWAKS_TIMEOUT = 30
FROM_BODY_LINE = "From the start of a line, mbox must quote this"


def make_message(sender, rcpt, subject, body="hello from the tests\n"):
    """make_message - a small RFC 5322 message (EmailMessage)."""
    m = email.message.EmailMessage()
    m["From"] = sender
    m["To"] = rcpt
    m["Subject"] = subject
    m["Message-ID"] = "<%s@tests.posta>" % subject
    m.set_content(body)
    return m


def send(posta, sender, rcpts, subject, body="hello from the tests\n", **kw):
    """send - one message over SMTP with smtplib; the rejected-recipient dict."""
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    msg = make_message(sender, ", ".join(rcpts), subject, body)
    with posta.smtp() as s:
        return s.send_message(msg, from_addr=sender, to_addrs=rcpts, **kw)


def wait_mbox(posta, path, subject, count=1):
    """wait_mbox - until the mbox at path holds count messages with subject."""
    def found():
        msgs = [m for m in helpers.read_mbox(path) if subject in str(m["Subject"])]
        return msgs if len(msgs) >= count else None
    return posta.wait_for(found, "%d message(s) %r in %s" % (count, subject, path))


def wait_maildir(posta, path, subject):
    """wait_maildir - until the Maildir at path holds a message with subject."""
    def found():
        msgs = [m for m in helpers.read_maildir(path) if subject in str(m["Subject"])]
        return msgs or None
    return posta.wait_for(found, "message %r in %s" % (subject, path))


def assert_mbox_file(path, user):
    """assert_mbox_file - path is a regular file of user, mode 0600."""
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode)
    assert st.st_uid == user.uid, "mailbox owner %d, expected %s (%d)" % (
        st.st_uid, user.name, user.uid)
    assert stat.S_IMODE(st.st_mode) == MBOX_MODE, oct(st.st_mode)


def test_smtplib_to_mbox(posta, users):
    alice, bob = users.alice, users.bob
    subject = helpers.token("mbox")
    body = "first line\n%s\n.leading dot\nlast line\n" % FROM_BODY_LINE
    assert send(posta, alice.addr, bob.addr, subject, body) == {}
    path = posta.mbox(bob.name)
    msgs = wait_mbox(posta, path, subject)
    assert len(msgs) == 1
    m = msgs[0]
    assert m.get_from().startswith(alice.addr + " "), m.get_from()
    assert m["Return-Path"].strip() == "<%s>" % alice.addr
    assert m["Delivered-To"].strip() == bob.addr
    assert str(m["Subject"]) == subject
    assert m["Received"] is not None
    payload = m.get_payload(decode=True).decode()
    assert "\n.leading dot\n" in payload
    # mbox quoting: a body line starting "From " is written as ">From "
    raw = path.read_bytes()
    assert b"\n>" + FROM_BODY_LINE.encode() + b"\n" in raw
    assert raw.endswith(b"\n\n"), "an mbox message ends with an empty line"
    assert_mbox_file(path, bob)
    posta.wait_queue_empty()
    log = posta.log()
    assert re.search(r"to=<%s>, relay=local, delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/"
                     r"[0-9.]+/[0-9.]+, dsn=2\.0\.0, status=sent \(delivered to mailbox\)"
                     % re.escape(bob.addr), log), log
    assert re.search(r"from=<%s>, size=\d+, nrcpt=1 \(queue active\)"
                     % re.escape(alice.addr), log), log
    assert re.search(r": removed$", log, re.M), log


def test_two_messages_append(posta, users):
    alice, bob = users.alice, users.bob
    first, second = helpers.token("one"), helpers.token("two")
    send(posta, alice.addr, bob.addr, first)
    wait_mbox(posta, posta.mbox(bob.name), first)
    send(posta, alice.addr, bob.addr, second)
    wait_mbox(posta, posta.mbox(bob.name), second)
    assert helpers.subjects(helpers.read_mbox(posta.mbox(bob.name))) == [first, second]


def test_swaks_to_mbox(posta, users):
    alice, bob = users.alice, users.bob
    subject = helpers.token("swaks")
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(posta.port),
                        "--from", alice.addr, "--to", bob.addr,
                        "--header", "Subject: " + subject, "--body", "via swaks"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=SWAKS_TIMEOUT, text=True)
    assert r.returncode == 0, r.stdout
    msgs = wait_mbox(posta, posta.mbox(bob.name), subject)
    assert "via swaks" in msgs[0].get_payload()
    assert msgs[0]["Return-Path"].strip() == "<%s>" % alice.addr
    assert_mbox_file(posta.mbox(bob.name), bob)


def test_maildir(inst, users):
    inst.set_param("home_mailbox", "Maildir/")
    inst.start()
    alice, bob = users.alice, users.bob
    subject = helpers.token("maildir")
    send(inst, alice.addr, bob.addr, subject)
    msgs = wait_maildir(inst, bob.maildir(), subject)
    assert len(msgs) == 1
    m = msgs[0]
    assert m["Delivered-To"].strip() == bob.addr
    assert m["Return-Path"].strip() == "<%s>" % alice.addr
    files = os.listdir(bob.maildir() / "new")
    assert len(files) == 1
    st = os.stat(bob.maildir() / "new" / files[0])
    assert st.st_uid == bob.uid
    for sub in ("new", "cur", "tmp"):
        d = bob.maildir() / sub
        assert d.is_dir() and d.stat().st_uid == bob.uid, sub
    assert not os.listdir(bob.maildir() / "tmp"), "tmp/ must be empty after delivery"
    assert not inst.mbox(bob.name).exists(), "Maildir delivery must not write the mbox"
    inst.wait_log(r"to=<%s>, relay=local, .*status=sent \(delivered to maildir\)"
                  % re.escape(bob.addr))
    inst.wait_queue_empty()


def test_extension(inst, users):
    inst.set_param("recipient_delimiter", "+")
    inst.start()
    alice, bob = users.alice, users.bob
    subject = helpers.token("ext")
    rcpt = "%s+lists@localhost" % bob.name
    assert send(inst, alice.addr, rcpt, subject) == {}
    msgs = wait_mbox(inst, inst.mbox(bob.name), subject)
    assert msgs[0]["Delivered-To"].strip() == rcpt
    inst.wait_log(r"to=<%s>, relay=local, .*status=sent" % re.escape(rcpt))


def test_alias_to_two_users(inst, users):
    alice, bob, carol = users.alice, users.bob, users.carol
    inst.add_alias("team", "%s, %s" % (bob.name, carol.name))
    inst.start()
    subject = helpers.token("team")
    assert send(inst, alice.addr, "team@localhost", subject) == {}
    for u in (bob, carol):
        msgs = wait_mbox(inst, inst.mbox(u.name), subject)
        assert len(msgs) == 1
        # as Postfix: Delivered-To names the address the mail was sent to
        assert msgs[0]["Delivered-To"].strip() == "team@localhost"
        assert_mbox_file(inst.mbox(u.name), u)
    inst.wait_log(r"to=<%s>, orig_to=<team@localhost>, relay=local, .*status=sent"
                  % re.escape(bob.addr))
    inst.wait_log(r"to=<%s>, orig_to=<team@localhost>, relay=local, .*status=sent"
                  % re.escape(carol.addr))
    inst.wait_queue_empty()
    assert not inst.mbox(alice.name).exists()


def drop_folder(tmp_path):
    """drop_folder - a sticky world-writable folder default_privs can write in."""
    d = tmp_path / "drop"
    d.mkdir()
    os.chmod(d, 0o1777)
    return d


def test_alias_to_file(inst, users, tmp_path):
    out = drop_folder(tmp_path) / "archive"
    inst.add_alias("archive", str(out))
    inst.start()
    subject = helpers.token("file")
    assert send(inst, users.alice.addr, "archive@localhost", subject) == {}
    msgs = wait_mbox(inst, out, subject)
    assert msgs[0].get_from().startswith(users.alice.addr + " ")
    assert msgs[0]["Delivered-To"].strip() == "archive@localhost"
    assert stat.S_IMODE(out.stat().st_mode) == MBOX_MODE
    # aliases owned by root: the file is written as default_privs (nobody)
    nobody = subprocess.run(["id", "-u", "nobody"], stdout=subprocess.PIPE,
                            text=True, check=True).stdout.strip()
    assert out.stat().st_uid == int(nobody)
    inst.wait_log(r"to=<archive@localhost>, relay=local, .*status=sent "
                  r"\(delivered to file: %s\)" % re.escape(str(out)))
    inst.wait_queue_empty()


def test_alias_to_command(inst, users, tmp_path):
    drop = drop_folder(tmp_path)
    out = drop / "piped"
    script = tmp_path / "catter.sh"
    script.write_text("#!/bin/sh\n# writes its standard input to a file\n"
                      "cat > %s\nexit 0\n" % out)
    os.chmod(script, 0o755)
    inst.add_alias("robot", "|%s" % script)
    inst.start()
    subject = helpers.token("pipe")
    assert send(inst, users.alice.addr, "robot@localhost", subject, "for the pipe\n") == {}
    text = inst.wait_for(lambda: out.exists() and subject in out.read_text(errors="replace")
                         and out.read_text(errors="replace"), "command output in %s" % out)
    assert "for the pipe" in text
    # as Postfix: From_ line, Return-Path and Delivered-To first
    assert text.startswith("From %s " % users.alice.addr), text[:200]
    assert "\nReturn-Path: <%s>\n" % users.alice.addr in text
    assert "\nDelivered-To: robot@localhost\n" in text
    inst.wait_log(r"to=<robot@localhost>, relay=local, .*status=sent "
                  r"\(delivered to command: %s\)" % re.escape(str(script)))
    inst.wait_queue_empty()


def test_postmaster_to_root(posta, users):
    subject = helpers.token("pm")
    assert send(posta, users.alice.addr, "postmaster@localhost", subject) == {}
    msgs = wait_mbox(posta, posta.mbox("root"), subject)
    assert len(msgs) == 1
    st = posta.mbox("root").stat()
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == MBOX_MODE
    assert msgs[0]["Delivered-To"].strip() == "postmaster@localhost"
    posta.wait_log(r"to=<root@localhost>, orig_to=<postmaster@localhost>, relay=local,"
                   r" .*status=sent")


def test_forward(posta, users):
    alice, bob = users.alice, users.bob
    fwd = bob.home / ".forward"
    fwd.write_text(alice.addr + "\n")
    os.chown(fwd, bob.uid, bob.gid)
    os.chmod(fwd, 0o644)
    subject = helpers.token("fwd")
    send(posta, users.carol.addr, bob.addr, subject)
    wait_mbox(posta, posta.mbox(alice.name), subject)
    posta.wait_queue_empty()
    assert not [m for m in helpers.read_mbox(posta.mbox(bob.name))
                if subject in str(m["Subject"])], ".forward must replace the mailbox"


def test_unwritable_maildir_defers_then_delivers(inst, users):
    inst.set_param("home_mailbox", "Maildir/")
    alice, bob = users.alice, users.bob
    md = bob.maildir()
    for sub in ("", "new", "cur", "tmp"):
        (md / sub).mkdir(exist_ok=True)
        os.chown(md / sub, bob.uid, bob.gid)
        os.chmod(md / sub, 0o700)
    os.chmod(md / "new", 0)      # local delivers as bob: new/ refuses him
    inst.start()
    subject = helpers.token("defer")
    try:
        send(inst, alice.addr, bob.addr, subject)
        inst.wait_log(r"to=<%s>, relay=local, .*status=deferred" % re.escape(bob.addr))
        inst.wait_for(lambda: inst.queue_files("deferred"), "message in deferred/")
        assert not helpers.read_maildir(md) or not [
            m for m in helpers.read_maildir(md) if subject in str(m["Subject"])]
        q = inst.queue_json()
        assert len(q) == 1
        assert q[0]["queue_name"] == "deferred", q
        # as postqueue -j: the reason from the defer log (checked at the end)
        reason = q[0]["recipients"][0].get("delay_reason", "")
    finally:
        os.chmod(md / "new", 0o700)
    # minimal_backoff_time 2s, maximal 4s, queue_run_delay 1s: a few seconds
    wait_maildir(inst, md, subject)
    inst.wait_queue_empty()
    assert not os.listdir(md / "tmp"), "no leftovers in tmp/ after the failed try"
    assert len(helpers.maildir_files(md)) == 1
    assert not os.listdir(inst.spool / "defer"), "defer log left behind"
    assert "ermission denied" in reason or "maildir" in reason, \
        "posta queue -j gave no delay_reason for the deferred recipient: %r" % q


def test_hash_aliases_built_by_posta_alias(inst, users):
    """aliases(5) "name: value" text, built into hash: by `posta alias`."""
    alice, bob, carol = users.alice, users.bob, users.carol
    src = inst.etc / "aliases.db-source"
    src.write_text("# aliases(5) format\nfriends: %s,\n  %s\nPostmaster: root\n"
                   % (bob.name, carol.name))
    table = "hash:%s" % src
    inst.set_param("alias_database", table)
    inst.set_param("alias_maps", table)
    r = inst.posta("alias")
    assert r.returncode == 0, r.stderr
    assert os.path.exists(str(src) + ".db")
    inst.start()
    subject = helpers.token("hash")
    assert send(inst, alice.addr, "friends@localhost", subject) == {}
    for u in (bob, carol):
        wait_mbox(inst, inst.mbox(u.name), subject)
    inst.wait_queue_empty()


def test_require_home_directory(inst, users):
    """require_home_directory = yes: a missing home defers; delivered once it is back."""
    bob = users.bob
    posta = inst
    posta.set_param("require_home_directory", "yes")
    posta.start()
    away = bob.home.with_name(bob.home.name + ".away")
    subject = helpers.token("home")
    os.rename(bob.home, away)
    try:
        send(posta, users.alice.addr, bob.addr, subject)
        posta.wait_log(r"to=<%s>.*status=deferred \(cannot access home directory %s: "
                       r"No such file or directory\)" % (re.escape(bob.addr), re.escape(str(bob.home))))
    finally:
        os.rename(away, bob.home)
    wait_mbox(posta, posta.mbox(bob.name), subject)
    posta.wait_queue_empty()
