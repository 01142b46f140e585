"""tlslab.py - what the smtp client's TLS and AUTH tests need (test_smtp_tls.py)

  Pki          a test CA and server certificates made with the openssl
               command line in the test's folder (subjectAltName names
               chosen by the test, so "verify" can pass or fail on them)
  FakeSMTP     a scriptable SMTP server on 127.0.0.1 (threads, Python's
               ssl module): offers STARTTLS or not, answers STARTTLS with
               extra bytes in the same write (response injection), breaks
               the handshake on purpose, speaks TLS from the first byte
               (port 465 style), requires AUTH PLAIN/LOGIN after TLS. It
               records every command line with the connection number and
               whether TLS was up, and every message.

Every socket has a timeout and every thread is a daemon that ends when
close() shuts the listener; nothing is killed.

DIAGNOSTICS: FakeSMTP.transcript() is quoted by the tests on failure.
SECURITY: listens on 127.0.0.1 only.
"""

import base64
import os
import socket
import ssl
import subprocess
import threading
from pathlib import Path

OPENSSL = "openssl"
CMD_TIMEOUT = 30
SOCK_TIMEOUT = 20.0
DAYS = "30"
LINE_MAX = 8192
BACKLOG = 16


def _openssl(args, cwd):
    """_openssl - one openssl command; its output on failure."""
    r = subprocess.run([OPENSSL] + [str(a) for a in args], cwd=str(cwd),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=CMD_TIMEOUT, text=True)
    assert r.returncode == 0, "openssl %s failed:\n%s" % (" ".join(map(str, args)), r.stdout)


class Pki:
    """Pki - a CA (ca.pem) in folder, and server certificates it signs."""

    def __init__(self, folder, name="posta test CA"):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.ca_key = self.dir / "ca.key"
        self.ca = self.dir / "ca.pem"
        _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", DAYS,
                  "-subj", "/CN=%s" % name,
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)

    def server(self, label, names):
        """server - (cert, key) paths of a certificate for names (first = CN)."""
        key = self.dir / ("%s.key" % label)
        csr = self.dir / ("%s.csr" % label)
        crt = self.dir / ("%s.pem" % label)
        ext = self.dir / ("%s.ext" % label)
        ext.write_text("subjectAltName=%s\nextendedKeyUsage=serverAuth\n"
                       "basicConstraints=CA:FALSE\n"
                       % ",".join("DNS:%s" % n for n in names))
        _openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", "/CN=%s" % names[0]], self.dir)
        _openssl(["x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                  "-CAcreateserial", "-out", crt, "-days", DAYS, "-extfile", ext], self.dir)
        for p in (key, crt):
            os.chmod(p, 0o644)
        return crt, key


def server_ctx(cert, key):
    """server_ctx - an ssl server context with cert and key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class FakeSMTP:
    """FakeSMTP - a scripted SMTP server on 127.0.0.1 (see the module text)."""

    def __init__(self, ctx=None, starttls=True, inject=b"", break_tls=False,
                 implicit=False, users=None, mechs="PLAIN LOGIN", name="fake.test"):
        self.ctx = ctx
        self.starttls = starttls and ctx is not None
        self.inject = inject
        self.break_tls = break_tls
        self.implicit = implicit
        self.users = users
        self.mechs = mechs
        self.name = name
        self.lock = threading.Lock()
        self.events = []        # (connection number, tls up, command line)
        self.messages = []      # raw DATA of each message
        self.errors = []
        self.nconn = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(BACKLOG)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        """close - stop listening (connections in progress end on their own)."""
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def transcript(self):
        """transcript - the recorded commands, one per line."""
        with self.lock:
            return "\n".join("#%d %s %s" % (c, "TLS" if t else "   ", l)
                             for c, t, l in self.events) + \
                ("\nerrors: %s" % self.errors if self.errors else "")

    def commands(self, conn=None):
        """commands - (tls, line) of every command, of one connection when given."""
        with self.lock:
            return [(t, l) for c, t, l in self.events if conn is None or c == conn]

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.nconn += 1
                n = self.nconn
            threading.Thread(target=self._serve, args=(conn, n), daemon=True).start()

    def _serve(self, conn, n):
        conn.settimeout(SOCK_TIMEOUT)
        try:
            _Session(self, conn, n).run()
        except (OSError, ssl.SSLError, ValueError) as e:
            with self.lock:
                self.errors.append("#%d: %s" % (n, e))
        finally:
            try:
                conn.close()
            except OSError:
                pass


class _Session:
    """_Session - one connection of a FakeSMTP."""

    def __init__(self, srv, conn, n):
        self.srv = srv
        self.conn = conn
        self.n = n
        self.tls = False
        self.authed = False
        self.buf = b""

    def send(self, data):
        self.conn.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.conn.recv(4096)
            if not chunk:
                return None
            self.buf += chunk
            if len(self.buf) > LINE_MAX:
                raise ValueError("line too long")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("latin-1")

    def record(self, text):
        with self.srv.lock:
            self.srv.events.append((self.n, self.tls, text))

    def wrap(self):
        self.conn = self.srv.ctx.wrap_socket(self.conn, server_side=True)
        self.tls = True
        self.buf = b""

    def check(self, user, password):
        return self.srv.users is not None and self.srv.users.get(user) == password

    def auth(self, args):
        parts = args.split()
        mech = parts[0].upper() if parts else ""
        if mech == "PLAIN":
            if len(parts) > 1:
                resp = parts[1]
            else:
                self.send(b"334 \r\n")
                resp = self.line() or ""
            try:
                _, user, password = base64.b64decode(resp).decode().split("\0")
            except ValueError:
                self.send(b"501 5.5.2 bad PLAIN response\r\n")
                return
        elif mech == "LOGIN":
            self.send(b"334 VXNlcm5hbWU6\r\n")
            user = base64.b64decode(self.line() or "").decode()
            self.send(b"334 UGFzc3dvcmQ6\r\n")
            password = base64.b64decode(self.line() or "").decode()
        else:
            self.send(b"504 5.5.4 unknown mechanism\r\n")
            return
        if self.check(user, password):
            self.authed = True
            self.record("(authenticated %s as %s)" % (mech, user))
            self.send(b"235 2.7.0 Authentication successful\r\n")
        else:
            self.record("(failed %s for %s)" % (mech, user))
            self.send(b"535 5.7.8 Error: authentication failed: bad credentials\r\n")

    def run(self):
        srv = self.srv
        if srv.implicit:
            self.wrap()
        self.send(("220 %s ESMTP fake\r\n" % srv.name).encode())
        while True:
            line = self.line()
            if line is None:
                return
            verb, _, args = line.partition(" ")
            verb = verb.upper()
            self.record("AUTH %s ..." % args.split()[0] if verb == "AUTH" and args
                        else line)
            if verb in ("EHLO", "LHLO"):
                ext = ["250-%s" % srv.name]
                if srv.starttls and not self.tls:
                    ext.append("250-STARTTLS")
                if srv.users is not None and (self.tls or srv.ctx is None):
                    ext.append("250-AUTH %s" % srv.mechs)
                ext.append("250 8BITMIME")
                self.send(("\r\n".join(ext) + "\r\n").encode())
            elif verb == "HELO":
                self.send(b"250 fake\r\n")
            elif verb == "STARTTLS" and srv.starttls and not self.tls:
                if srv.break_tls:
                    self.send(b"220 2.0.0 Ready to start TLS\r\n")
                    self.send(b"this is not a TLS record, the handshake fails\r\n" * 4)
                    return
                # the reply and an injected one in one write
                self.send(b"220 2.0.0 Ready to start TLS\r\n" + srv.inject)
                self.wrap()
            elif verb == "AUTH":
                self.auth(args)
            elif verb == "MAIL":
                if srv.users is not None and not self.authed:
                    self.send(b"530 5.7.0 Authentication required\r\n")
                else:
                    self.send(b"250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                self.send(b"250 2.1.5 Ok\r\n")
            elif verb == "DATA":
                self.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                data = []
                while True:
                    l = self.line()
                    if l is None:
                        return
                    if l == ".":
                        break
                    data.append(l)
                with srv.lock:
                    srv.messages.append("\r\n".join(data))
                self.send(b"250 2.0.0 Ok: queued as FAKE%d\r\n" % len(srv.messages))
            elif verb in ("RSET", "NOOP"):
                self.send(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                self.send(b"221 2.0.0 Bye\r\n")
                return
            else:
                self.send(b"502 5.5.2 Error: command not recognized\r\n")
