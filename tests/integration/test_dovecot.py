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
import subprocess
import time

import pytest

import conftest
import helpers

pytestmark = pytest.mark.delivery

DOVECOT = "/usr/sbin/dovecot"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
IMAP_TIMEOUT = 15
DIR_MODE = 0o755
LOG_MODE = 0o666

CONF = """# dovecot.conf of one posta test: IMAP on 127.0.0.1:{port} only
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = passwd
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class Dovecot:
    """Dovecot - one dovecot -F child with its own configuration folder."""

    def __init__(self, folder, user, password):
        self.dir = folder
        self.port = conftest.free_port()
        folder.mkdir(exist_ok=True)
        conftest.make_traversable(folder)    # auth runs as "dovecot"
        for sub in ("", "run", "state"):
            (folder / sub).mkdir(exist_ok=True)
            os.chmod(folder / sub, DIR_MODE)
        self.log = folder / "dovecot.log"
        self.log.touch()
        os.chmod(self.log, LOG_MODE)
        (folder / "passwd").write_text("%s:{PLAIN}%s\n" % (user, password))
        os.chmod(folder / "passwd", 0o644)
        self.conf = folder / "dovecot.conf"
        self.conf.write_text(CONF.format(dir=folder, port=self.port))
        self.proc = None
        self.known = {}

    def logtext(self):
        """logtext - Dovecot's log so far."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self):
        """start - run dovecot -F and wait until it accepts connections."""
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace")
                raise AssertionError("dovecot exited %d: %s\n%s" % (
                    self.proc.returncode, out, self.logtext()))
            self.known.update(helpers.proc_tree(self.proc.pid))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(256).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("dovecot did not answer on %d:\n%s" % (self.port, self.logtext()))

    def stop(self):
        """stop - SIGTERM the master, then SIGKILL what is left of its tree."""
        if self.proc is None:
            return
        helpers.stop_tree(self.proc, self.known, STOP_TIMEOUT)


@pytest.fixture
def dovecot(tmp_path, users):
    """dovecot - a Dovecot for bob (not started); stopped afterwards."""
    if not os.path.exists(DOVECOT) or shutil.which("doveconf") is None:
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
