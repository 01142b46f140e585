"""peerlib.py - the SMTP/LMTP peers of the smtp client tests (aiosmtpd)

A peer is an aiosmtpd server that records what a client did, so a test
can check it from outside the process:
  DIR/ready         written once the server listens: the TCP port (or 0
                    for a unix socket)
  DIR/events.jsonl  one JSON object a line, flushed at once: "connect"
                    (conn number, peer), "close", "ehlo", "mail"
                    (address, options), "rcpt" (address, options, the
                    reply given), "message" (an accepted message: conn,
                    envelope, file with its raw DATA bytes, reply),
                    "refused" (a transaction answered 4xx/5xx after DATA)
  DIR/msg-N.raw     the exact bytes the client sent after DATA's 354 up to
                    and including the final ".CRLF": dot-stuffing and line
                    ends as they were on the wire (aiosmtpd itself only
                    hands over the unstuffed content)
  DIR/conn-N.raw    everything the client sent on connection N

Behaviours (command line; the scripts of this folder choose defaults):
  --pipelining, --dsn, --smtputf8   advertise these EHLO keywords (DSN
                    also makes the peer accept NOTIFY/ORCPT/RET/ENVID)
  --size N          advertise SIZE N and refuse bigger messages
  --tempfail N      answer 451 to the first N transactions (at RCPT, or
                    after the content with --tempfail-stage data)
  --reject PREFIX   answer 550 5.1.1 to recipients whose local part
                    starts with PREFIX
  --no-ehlo         answer EHLO with 502 (the client must fall back to HELO)
  --delay SECONDS   wait this long before answering the end of DATA (a slow
                    destination)
  --lmtp            speak LMTP (LHLO; one reply per recipient after DATA;
                    recipients whose local part starts with --lmtp-defer
                    get 452 4.2.2 there)
  --listen HOST:PORT (port 0: any) or --unix PATH (mode 0666)

DIAGNOSTICS: the process prints aiosmtpd's log to stderr; it exits on
SIGTERM/SIGKILL from the test (by PID), and when the test process dies
(PR_SET_PDEATHSIG), so an interrupted run leaves no server behind.
"""

import argparse
import asyncio
import itertools
import json
import logging
import os
import re
import sys
import time
from pathlib import Path

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

DATA_CMD = re.compile(rb"(?im)^DATA[ \t]*\r?\n")
END_OF_DATA = b"\r\n.\r\n"
DSN_PARAMS = ("NOTIFY", "ORCPT", "RET", "ENVID")
SOCKET_MODE = 0o666
DEFAULT_SIZE = 33554432
PR_SET_PDEATHSIG = 1


class Recorder:
    """Recorder - the events file and counters shared by all connections."""

    def __init__(self, folder):
        self.dir = Path(folder)
        self.events = open(self.dir / "events.jsonl", "a", buffering=1)
        self.conns = itertools.count(1)
        self.msgs = itertools.count(1)
        self.transactions = 0

    def event(self, ev, **fields):
        """event - append one JSON line and flush it."""
        fields["ev"] = ev
        fields["t"] = round(time.time(), 4)
        self.events.write(json.dumps(fields, sort_keys=True) + "\n")
        self.events.flush()


def make_protocol(base):
    """make_protocol - a recording subclass of SMTP or LMTP."""

    class Recording(base):
        """Recording - keeps the raw bytes of the connection; counts it."""

        def __init__(self, handler, opts, rec, **kw):
            super().__init__(handler, **kw)
            self.opts = opts
            self.rec = rec
            self.raw = bytearray()
            self.mark = 0
            self.conn = None
            self.rawfile = None

        def connection_made(self, transport):
            self.conn = next(self.rec.conns)
            self.rawfile = open(self.rec.dir / ("conn-%d.raw" % self.conn), "ab")
            self.rec.event("connect", conn=self.conn,
                           peer=str(transport.get_extra_info("peername")))
            super().connection_made(transport)

        def connection_lost(self, error):
            self.rec.event("close", conn=self.conn)
            if self.rawfile is not None:
                self.rawfile.close()
                self.rawfile = None
            super().connection_lost(error)

        def data_received(self, data):
            self.raw += data
            if self.rawfile is not None:
                self.rawfile.write(data)
                self.rawfile.flush()
            super().data_received(data)

        def _getparams(self, params):
            result = super()._getparams(params)
            if result is not None and self.opts.dsn:
                for name in DSN_PARAMS:
                    result.pop(name, None)
            return result

        def take_data(self):
            """take_data - the raw bytes of the DATA content just received."""
            m = DATA_CMD.search(self.raw, self.mark)
            if m is None:
                return b""
            start = m.end()
            if self.raw[start:start + 3] == b".\r\n":
                end = start + 3
            else:
                i = self.raw.find(END_OF_DATA, start)
                end = len(self.raw) if i < 0 else i + len(END_OF_DATA)
            self.mark = end
            return bytes(self.raw[start:end])

    return Recording


def local_part(addr):
    """local_part - the part of addr before the last @ (lower case)."""
    return addr.rpartition("@")[0].lower() if "@" in addr else addr.lower()


class Handler:
    """Handler - the aiosmtpd hooks: record, and answer as the options say."""

    def __init__(self, opts, rec):
        self.opts = opts
        self.rec = rec

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.rec.event("ehlo", conn=server.conn, name=hostname, refused=self.opts.no_ehlo)
        if self.opts.no_ehlo:
            session.extended_smtp = False
            return ["502 5.5.1 EHLO not implemented"]
        last = responses.pop()                  # "250 HELP"
        extra = []
        if self.opts.pipelining:
            extra.append("250-PIPELINING")
        if self.opts.dsn:
            extra.append("250-DSN")
        return responses + extra + [last]

    async def handle_MAIL(self, server, session, envelope, address, options):
        self.rec.transactions += 1
        envelope.attempt = self.rec.transactions
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        envelope.rcpt_opts = []
        self.rec.event("mail", conn=server.conn, address=address, options=options,
                       attempt=envelope.attempt)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, options):
        o = self.opts
        attempt = getattr(envelope, "attempt", 0)
        if o.tempfail and o.tempfail_stage == "rcpt" and attempt <= o.tempfail:
            reply = "451 4.7.1 <%s>: Greylisted, try again (attempt %d)" % (address, attempt)
        elif o.reject and local_part(address).startswith(o.reject.lower()):
            reply = "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        else:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_opts.append(options)
            reply = "250 2.1.5 Ok"
        self.rec.event("rcpt", conn=server.conn, address=address, options=options,
                       reply=reply, attempt=attempt)
        return reply

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        self.rec.event("helo", conn=server.conn, name=hostname)
        return "250 %s" % server.hostname

    async def handle_DATA(self, server, session, envelope):
        o = self.opts
        raw = server.take_data()
        if o.delay:
            await asyncio.sleep(o.delay)
        attempt = getattr(envelope, "attempt", 0)
        if o.tempfail and o.tempfail_stage == "data" and attempt <= o.tempfail:
            reply = "451 4.3.0 Try again later (attempt %d)" % attempt
            self.rec.event("refused", conn=server.conn, reply=reply, attempt=attempt,
                           rcpts=envelope.rcpt_tos)
            return reply
        n = next(self.rec.msgs)
        name = "msg-%d.raw" % n
        with open(self.rec.dir / name, "wb") as f:
            f.write(raw)
        if o.lmtp:
            replies = []
            for rcpt in envelope.rcpt_tos:
                if o.lmtp_defer and local_part(rcpt).startswith(o.lmtp_defer.lower()):
                    replies.append("452 4.2.2 <%s>: Mailbox full" % rcpt)
                else:
                    replies.append("250 2.0.0 <%s> delivered as %d" % (rcpt, n))
            reply = "\r\n".join(replies)
        else:
            reply = "250 2.0.0 Ok: queued as PEER%d" % n
        self.rec.event("message", conn=server.conn, n=n, file=name,
                       mail_from=envelope.mail_from, mail_options=envelope.mail_options,
                       rcpts=envelope.rcpt_tos, rcpt_options=envelope.rcpt_opts,
                       reply=reply, attempt=attempt, size=len(raw))
        return reply


def parse_args(argv, defaults):
    """parse_args - the command line over the script's defaults."""
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--listen")
    p.add_argument("--unix")
    p.add_argument("--hostname", default="peer.test")
    p.add_argument("--pipelining", action="store_true")
    p.add_argument("--dsn", action="store_true")
    p.add_argument("--smtputf8", action="store_true")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE)
    p.add_argument("--tempfail", type=int, default=0)
    p.add_argument("--tempfail-stage", choices=("rcpt", "data"), default="rcpt")
    p.add_argument("--reject", default="")
    p.add_argument("--no-ehlo", action="store_true")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--lmtp", action="store_true")
    p.add_argument("--lmtp-defer", default="")
    p.set_defaults(**defaults)
    opts = p.parse_args(argv)
    if (opts.listen is None) == (opts.unix is None):
        p.error("give exactly one of --listen and --unix")
    return opts


def die_with_parent():
    """die_with_parent - SIGKILL this process when its parent (pytest) exits."""
    import ctypes
    import signal
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:       # the parent died before prctl
        sys.exit(1)


def main(defaults=None, argv=None):
    """main - run a peer until killed."""
    die_with_parent()
    opts = parse_args(sys.argv[1:] if argv is None else argv, defaults or {})
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")
    rec = Recorder(opts.dir)
    handler = Handler(opts, rec)
    proto = make_protocol(LMTP if opts.lmtp else SMTP)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return proto(handler, opts, rec, hostname=opts.hostname, loop=loop,
                     data_size_limit=opts.size, enable_SMTPUTF8=opts.smtputf8,
                     ident="posta test peer")
    if opts.unix:
        try:
            os.unlink(opts.unix)
        except FileNotFoundError:
            pass
        server = loop.run_until_complete(loop.create_unix_server(factory, opts.unix))
        os.chmod(opts.unix, SOCKET_MODE)
        port = 0
    else:
        server, port = listen_tcp(loop, factory, opts.listen)
    serve(loop, server, opts.dir, port)


def listen_tcp(loop, factory, listen):
    """listen_tcp - a server on "HOST:PORT" (PORT 0: any): (server, port)."""
    host, _, port = listen.rpartition(":")
    server = loop.run_until_complete(loop.create_server(
        factory, host.strip("[]"), int(port), reuse_address=True))
    return server, server.sockets[0].getsockname()[1]


def serve(loop, server, folder, port):
    """serve - write FOLDER/ready (the port, atomically), then run until killed."""
    ready = Path(folder) / "ready"
    tmp = ready.with_suffix(".tmp")
    tmp.write_text("%d\n" % port)
    os.replace(tmp, ready)
    try:
        loop.run_forever()
    finally:
        server.close()
