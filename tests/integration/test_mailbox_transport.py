"""test_mailbox_transport.py - local(8) hands mailboxes to mailbox_transport
and unknown users to fallback_transport

The common set-up "mailbox_transport = lmtp:unix:..." with a real Dovecot
LMTP server (dovecot -F -c CONF from the test's folder: LMTP only, on a
unix socket in its run/ folder, users from the system passwd, names
without the domain, mail_location = maildir:~/Maildir): a message to a
user, to an alias of two users, and to a user whose .forward names
another all land in the right Maildirs as Dovecot writes them. With the
scripted LMTP peer (peers/lmtp.py): a recipient the server refuses
bounces alone; a server that is down defers and the message goes out
once it is back; a transport without a master.cf service defers
("mail transport unavailable"); mailbox_transport_maps picks one user;
fallback_transport takes an unknown user (local_recipient_maps empty, as
Postfix's LOCAL_RECIPIENT_README asks for users outside passwd), before
luser_relay; luser_relay ($user expanded) takes an unknown user when no
transport does.

DIAGNOSTICS: Dovecot's log, the peer's output and posta's log are quoted
when a wait fails.
"""

import os
import re
import shutil

import pytest

import conftest
import dovecotconf
import helpers
import netlab

WAIT = 30.0

DOVECOT_LMTP = """userdb {
  driver = passwd
}
mail_location = maildir:~/Maildir
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
"""


class DovecotLmtp(dovecotconf.DovecotProc):
    """DovecotLmtp - a Dovecot that only speaks LMTP on FOLDER/run/lmtp."""

    def __init__(self, folder):
        self.dir = folder
        conf, log = dovecotconf.write_conf(
            folder, {}, "LMTP on a unix socket only", "lmtp", "plain", DOVECOT_LMTP,
            settings=("auth_username_format = %Ln",))
        super().__init__(conf, log)
        self.socket = folder / "run" / "lmtp"

    def start(self):
        """start - run dovecot -F and wait for its LMTP socket."""
        self.run(self.socket.exists, "dovecot made no LMTP socket %s" % self.socket)


@pytest.fixture
def dovecot_lmtp(tmp_path):
    """dovecot_lmtp - a started Dovecot LMTP server; stopped afterwards."""
    if not os.path.exists(dovecotconf.DOVECOT) or shutil.which("doveconf") is None:
        pytest.skip("dovecot not installed (scripts/deps.sh test)")
    d = DovecotLmtp(tmp_path / "dovecot")
    try:
        d.start()
        yield d
    finally:
        d.stop()


def lmtp_posta(make_posta, transport, **params):
    """lmtp_posta - an instance with the lmtp service and these settings (not started)."""
    conftest.require_programs("lmtp")
    inst = make_posta("posta", smtp=True)
    inst.set_param("mailbox_transport", transport)
    for name, value in params.items():
        inst.set_param(name, value)
    return inst


def maildir_subjects(user):
    """maildir_subjects - the Subject lines in user's ~/Maildir (new and cur)."""
    return helpers.subjects(helpers.read_maildir(user.maildir()))


def wait_maildir(inst, dovecot, user, subject):
    """wait_maildir - until subject is in user's Maildir; its messages."""
    def found():
        return subject in " ".join(maildir_subjects(user))
    if not helpers.wait_until(found, WAIT):
        raise AssertionError("%s not in ~%s/Maildir\nposta log:\n%s\ndovecot log:\n%s" % (
            subject, user.role, inst.log()[-4000:], dovecot.logtext()[-4000:]))
    return helpers.read_maildir(user.maildir())


def test_dovecot_lmtp_delivers(make_posta, users, dovecot_lmtp):
    alice, bob, carol = users.alice, users.bob, users.carol
    inst = lmtp_posta(make_posta, "lmtp:unix:%s" % dovecot_lmtp.socket)
    inst.add_alias("team", "%s, %s" % (alice.name, carol.name))
    fwd = carol.home / ".forward"
    fwd.write_text(bob.addr + "\n")
    os.chown(fwd, carol.uid, carol.gid)
    os.chmod(fwd, 0o644)
    inst.start()

    # A user: the message is in the Maildir as Dovecot writes it.
    subject = helpers.token("lmtp")
    assert netlab.send(inst, "sender@localhost", bob.addr, subject) == {}
    msgs = [m for m in wait_maildir(inst, dovecot_lmtp, bob, subject)
            if subject in str(m["Subject"])]
    assert len(msgs) == 1
    raw = msgs[0].as_string()
    assert re.search(r"(?m)^Received: from .*\n(\s.*\n)*?\s+by .* with LMTP", raw), raw
    assert msgs[0]["Return-Path"].strip() == "<sender@localhost>", raw
    assert "Delivered-To: %s" % bob.addr in raw
    inst.wait_log(r"to=<%s>, relay=[^,]*%s[^,]*, .*status=sent \(250 2\.0\.0 <%s>" % (
        re.escape(bob.addr), re.escape(str(dovecot_lmtp.socket)), re.escape(bob.addr)))
    assert not (inst.mbox(bob.name).exists() and inst.mbox(bob.name).stat().st_size), \
        "mailbox_transport must replace the mbox"

    # An alias of two users: both go through LMTP; carol's .forward
    # (to bob) applies first, as Postfix orders it.
    subject2 = helpers.token("team")
    assert netlab.send(inst, "sender@localhost", "team@localhost", subject2) == {}
    wait_maildir(inst, dovecot_lmtp, alice, subject2)
    wait_maildir(inst, dovecot_lmtp, bob, subject2)
    inst.wait_queue_empty()
    assert subject2 not in " ".join(maildir_subjects(carol)), ".forward must apply first"
    inst.wait_log(r"to=<%s>, orig_to=<team@localhost>, relay=[^,]*lmtp[^,]*, .*status=sent"
                  % re.escape(alice.addr))


def test_lmtp_refusal_bounces_only_that_recipient(make_posta, lab, users):
    sock = lab.root / "lmtp.sock"
    peer = netlab.Peer(lab, lab.root / "lmtp", "lmtp.py", unix=sock, args=["--reject", "bad"])
    inst = lmtp_posta(make_posta, "lmtp:unix:%s" % sock, local_recipient_maps="")
    inst.start()
    bob = users.bob
    subject = helpers.token("refuse")
    # badperson has no passwd entry: mailbox_transport takes it all the same.
    assert netlab.send(inst, bob.addr, [bob.addr, "badperson@localhost"], subject) == {}
    inst.wait_log(r"to=<badperson@localhost>, relay=[^,]*lmtp.sock[^,]*, .*dsn=5\.1\.1, "
                  r"status=bounced")
    inst.wait_log(r"to=<%s>, relay=[^,]*lmtp.sock[^,]*, .*status=sent" % re.escape(bob.addr))
    # The bounce to bob goes through the same transport: two messages in all.
    msgs = peer.wait_messages(2, WAIT, lambda: inst.log()[-4000:])
    first = [m for m in msgs if subject.encode() in m["raw"]
             and b"Undelivered" not in m["raw"] and b"delivery status" not in m["raw"]]
    assert first and first[0]["rcpts"] == [bob.addr], msgs
    notices = [m for m in msgs if m not in first]
    assert notices and notices[0]["rcpts"] == [bob.addr], msgs
    assert b"badperson@localhost" in notices[0]["raw"]
    inst.wait_queue_empty()


def test_lmtp_down_defers_then_delivers(make_posta, lab, users):
    sock = lab.root / "lmtp.sock"
    inst = lmtp_posta(make_posta, "lmtp:unix:%s" % sock)
    inst.start()
    bob = users.bob
    subject = helpers.token("down")
    assert netlab.send(inst, "sender@localhost", bob.addr, subject) == {}
    inst.wait_log(r"to=<%s>, relay=[^,]*, .*status=deferred" % re.escape(bob.addr))
    assert inst.queued(), "the deferred message must stay queued"
    peer = netlab.Peer(lab, lab.root / "lmtp", "lmtp.py", unix=sock)
    msgs = peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    assert msgs[0]["rcpts"] == [bob.addr]
    inst.wait_log(r"to=<%s>, relay=[^,]*lmtp.sock[^,]*, .*status=sent" % re.escape(bob.addr))
    inst.wait_queue_empty()


def test_missing_transport_service_defers(make_posta, users):
    inst = lmtp_posta(make_posta, "nosuchservice:unix:/nonexistent")
    inst.start()
    bob = users.bob
    subject = helpers.token("nosvc")
    assert netlab.send(inst, "sender@localhost", bob.addr, subject) == {}
    inst.wait_log(r"to=<%s>, relay=local, .*dsn=4\.3\.0, status=deferred "
                  r"\(mail transport unavailable\)" % re.escape(bob.addr))
    assert inst.queued(), "the deferred message must stay queued"
    assert not inst.mbox(bob.name).exists() or subject not in inst.mbox(bob.name).read_text()


def test_transport_maps_and_fallback(make_posta, lab, users):
    sock = lab.root / "lmtp.sock"
    peer = netlab.Peer(lab, lab.root / "lmtp", "lmtp.py", unix=sock)
    alice, bob = users.alice, users.bob
    conftest.require_programs("lmtp")
    inst = make_posta("posta")
    table = inst.etc / "mailbox_transport"
    table.write_text("%s lmtp:unix:%s\n" % (bob.name, sock))
    inst.set_param("mailbox_transport_maps", "texthash:%s" % table)
    inst.set_param("fallback_transport", "lmtp:unix:%s" % sock)
    inst.set_param("luser_relay", alice.name)     # fallback_transport goes first
    inst.set_param("local_recipient_maps", "")
    inst.start()
    subject = helpers.token("maps")
    assert netlab.send(inst, "sender@localhost",
                       [alice.addr, bob.addr, "nobody-here@localhost"], subject) == {}
    # alice: no table entry, no mailbox_transport: her mbox.
    inst.wait_for(lambda: subject in " ".join(helpers.subjects(
        helpers.read_mbox(inst.mbox(alice.name)))), "alice's mbox")
    want = sorted([bob.addr, "nobody-here@localhost"])
    inst.wait_for(lambda: sorted(r for m in peer.messages() for r in m["rcpts"]) == want,
                  "bob (mailbox_transport_maps) and nobody-here (fallback_transport) at "
                  "the peer: %r" % peer.messages())
    inst.wait_queue_empty()
    assert helpers.subjects(helpers.read_mbox(inst.mbox(alice.name))) == [subject]
    inst.wait_log(r"to=<nobody-here@localhost>, relay=[^,]*lmtp.sock[^,]*, .*status=sent")


def test_luser_relay(make_posta, lab, users):
    alice = users.alice
    inst = make_posta("posta", smtp=False)
    inst.set_param("local_recipient_maps", "")
    inst.set_param("luser_relay", "${user}-lost")
    inst.add_alias("ghost-lost", alice.name)
    inst.start()
    subject = helpers.token("luser")
    assert netlab.send(inst, "sender@localhost", "ghost@localhost", subject) == {}
    inst.wait_for(lambda: subject in " ".join(helpers.subjects(
        helpers.read_mbox(inst.mbox(alice.name)))), "alice's mbox (luser_relay)")
    inst.wait_log(r"to=<%s@[^>]*>, orig_to=<ghost@localhost>, relay=local, .*status=sent "
                  r"\(delivered to mailbox\)" % re.escape(alice.name))
    inst.wait_queue_empty()
