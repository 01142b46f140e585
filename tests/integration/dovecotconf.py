"""dovecotconf.py - one test Dovecot: its folder, configuration and process

  write_conf   the folder of one test Dovecot (run/, state/, a log every
               Dovecot process may write, a passwd-file with the given
               users and PLAIN passwords) and its dovecot.conf: listen on
               127.0.0.1 only, no TLS, plaintext auth allowed, passdb the
               passwd-file, everything else (protocols, mechanisms, userdb,
               services) as the caller says
  DovecotProc  dovecot -F -c CONF run from such a folder: started until a
               probe says it answers, stopped by PID (SIGTERM, then SIGKILL
               for its whole process tree, known by PID and start time)

Used by test_dovecot.py (IMAP) and tlshelp.DovecotAuth (the auth socket).

DIAGNOSTICS: Dovecot's log is quoted when it exits or does not answer.
"""

import os
import subprocess
import time
from pathlib import Path

import conftest
import helpers

DOVECOT = "/usr/sbin/dovecot"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.1
DIR_MODE = 0o755
FILE_MODE = 0o644
LOG_MODE = 0o666

HEAD = """# dovecot.conf of one posta test: {purpose}
protocols ={protocols}
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
{settings}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
"""


def write_conf(folder, users, purpose, protocols, mechanisms, body, settings=()):
    """write_conf - make folder ready for a Dovecot and write its dovecot.conf.

    users: {name: password}; protocols, mechanisms: space-separated words
    ("" for no protocol); settings: more "name = value" lines; body: the
    rest of the file (userdb, services). Returns (conf path, log path)."""
    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    conftest.make_traversable(folder)    # auth runs as "dovecot"
    for sub in ("", "run", "state"):
        (folder / sub).mkdir(exist_ok=True)
        os.chmod(folder / sub, DIR_MODE)
    log = folder / "dovecot.log"
    log.touch()
    os.chmod(log, LOG_MODE)
    (folder / "passwd").write_text(
        "".join("%s:{PLAIN}%s\n" % (u, p) for u, p in users.items()))
    os.chmod(folder / "passwd", FILE_MODE)
    conf = folder / "dovecot.conf"
    conf.write_text(HEAD.format(
        purpose=purpose, dir=folder, protocols=" " + protocols if protocols else "",
        mechanisms=mechanisms, settings="".join(line + "\n" for line in settings)) + body)
    return conf, log


class DovecotProc:
    """DovecotProc - one dovecot -F child run from a write_conf folder."""

    def __init__(self, conf, log):
        self.conf = Path(conf)
        self.log = Path(log)
        self.proc = None
        self.known = {}

    def logtext(self):
        """logtext - Dovecot's log so far."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def run(self, ready, what):
        """run - start dovecot -F; wait until ready() is true (what: for the error)."""
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
                if ready():
                    return
            except OSError:
                pass
            time.sleep(POLL_INTERVAL)
        raise AssertionError("%s:\n%s" % (what, self.logtext()))

    def stop(self):
        """stop - SIGTERM the master, then SIGKILL what is left of its tree."""
        if self.proc is None:
            return
        helpers.stop_tree(self.proc, self.known, STOP_TIMEOUT)
        self.proc = None
