"""test_virtual_alias.py - virtual_alias_maps and virtual alias domains, end to end

One posta instance (qmgr, local, pickup, smtp; relayhost = a capture peer
of peers/) with virtual_alias_maps = texthash:ETC/virtual, the domains
virt.example and catch.example listed in it as keys (so they are
virtual_alias_domains by its default, $virtual_alias_maps), and
mynetworks = 127.0.0.1/32, so that a client on 127.0.0.2 is "the
Internet". The tests check Postfix's behaviour (virtual(5)):
  - an address of a virtual alias domain reaches a local user, two users,
    a remote address (on the peer's wire), and a catch-all @domain;
  - mail for the domain is accepted from outside mynetworks (relay check)
    while another foreign domain is still refused;
  - an address of the domain that the table does not list is refused at
    RCPT with 550 5.1.1 "User unknown in virtual alias table";
  - sendmail (pickup) mail is expanded as SMTP mail is;
  - a loop (a -> b -> a) ends at the original address, which bounces as
    "User unknown in virtual alias table", as Postfix's does;
  - the bounce of an expanded address names the original in
    Original-Recipient (ORCPT given by posta when the client gave none);
  - a broken table entry refuses the message with 451 4.3.0 at DATA
    rather than queue it unexpanded;
  - an address of a local domain listed in the table is a known
    recipient though local_recipient_maps does not list it;
  - a REDIRECT address of an access table is expanded too;
  - sendmail mail whose expansion fails stays in the maildrop.

DIAGNOSTICS: every wait is bounded; failures quote the maillog and the
peer's output.
"""

import os
import re
import subprocess

import pytest

import conftest
import helpers
import netlab

pytestmark = pytest.mark.delivery

OUTSIDE = "127.0.0.2"
REMOTE = "remote.example"
SENDMAIL = conftest.BUILD / "bin" / "sendmail"
WAIT = 20.0


@pytest.fixture
def vposta(make_posta, lab, users):
    """vposta - a started instance with the virtual table; (inst, peer, users)."""
    peer = netlab.Peer(lab, lab.root / "peer-capture", "capture.py", listen="127.0.0.1:0")
    inst = make_posta("posta")
    access = inst.etc / "rcpt_access"
    access.write_text("%s REDIRECT team@virt.example\n" % users.alice.addr)
    inst.set_param("smtpd_recipient_restrictions",
                   "check_recipient_access texthash:%s, permit_mynetworks, "
                   "reject_unauth_destination" % access)
    a, b, c = users.alice.name, users.bob.name, users.carol.name
    table = inst.etc / "virtual"
    table.write_text(
        "# virtual(5) table of the tests\n"
        "virt.example        anything\n"
        "catch.example       anything\n"
        "info@virt.example   %s@localhost\n"
        "team@virt.example   %s, %s@localhost\n"
        "far@virt.example    someone@%s\n"
        "mixed@virt.example  team@virt.example, far@virt.example\n"
        "loop-a@virt.example loop-b@virt.example\n"
        "loop-b@virt.example loop-a@virt.example\n"
        "gone@virt.example   nobody-here@virt.example\n"
        "broken@virt.example |/bin/true\n"
        "sales@localhost     %s@localhost\n"
        "@catch.example      %s\n" % (a, b, c, REMOTE, b, a))
    inst.set_param("virtual_alias_maps", "texthash:%s" % table)
    inst.set_param("relayhost", "[127.0.0.1]:%d" % peer.port)
    inst.set_param("mynetworks", "127.0.0.1/32")
    inst.set_param("smtpd_error_sleep_time", "0s")
    inst.set_param("smtpd_peername_lookup", "no")
    inst.start()
    return inst, peer, users


def dialog(inst, source, sender, rcpts, subject, data=True):
    """dialog - one SMTP transaction; the (code, text) of each RCPT and of the end."""
    out = []

    def joined(reply):
        return reply[0], " ".join(reply[1])
    with inst.raw(source=source) as c:
        code, text = c.reply()
        assert code == 220, text
        assert c.cmd("EHLO client.example")[0] == 250
        assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
        for r in rcpts:
            out.append(joined(c.cmd("RCPT TO:<%s>" % r)))
        if data:
            code, text = joined(c.cmd("DATA"))
            out.append((code, text))
            if code == 354:
                c.send(("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nhello\r\n.\r\n"
                        % (sender, rcpts[0], subject)).encode())
                out.append(joined(c.reply()))
        c.cmd("QUIT")
    return out


def wait_mail(inst, user, subject, count=1):
    """wait_mail - the messages with subject in user's mbox, once count are there."""
    def found():
        msgs = [m for m in helpers.read_mbox(inst.mbox(user.name))
                if subject in str(m["Subject"])]
        return msgs if len(msgs) >= count else None
    return inst.wait_for(found, "%d message(s) %r for %s" % (count, subject, user.name))


def test_to_local_user_from_outside(vposta):
    inst, _, users = vposta
    subject = helpers.token("virt-local")
    r = dialog(inst, OUTSIDE, "sender@outside.example", ["info@virt.example"], subject)
    assert r[0][0] == 250, r        # relay check: the domain is ours
    assert r[-1][0] == 250, r
    msgs = wait_mail(inst, users.alice, subject)
    assert msgs[0]["Delivered-To"].strip() == users.alice.addr
    inst.wait_log(r"virtual alias: <info@virt\.example> -> <%s>" % re.escape(users.alice.addr))
    inst.wait_queue_empty()


def test_foreign_domain_still_refused_from_outside(vposta):
    inst, _, _ = vposta
    r = dialog(inst, OUTSIDE, "sender@outside.example", ["x@elsewhere.example"], "x",
               data=False)
    assert r[0][0] == 554 and "Relay access denied" in r[0][1], r


def test_to_two_users_and_remote(vposta):
    inst, peer, users = vposta
    subject = helpers.token("virt-team")
    r = dialog(inst, OUTSIDE, "sender@outside.example", ["mixed@virt.example"], subject)
    assert r[-1][0] == 250, r
    for u in (users.bob, users.carol):
        assert len(wait_mail(inst, u, subject)) == 1
    msgs = peer.wait_messages(1, WAIT, lambda: inst.log()[-4000:])
    assert subject.encode() in msgs[0]["raw"]
    assert [e["address"] for e in peer.events("rcpt")] == ["someone@" + REMOTE]
    inst.wait_queue_empty()
    assert not inst.mbox(users.alice.name).exists()


def test_catch_all(vposta):
    inst, _, users = vposta
    subject = helpers.token("virt-catch")
    r = dialog(inst, OUTSIDE, "sender@outside.example", ["whoever@catch.example"], subject)
    assert r[0][0] == 250 and r[-1][0] == 250, r
    wait_mail(inst, users.alice, subject)


def test_unlisted_rejected_at_rcpt(vposta):
    inst, _, _ = vposta
    r = dialog(inst, OUTSIDE, "sender@outside.example",
               ["nobody@virt.example", "info@virt.example"], "x", data=False)
    assert r[0][0] == 550, r
    assert "5.1.1 <nobody@virt.example>: Recipient address rejected: " \
           "User unknown in virtual alias table" in r[0][1], r
    assert r[1][0] == 250, r
    inst.wait_log(r"reject: RCPT from .*: 550 5\.1\.1 <nobody@virt\.example>")


def test_sendmail_is_expanded(vposta):
    inst, _, users = vposta
    assert SENDMAIL.is_file(), "posta's sendmail not built"
    subject = helpers.token("virt-sendmail")
    text = "From: root@localhost\nTo: team@virt.example\nSubject: %s\n\nhi\n" % subject
    env = dict(os.environ, MAIL_CONFIG=str(inst.etc))
    r = subprocess.run([str(SENDMAIL), "-i", "-f", "root@localhost", "team@virt.example"],
                       input=text.encode(), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=WAIT)
    assert r.returncode == 0, "sendmail failed: %r\nlog:\n%s" % (r.stdout, inst.log())
    for u in (users.bob, users.carol):
        wait_mail(inst, u, subject)
    inst.wait_queue_empty()


def bounce_for(inst, user, subject):
    """bounce_for - the bounce in user's mbox about the message with subject."""
    def found():
        for m in helpers.read_mbox(inst.mbox(user.name)):
            if subject in m.as_string() and "Undelivered" in str(m["Subject"]):
                return m
        return None
    return inst.wait_for(found, "a bounce about %r for %s" % (subject, user.name))


def test_loop_bounces_as_postfix(vposta):
    inst, _, users = vposta
    subject = helpers.token("virt-loop")
    r = dialog(inst, "127.0.0.1", users.alice.addr, ["loop-a@virt.example"], subject)
    assert r[0][0] == 250 and r[-1][0] == 250, r
    bounce = bounce_for(inst, users.alice, subject)
    assert "User unknown in virtual alias table" in bounce.as_string()
    inst.wait_log(r"to=<loop-a@virt\.example>, relay=none, .*status=bounced")


def test_bounce_names_original_recipient(vposta):
    inst, _, users = vposta
    subject = helpers.token("virt-orcpt")
    r = dialog(inst, "127.0.0.1", users.alice.addr, ["gone@virt.example"], subject)
    assert r[-1][0] == 250, r
    text = bounce_for(inst, users.alice, subject).as_string()
    assert "Original-Recipient: rfc822;gone@virt.example" in text, text
    assert re.search(r"Final-Recipient: rfc822; ?nobody-here@virt\.example", text), text


def test_broken_entry_refuses_with_451(vposta):
    inst, _, _ = vposta
    r = dialog(inst, "127.0.0.1", "a@localhost", ["broken@virt.example"], "x")
    assert r[0][0] == 250, r
    assert r[1][0] == 451 and "4.3.0" in r[1][1], r
    inst.wait_log(r"virtual_alias_maps: bad value for broken@virt\.example")
    assert not inst.queue_files("incoming")


def test_local_domain_address_known_by_virtual_table(vposta):
    # sales is no user and no alias: local_recipient_maps alone refuses it
    inst, _, users = vposta
    subject = helpers.token("virt-sales")
    r = dialog(inst, OUTSIDE, "sender@outside.example",
               ["sales@localhost", "no-such-user-here@localhost"], subject)
    assert r[0][0] == 250, r
    assert r[1][0] == 550 and "User unknown in local recipient table" in r[1][1], r
    assert r[-1][0] == 250, r
    wait_mail(inst, users.bob, subject)


def test_redirect_is_expanded(vposta):
    inst, _, users = vposta
    subject = helpers.token("virt-redirect")
    r = dialog(inst, "127.0.0.1", "sender@outside.example", [users.alice.addr], subject)
    assert r[0][0] == 250 and r[-1][0] == 250, r
    for u in (users.bob, users.carol):
        wait_mail(inst, u, subject)
    inst.wait_queue_empty()
    assert not inst.mbox(users.alice.name).exists()


def test_sendmail_broken_entry_stays_in_maildrop(vposta):
    inst, _, _ = vposta
    text = "From: root@localhost\nTo: broken@virt.example\nSubject: kept\n\nhi\n"
    env = dict(os.environ, MAIL_CONFIG=str(inst.etc))
    r = subprocess.run([str(SENDMAIL), "-i", "-f", "root@localhost", "broken@virt.example"],
                       input=text.encode(), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=WAIT)
    assert r.returncode == 0, "sendmail failed: %r\nlog:\n%s" % (r.stdout, inst.log())
    inst.wait_log(r"virtual_alias_maps lookup failure: message left in maildrop")
    assert inst.queue_files("maildrop"), "the message left the maildrop"
    assert not inst.queue_files("corrupt")
