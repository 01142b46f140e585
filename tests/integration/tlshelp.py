"""tlshelp.py - shared code for the TLS and AUTH integration tests

  add_smtpd      one more smtpd service in an instance's master.cf, on a
                 free port of 127.0.0.1, with -o overrides (a 587-like or
                 465-like listener)
  client_ctx     an ssl.SSLContext that accepts the instance's self-signed
                 certificate (tests check the server, not the PKI)
  TlsSMTP        RawSMTP over TLS after STARTTLS or from the first byte
  s_client       openssl s_client (-starttls smtp, sessions in and out)
  DovecotAuth    a real Dovecot (dovecot -F -c CONFIG in the test's folder)
                 that only serves its auth socket, put at the instance's
                 spool private/auth; passwd-file users
  CyrusSasldb    a sasldb2 made with saslpasswd2 and the libsasl2 app
                 config (smtpd.conf) for cyrus_sasl_config_path

Processes started here are stopped by PID (their whole tree, known by PID
and start time); nothing is killed by name.

DIAGNOSTICS: Dovecot's log is quoted when it does not come up.
"""

import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import conftest
import helpers

DOVECOT = "/usr/sbin/dovecot"
SASLPASSWD2 = "/usr/sbin/saslpasswd2"
OPENSSL = "openssl"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
CMD_TIMEOUT = 30
DIR_MODE = 0o755
FILE_MODE = 0o644
LOG_MODE = 0o666

SMTPD_LINE = "127.0.0.1:{port} inet  n       -       n       -       {maxproc}       smtpd"


def add_smtpd(inst, opts, maxproc="-"):
    """add_smtpd - an smtpd on a new port with "-o name=value" lines; the port."""
    port = conftest.free_port()
    text = inst.master_cf.read_text()
    if not text.endswith("\n"):
        text += "\n"
    text += SMTPD_LINE.format(port=port, maxproc=maxproc) + "\n"
    for name, value in opts.items():
        text += "  -o %s=%s\n" % (name, value)
    inst.master_cf.write_text(text)
    return port


def client_ctx(minimum=None, maximum=None):
    """client_ctx - TLS client settings that take a self-signed certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


class TlsSMTP(helpers.RawSMTP):
    """TlsSMTP - RawSMTP that can switch to TLS (starttls) or start in it."""

    def __init__(self, port, implicit=False, timeout=helpers.REPLY_TIMEOUT):
        super().__init__(port, timeout=timeout)
        if implicit:
            self.wrap()

    def wrap(self):
        """wrap - TLS handshake on the socket (buffered plaintext must be empty)."""
        assert not self.buf, "plaintext left before the handshake: %r" % (self.buf,)
        self.sock = client_ctx().wrap_socket(self.sock, server_hostname="localhost")
        return self.sock

    def starttls(self):
        """starttls - STARTTLS, its 220, the handshake."""
        code, text = self.cmd("STARTTLS")
        assert code == 220, (code, text)
        return self.wrap()

    def ehlo(self, name="client.example"):
        """ehlo - EHLO; the keywords (upper case)."""
        code, text = self.cmd("EHLO " + name)
        assert code == 250, (code, text)
        return [k.upper() for k in text[1:]]


def auth_keyword(keywords):
    """auth_keyword - the mechanisms of the "AUTH ..." EHLO line, or None."""
    for k in keywords:
        if k.startswith("AUTH "):
            return k.split()[1:]
    return None


def s_client(port, args, stdin=b"", starttls=True, timeout=CMD_TIMEOUT):
    """s_client - openssl s_client to 127.0.0.1:port; (returncode, output text)."""
    cmd = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port, "-ign_eof"]
    if starttls:
        cmd += ["-starttls", "smtp"]
    cmd += list(args)
    r = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")


DOVECOT_CONF = """# dovecot.conf of one posta test: the auth service only
protocols =
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={dir}
}}
service auth {{
  unix_listener {socket} {{
    mode = 0666
  }}
}}
"""


class DovecotAuth:
    """DovecotAuth - one dovecot -F serving its auth socket for an instance."""

    def __init__(self, folder, socket_path, users):
        self.dir = Path(folder)
        self.socket = Path(socket_path)
        self.dir.mkdir(exist_ok=True)
        conftest.make_traversable(self.dir)   # auth runs as "dovecot"
        for sub in ("", "run", "state"):
            (self.dir / sub).mkdir(exist_ok=True)
            os.chmod(self.dir / sub, DIR_MODE)
        self.log = self.dir / "dovecot.log"
        self.log.touch()
        os.chmod(self.log, LOG_MODE)
        (self.dir / "passwd").write_text(
            "".join("%s:{PLAIN}%s\n" % (u, p) for u, p in users.items()))
        os.chmod(self.dir / "passwd", FILE_MODE)
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(DOVECOT_CONF.format(dir=self.dir, socket=self.socket))
        self.proc = None
        self.known = {}

    def logtext(self):
        """logtext - Dovecot's log so far."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self):
        """start - run dovecot -F; wait until its auth socket answers VERSION."""
        if not self.socket.parent.is_dir():
            # made before master's spool check, which then fixes owner and mode
            self.socket.parent.mkdir(parents=True, mode=0o700)
            owner = self.socket.parent.parent / "data"
            if os.getuid() == 0 and owner.is_dir():
                st = owner.stat()
                os.chown(self.socket.parent, st.st_uid, st.st_gid)
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
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(2)
                    s.connect(str(self.socket))
                    if s.recv(256).startswith(b"VERSION"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("dovecot auth socket %s not ready:\n%s" % (
            self.socket, self.logtext()))

    def stop(self):
        """stop - SIGTERM the master, then SIGKILL what is left of its tree."""
        if self.proc is None:
            return
        helpers.stop_tree(self.proc, self.known, STOP_TIMEOUT)
        self.proc = None


class CyrusSasldb:
    """CyrusSasldb - a sasldb2 and the libsasl2 config NAME.conf in one folder."""

    def __init__(self, folder, realm, users, app="smtpd",
                 mechs="PLAIN LOGIN CRAM-MD5"):
        self.dir = Path(folder)
        self.dir.mkdir(exist_ok=True)
        os.chmod(self.dir, DIR_MODE)
        conftest.make_traversable(self.dir)
        self.db = self.dir / "sasldb2"
        for user, password in users.items():
            r = subprocess.run([SASLPASSWD2, "-p", "-f", str(self.db), "-c", "-u", realm, user],
                               input=password.encode() + b"\n", stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=CMD_TIMEOUT)
            assert r.returncode == 0, "saslpasswd2: %s" % r.stdout
        # smtpd reads sasldb after it dropped privileges
        os.chmod(self.db, FILE_MODE)
        (self.dir / ("%s.conf" % app)).write_text(
            "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s\n"
            "mech_list: %s\n" % (self.db, mechs))
        os.chmod(self.dir / ("%s.conf" % app), FILE_MODE)
