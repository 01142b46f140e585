#!/usr/bin/python3
"""tls_client.py - a bounded SMTP submission load client: STARTTLS + AUTH PLAIN

    tls_client.py --port PORT --sessions N --messages M --user U --password P
                  [--size BYTES] [--from ADDR] [--to ADDR] [--timeout S]
                  [--run-timeout S]

smtp-source cannot do TLS or AUTH, so the bench's "tls" mode uses this.
N sessions run in parallel (one thread each; OpenSSL releases the GIL
while it encrypts), each: connect to 127.0.0.1:PORT, EHLO, STARTTLS,
EHLO, AUTH PLAIN, then its share of the M messages (MAIL, RCPT, DATA; no
pipelining, one command and one reply at a time, like smtp-source
without -p), then QUIT. M is split as evenly as possible over the
sessions. The wall time from the first connect until the last QUIT gives
messages/s. The certificate is not verified (the bench's is self-signed);
every session does a full handshake (no session resumption).

Output: one line on standard output,
    messages=M sessions=N seconds=T rate=R client_cpu=C
(R in messages/s, rounded; C the CPU seconds, user and system, the client
itself used: on a small machine it competes with the server), so that
run.sh can take the rate.

DIAGNOSTICS: any unexpected reply, a TLS or socket error, or a session
that did not send all its messages is reported on standard error
(session number, command, reply) and the exit status is 1; usage errors
exit 2. Every socket operation has a timeout (--timeout, 60 s), and the
whole run one as well (--run-timeout, 1800 s): a session still running
then counts as failed.
SECURITY: connects only to 127.0.0.1; the password is given on the
command line of a benchmark (a throwaway test account), never logged.
"""

import argparse
import base64
import resource
import socket
import ssl
import sys
import threading
import time

HOST = "127.0.0.1"
LINE_MAX = 4096            # longest reply line accepted
REPLY_LINES_MAX = 100      # most lines of one multi-line reply
RECV_CHUNK = 16384
BODY_LINE = 76             # characters per body line, CR LF excluded
DEFAULT_SIZE = 4096
DEFAULT_TIMEOUT = 60.0      # seconds for one socket operation
DEFAULT_RUN_TIMEOUT = 1800.0  # seconds for the whole run


class SmtpError(Exception):
    """SmtpError - an unexpected reply or a broken connection."""


class Conn:
    """Conn - one SMTP connection: send commands, read (multi-line) replies."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def starttls(self, ctx):
        """starttls - wrap the socket in TLS (after the 220 to STARTTLS)."""
        if self.buf:
            raise SmtpError("server sent data after its STARTTLS reply")
        self.sock = ctx.wrap_socket(self.sock, server_hostname=None)

    def line(self):
        """line - one reply line without CR LF."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                text = self.buf[:i].rstrip(b"\r")
                self.buf = self.buf[i + 1:]
                return text
            if len(self.buf) > LINE_MAX:
                raise SmtpError("reply line too long")
            data = self.sock.recv(RECV_CHUNK)
            if not data:
                raise SmtpError("connection closed by the server")
            self.buf += data

    def reply(self, want, what):
        """reply - read one reply; raise unless its code starts with want."""
        lines = []
        while True:
            text = self.line()
            lines.append(text)
            if len(text) < 3 or not text[:3].isdigit():
                raise SmtpError("%s: malformed reply %r" % (what, text))
            if len(text) == 3 or text[3:4] != b"-":
                break
            if len(lines) > REPLY_LINES_MAX:
                raise SmtpError("%s: reply too long" % what)
        if not lines[-1].startswith(want):
            raise SmtpError("%s: %s" % (what, lines[-1].decode("utf-8", "replace")))
        return lines

    def cmd(self, text, want, what=None):
        """cmd - send one command line, read its reply."""
        self.sock.sendall(text.encode() + b"\r\n")
        return self.reply(want, what or text.split(" ", 1)[0])

    def close(self):
        """close - close the connection, ignoring errors."""
        try:
            self.sock.close()
        except OSError:
            pass


def make_message(size, sender, rcpt):
    """make_message - a message of about size bytes, dot-stuffed, ending CRLF.CRLF."""
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: posta tls bench\r\n"
            "Message-ID: <%%s@bench.localhost>\r\n\r\n" % (sender, rcpt))
    body = []
    left = max(size - len(head), 0)
    while left > 0:
        n = min(BODY_LINE, max(left - 2, 1))
        body.append("x" * n + "\r\n")
        left -= n + 2
    return head, "".join(body).encode()


def session(num, args, ctx, count, ok, errors):
    """session - one SMTP session sending count messages; ok[num] = sent."""
    head, body = make_message(args.size, args.sender, args.rcpt)
    auth = base64.b64encode(b"\0" + args.user.encode() + b"\0"
                            + args.password.encode()).decode()
    conn = None
    what = "connect"
    try:
        conn = Conn(args.port, args.timeout)
        conn.reply(b"220", "banner")
        what = "EHLO"
        conn.cmd("EHLO bench.localhost", b"250")
        what = "STARTTLS"
        conn.cmd("STARTTLS", b"220")
        what = "TLS handshake"
        conn.starttls(ctx)
        what = "EHLO after STARTTLS"
        conn.cmd("EHLO bench.localhost", b"250", what)
        what = "AUTH PLAIN"
        conn.cmd("AUTH PLAIN " + auth, b"235", what)
        for i in range(count):
            what = "message %d" % (i + 1)
            conn.cmd("MAIL FROM:<%s>" % args.sender, b"250")
            conn.cmd("RCPT TO:<%s>" % args.rcpt, b"250")
            conn.cmd("DATA", b"354")
            msg = (head % ("%d.%d.%d" % (time.time_ns(), num, i))).encode() + body
            conn.sock.sendall(msg + b".\r\n")
            conn.reply(b"250", "end of DATA")
            ok[num] += 1
        what = "QUIT"
        conn.cmd("QUIT", b"221")
    except (SmtpError, OSError, ssl.SSLError) as e:
        errors.append("session %d, %s: %s" % (num, what, e))
    finally:
        if conn is not None:
            conn.close()


def main():
    """main - parse arguments, run the sessions, print the rate."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sessions", type=int, required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--size", type=int, default=DEFAULT_SIZE)
    p.add_argument("--from", dest="sender", default="alice@localhost")
    p.add_argument("--to", dest="rcpt", default="user@example.net")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("--run-timeout", type=float, default=DEFAULT_RUN_TIMEOUT)
    args = p.parse_args()
    if args.sessions < 1 or args.messages < 1 or not 0 < args.port < 65536:
        p.error("sessions, messages and port must be positive")
    sessions = min(args.sessions, args.messages)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    share, extra = divmod(args.messages, sessions)
    counts = [share + (1 if i < extra else 0) for i in range(sessions)]
    ok = [0] * sessions
    errors = []
    threads = [threading.Thread(target=session, args=(i, args, ctx, counts[i], ok, errors),
                                daemon=True) for i in range(sessions)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    # every socket operation is bounded by args.timeout, and the whole
    # run by args.run_timeout: a session still running then has failed
    for t in threads:
        t.join(max(args.run_timeout - (time.monotonic() - t0), 0))
    elapsed = time.monotonic() - t0
    stuck = sum(1 for t in threads if t.is_alive())
    sent = sum(ok)
    for e in errors[:10]:
        print("tls_client: " + e, file=sys.stderr)
    if len(errors) > 10:
        print("tls_client: ... %d more errors" % (len(errors) - 10), file=sys.stderr)
    if stuck:
        print("tls_client: %d sessions did not finish" % stuck, file=sys.stderr)
    if errors or stuck or sent != args.messages:
        print("tls_client: sent %d of %d messages" % (sent, args.messages), file=sys.stderr)
        return 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print("messages=%d sessions=%d seconds=%.3f rate=%.0f client_cpu=%.2f"
          % (sent, sessions, elapsed, sent / elapsed, usage.ru_utime + usage.ru_stime))
    return 0


if __name__ == "__main__":
    sys.exit(main())
