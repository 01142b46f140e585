"""tlshelp.py - shared code for the TLS and AUTH integration tests

  add_smtpd      one more smtpd service in an instance's master.cf, on a
                 free port of 127.0.0.1, with -o overrides (a 587-like or
                 465-like listener)
  client_ctx     an ssl.SSLContext that accepts the instance's self-signed
                 certificate (tests check the server, not the PKI)
  TlsSMTP        RawSMTP over TLS after STARTTLS or from the first byte
  s_client       openssl s_client (-starttls smtp, sessions in and out)
  DovecotAuth    a real Dovecot (dovecot -F -c CONFIG in the test's folder,
                 see dovecotconf.py) that only serves its auth socket, put
                 at the instance's spool private/auth; passwd-file users
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
from pathlib import Path

import conftest
import dovecotconf
import helpers

DOVECOT = dovecotconf.DOVECOT
SASLPASSWD2 = "/usr/sbin/saslpasswd2"
OPENSSL = "openssl"
CMD_TIMEOUT = 30
PROBE_TIMEOUT = 2
GREETING_MAX = 256
DIR_MODE = dovecotconf.DIR_MODE
FILE_MODE = dovecotconf.FILE_MODE

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


DOVECOT_CONF = """userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={dir}
}}
service auth {{
  unix_listener {socket} {{
    mode = 0666
  }}
}}
"""


class DovecotAuth(dovecotconf.DovecotProc):
    """DovecotAuth - one dovecot -F serving its auth socket for an instance."""

    def __init__(self, folder, socket_path, users):
        self.dir = Path(folder)
        self.socket = Path(socket_path)
        conf, log = dovecotconf.write_conf(
            self.dir, users, "the auth service only", "", "plain login cram-md5",
            DOVECOT_CONF.format(dir=self.dir, socket=self.socket),
            settings=("auth_failure_delay = 0",))
        super().__init__(conf, log)

    def answers(self):
        """answers - the auth socket sends VERSION."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(PROBE_TIMEOUT)
            s.connect(str(self.socket))
            return s.recv(GREETING_MAX).startswith(b"VERSION")

    def start(self):
        """start - run dovecot -F; wait until its auth socket answers VERSION."""
        if not self.socket.parent.is_dir():
            # made before master's spool check, which then fixes owner and mode
            self.socket.parent.mkdir(parents=True, mode=0o700)
            owner = self.socket.parent.parent / "data"
            if os.getuid() == 0 and owner.is_dir():
                st = owner.stat()
                os.chown(self.socket.parent, st.st_uid, st.st_gid)
        self.run(self.answers, "dovecot auth socket %s not ready" % self.socket)


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
