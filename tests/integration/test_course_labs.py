"""test_course_labs.py - the course's second and third labs, end to end (issue 4)

In a lab (netlab.Lab) with its own DNS server (10.77.0.53):

  mercurio  10.77.0.10  posta, mx.mercurio.test, mydestination mercurio.test
  venus     10.77.0.11  posta, mx.venus.test, mydestination venus.test
  marte     10.77.0.12  Debian's Postfix, mail.marte.test, domain marte.test
  sat       10.77.0.30  a satellite posta (relayhost [mx.mercurio.test],
                        mydestination empty, inet_interfaces loopback-only)

and MX records mercurio.test -> mx.mercurio.test, venus.test ->
mx.venus.test, marte.test -> mail.marte.test.

- Two domains: alice (a real Unix user) sends with `mail` (bsd-mailx)
  through mercurio's sendmail to bob@venus.test; bob's mailbox on venus
  gets it by MX lookup; bob answers the same way and alice gets it.
- Real Postfix as the other host: posta (mercurio) -> Postfix (marte,
  carol's ~/Maildir) and Postfix -> posta (marte -> alice on mercurio).
- The satellite: alice's `mail bob` and root's cron mail (sendmail
  -FCronDaemon -i -B8BITMIME -oem root, as cron runs it) leave the
  satellite for the relay (mercurio), where bob's and root's mailboxes
  get them; nothing is delivered on the satellite itself.

All instances live on one machine and share /etc/passwd; each has its own
mail_spool_directory (DIR/mail), so a mailbox says which host delivered.
postdrop: as in test_mailx.py, the users get setgid_group as a
supplementary group for the test (the build's postdrop is not set-gid).

DIAGNOSTICS: every wait is bounded; failures quote the logs of the
instances involved.
"""

import os
import re
import shutil
import subprocess

import pytest

import conftest
import helpers
import netlab

pytestmark = pytest.mark.delivery

MAILX = "/usr/bin/bsd-mailx"
SENDMAIL = conftest.BUILD / "bin" / "sendmail"
WAIT = 25.0
CMD_WAIT = 30
PUBLIC_READ = 0o644
MERCURIO, VENUS, MARTE, SAT = 10, 11, 12, 30


@pytest.fixture
def mailrc(tmp_path):
    """mailrc - a MAILRC that makes bsd-mailx use posta's sendmail."""
    if not os.path.exists(MAILX) or shutil.which("su") is None:
        pytest.skip("bsd-mailx not installed (scripts/deps.sh test)")
    assert SENDMAIL.is_file(), "posta's sendmail not built"
    rc = tmp_path / "mailrc"
    rc.write_text("set sendmail=%s\n" % SENDMAIL)
    os.chmod(rc, PUBLIC_READ)
    return rc


@pytest.fixture
def drop_group(users):
    """drop_group - the users in setgid_group (nogroup, see mkinstance.sh) for the test."""
    group = "nogroup"
    for u in users.all:
        subprocess.run(["usermod", "-a", "-G", group, u.name], check=True, timeout=CMD_WAIT)
    yield group
    for u in users.all:
        subprocess.run(["gpasswd", "-d", u.name, group], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=CMD_WAIT)


def mail_as(host, user, inst, mailrc, rcpt, subject, body):
    """mail_as - `echo body | mail -s subject rcpt` as user inside host, via inst's sendmail."""
    cmd = "printf '%%s\\n' '%s' | MAILRC=%s MAIL_CONFIG=%s %s -s '%s' %s" % (
        body, mailrc, inst.etc, MAILX, subject, rcpt)
    r = host.run(["su", user.name, "-s", "/bin/sh", "-c", cmd], check=False, timeout=CMD_WAIT)
    assert r.returncode == 0, "mail as %s failed: %s\nlog:\n%s" % (
        user.name, r.stdout, inst.log()[-3000:])


def wait_mbox(inst, path, subject, others=()):
    """wait_mbox - the message with subject in mbox path (others: logs to quote)."""
    def found():
        msgs = [m for m in helpers.read_mbox(path) if m["Subject"] == subject]
        return msgs or None
    try:
        return inst.wait_for(found, "%r in %s" % (subject, path), WAIT)[0]
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, "\n".join(
            "other log (%s):\n%s" % (getattr(o, "root", "?"), o.log()[-3000:])
            for o in others)))


class Domains:
    """Domains - the lab of this file: DNS and the hosts the test asks for."""

    def __init__(self, lab, make_posta):
        self.lab = lab
        self.make_posta = make_posta
        self.dns = lab.dns()
        (self.dns.mx("mercurio.test", "mx.mercurio.test", 10)
            .a("mx.mercurio.test", "%s.%d" % (netlab.SUBNET, MERCURIO))
            .mx("venus.test", "mx.venus.test", 10)
            .a("mx.venus.test", "%s.%d" % (netlab.SUBNET, VENUS))
            .mx("marte.test", "mail.marte.test", 10)
            .a("mail.marte.test", "%s.%d" % (netlab.SUBNET, MARTE))
            .a("sat.mercurio.test", "%s.%d" % (netlab.SUBNET, SAT))
            .start())

    def posta(self, name, octet, domain, smtp=True):
        """posta - a started posta for domain on a new host (mx.DOMAIN)."""
        host = self.lab.host(name, octet)
        inst = self.make_posta(name, host=host, hostname="mx." + domain,
                               mydestination="%s, $myhostname, localhost" % domain,
                               smtp=smtp)
        inst.set_param("myorigin", domain)
        inst.set_param("smtpd_error_sleep_time", "0s")
        inst.start()
        return host, inst

    def postfix(self, name, octet, domain):
        """postfix - a started Postfix for domain on a new host (mail.DOMAIN)."""
        if not os.access(netlab.POSTFIX, os.X_OK):
            pytest.skip("Postfix not installed")
        host = self.lab.host(name, octet)
        pf = netlab.PostfixPeer(self.lab, host, self.lab.root / ("postfix-" + name),
                                "mail." + domain, domain,
                                "%s.0/%d" % (netlab.SUBNET, netlab.PREFIXLEN))
        pf.start()
        return host, pf


@pytest.fixture
def domains(lab, make_posta):
    """domains - the lab's DNS, ready for hosts."""
    return Domains(lab, make_posta)


def test_two_domains_mail_and_reply(domains, users, mailrc, drop_group):
    alice, bob = users.alice, users.bob
    mhost, mercurio = domains.posta("mercurio", MERCURIO, "mercurio.test")
    vhost, venus = domains.posta("venus", VENUS, "venus.test")
    domains.lab.wait_reachable(mhost, vhost.addr)
    a_addr = "%s@mercurio.test" % alice.name
    b_addr = "%s@venus.test" % bob.name

    subject = helpers.token("lab2")
    mail_as(mhost, alice, mercurio, mailrc, b_addr, subject, "hello bob, from mercurio")
    m = wait_mbox(venus, venus.mbox(bob.name), subject, others=[mercurio])
    assert m["Return-Path"].strip() == "<%s>" % a_addr, m["Return-Path"]
    assert "hello bob, from mercurio" in m.get_payload()
    received = " ".join(m.get_all("Received") or [])
    assert "mx.mercurio.test" in received and "10.77.0.10" in received, received
    mercurio.wait_log(r"to=<%s>, relay=mx\.venus\.test\[10\.77\.0\.11\]:25, delay=[0-9.]+, "
                      r"delays=[0-9./]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as "
                      % re.escape(b_addr))
    assert not helpers.read_mbox(mercurio.mbox(bob.name)), "delivered on the wrong host"

    reply = "Re: " + subject
    mail_as(vhost, bob, venus, mailrc, a_addr, reply, "thanks alice, from venus")
    m = wait_mbox(mercurio, mercurio.mbox(alice.name), reply, others=[venus])
    assert m["Return-Path"].strip() == "<%s>" % b_addr, m["Return-Path"]
    assert "thanks alice" in m.get_payload()
    venus.wait_log(r"to=<%s>, relay=mx\.mercurio\.test\[10\.77\.0\.10\]:25, .*status=sent"
                   % re.escape(a_addr))
    mercurio.wait_queue_empty()
    venus.wait_queue_empty()


def test_posta_to_postfix(domains, users, mailrc, drop_group):
    alice, carol = users.alice, users.carol
    mhost, mercurio = domains.posta("mercurio", MERCURIO, "mercurio.test")
    phost, pf = domains.postfix("marte", MARTE, "marte.test")
    c_addr = "%s@marte.test" % carol.name
    subject = helpers.token("to-postfix")
    mail_as(mhost, alice, mercurio, mailrc, c_addr, subject, "hello carol, from posta")

    def found():
        msgs = [m for m in helpers.read_maildir(carol.maildir()) if m["Subject"] == subject]
        return msgs or None
    try:
        msgs = mercurio.wait_for(found, "the message in carol's Maildir (Postfix)", WAIT)
    except AssertionError as e:
        raise AssertionError("%s\nPostfix log:\n%s" % (e, pf.log()[-3000:]))
    m = msgs[0]
    assert m["Return-Path"].strip() == "<%s@mercurio.test>" % alice.name, m["Return-Path"]
    assert "hello carol" in m.get_payload()
    mercurio.wait_log(r"to=<%s>, relay=mail\.marte\.test\[10\.77\.0\.12\]:25, .*dsn=2\.0\.0, "
                      r"status=sent \(250 2\.0\.0 Ok: queued as " % re.escape(c_addr))
    assert re.search(r"to=<%s>, relay=local, .*status=sent" % re.escape(c_addr), pf.log()), \
        pf.log()[-3000:]
    mercurio.wait_queue_empty()


def test_postfix_to_posta(domains, users):
    alice, carol = users.alice, users.carol
    # the receiving posta needs no smtp client: this direction tests the lab
    # (namespaces, DNS, Postfix) and posta's smtpd and local as an MX
    mhost, mercurio = domains.posta("mercurio", MERCURIO, "mercurio.test", smtp=False)
    phost, pf = domains.postfix("marte", MARTE, "marte.test")
    a_addr = "%s@mercurio.test" % alice.name
    c_addr = "%s@marte.test" % carol.name
    subject = helpers.token("from-postfix")
    with netlab.entered(phost.ns):
        import smtplib
        with smtplib.SMTP(phost.addr, netlab.SMTP_PORT, timeout=WAIT) as s:
            s.sendmail(c_addr, [a_addr], "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n"
                       "hello alice, from Postfix\r\n" % (c_addr, a_addr, subject))
    try:
        m = wait_mbox(mercurio, mercurio.mbox(alice.name), subject)
    except AssertionError as e:
        raise AssertionError("%s\nPostfix log:\n%s" % (e, pf.log()[-3000:]))
    assert m["Return-Path"].strip() == "<%s>" % c_addr, m["Return-Path"]
    assert "hello alice" in m.get_payload()
    received = " ".join(m.get_all("Received") or [])
    assert "mail.marte.test" in received, received
    assert helpers.wait_until(lambda: re.search(
        r"to=<%s>, relay=mx\.mercurio\.test\[10\.77\.0\.10\]:25, .*status=sent"
        % re.escape(a_addr), pf.log()), WAIT), pf.log()[-3000:]
    mercurio.wait_queue_empty()


def test_satellite_through_relay(domains, users, mailrc, drop_group):
    alice, bob = users.alice, users.bob
    mhost, relay = domains.posta("mercurio", MERCURIO, "mercurio.test")
    shost = domains.lab.host("sat", SAT)
    sat = domains.make_posta("sat", host=shost, hostname="sat.mercurio.test",
                             mydestination="", public=False)
    sat.set_param("myorigin", "mercurio.test")
    sat.set_param("relayhost", "[mx.mercurio.test]")
    sat.start()
    domains.lab.wait_reachable(shost, mhost.addr)
    # no public listener: a satellite takes mail from its own users only
    with pytest.raises(OSError):
        shost.connect(shost.addr, netlab.SMTP_PORT, timeout=2).close()

    # a local user's mail, to a bare local name
    subject = helpers.token("sat")
    mail_as(shost, alice, sat, mailrc, bob.name, subject, "from the satellite")
    m = wait_mbox(relay, relay.mbox(bob.name), subject, others=[sat])
    assert m["Return-Path"].strip() == "<%s@mercurio.test>" % alice.name, m["Return-Path"]
    sat.wait_log(r"to=<%s@mercurio\.test>, relay=mx\.mercurio\.test\[10\.77\.0\.10\]:25, "
                 r".*dsn=2\.0\.0, status=sent" % re.escape(bob.name))

    # root's cron mail, as cron(8) submits it
    cron_subject = "Cron <root@sat> run-parts /etc/cron.hourly " + helpers.token("cron")
    text = ("From: root (Cron Daemon)\nTo: root\nSubject: %s\n"
            "Content-Type: text/plain; charset=UTF-8\n\njob output\n" % cron_subject)
    r = shost.run([SENDMAIL, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
                  check=False, input=text, env=dict(os.environ, MAIL_CONFIG=str(sat.etc)),
                  stdin=None)
    assert r.returncode == 0, "cron's sendmail failed: %s\nlog:\n%s" % (r.stdout, sat.log())
    m = wait_mbox(relay, relay.mbox("root"), cron_subject, others=[sat])
    assert m["Return-Path"].strip() == "<root@mercurio.test>", m["Return-Path"]
    assert "job output" in m.get_payload()
    sat.wait_log(r"to=<root@mercurio\.test>, relay=mx\.mercurio\.test\[10\.77\.0\.10\]:25, "
                 r".*status=sent")
    sat.wait_queue_empty()
    # nothing was delivered on the satellite itself
    assert not any(sat.mail.iterdir()), list(sat.mail.iterdir())
    assert "relay=local" not in sat.log(), sat.log()[-3000:]
