"""test_dovecot.py - Dovecot reads over IMAP what posta delivered to a Maildir

posta delivers a message to bob's ~/Maildir (home_mailbox = Maildir/);
then the test starts its own Dovecot (dovecot -F -c CONF, a configuration
in the test's folder: IMAP only on 127.0.0.1 and a free port, no TLS, a
passwd-file with bob's password, users from the system passwd,
mail_location = maildir:~/Maildir, base_dir/state_dir/logs in the
folder) and Python's imaplib logs in as bob, selects INBOX and fetches
the message. Dovecot is stopped by PID (SIGTERM, then SIGKILL for its
whole process tree) whatever happened.

DIAGNOSTICS: Dovecot's log is quoted when it does not start or the IMAP
exchange fails.
"""

import imaplib
import os
import secrets
import shutil
import socket

import pytest

import conftest
import dovecotconf
import helpers

pytestmark = pytest.mark.delivery

IMAP_TIMEOUT = 15
PROBE_TIMEOUT = 2
GREETING_MAX = 256

CONF = """userdb {
  driver = passwd
}
mail_location = maildir:~/Maildir
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %d
  }
  inet_listener imaps {
    port = 0
  }
}
"""


class Dovecot(dovecotconf.DovecotProc):
    """Dovecot - one dovecot -F child with its own configuration folder."""

    def __init__(self, folder, user, password):
        self.dir = folder
        self.port = conftest.free_port()
        conf, log = dovecotconf.write_conf(
            folder, {user: password}, "IMAP on 127.0.0.1:%d only" % self.port, "imap",
            "plain login", CONF % self.port)
        super().__init__(conf, log)

    def greets(self):
        """greets - the IMAP listener sends its "* OK" greeting."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=PROBE_TIMEOUT) as s:
            return s.recv(GREETING_MAX).startswith(b"* OK")

    def start(self):
        """start - run dovecot -F and wait until it accepts connections."""
        self.run(self.greets, "dovecot did not answer on %d" % self.port)


@pytest.fixture
def dovecot(tmp_path, users):
    """dovecot - a Dovecot for bob (not started); stopped afterwards."""
    if not os.path.exists(dovecotconf.DOVECOT) or shutil.which("doveconf") is None:
        pytest.skip("dovecot not installed (scripts/deps.sh test)")
    d = Dovecot(tmp_path / "dovecot", users.bob.name, secrets.token_hex(8))
    yield d
    d.stop()


def test_imap_fetches_delivered_message(inst, users, dovecot):
    inst.set_param("home_mailbox", "Maildir/")
    inst.start()
    alice, bob = users.alice, users.bob
    subject = helpers.token("imap")
    with inst.smtp() as s:
        s.sendmail(alice.addr, [bob.addr],
                   "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nread me over IMAP\r\n"
                   % (alice.addr, bob.addr, subject))
    inst.wait_for(lambda: helpers.read_maildir(bob.maildir()), "delivery to ~bob/Maildir")
    inst.wait_queue_empty()

    dovecot.start()
    password = (dovecot.dir / "passwd").read_text().split("{PLAIN}")[1].strip()
    try:
        imap = imaplib.IMAP4("127.0.0.1", dovecot.port, timeout=IMAP_TIMEOUT)
        try:
            typ, _ = imap.login(bob.name, password)
            assert typ == "OK"
            typ, data = imap.select("INBOX")
            assert typ == "OK" and int(data[0]) == 1, data
            typ, data = imap.search(None, "SUBJECT", subject)
            assert typ == "OK" and data[0].split() == [b"1"], data
            typ, data = imap.fetch("1", "(RFC822)")
            assert typ == "OK", data
            raw = data[0][1]
            assert b"Subject: " + subject.encode() in raw
            assert b"read me over IMAP" in raw
            assert b"Delivered-To: " + bob.addr.encode() in raw
        finally:
            try:
                imap.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
    except (OSError, imaplib.IMAP4.error, AssertionError) as e:
        raise AssertionError("%s\ndovecot log:\n%s" % (e, dovecot.logtext()))
