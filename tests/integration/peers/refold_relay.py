#!/usr/bin/python3
"""refold_relay.py - an SMTP relay hop that re-folds header fields the way
real relays and MUAs do, then forwards the message to a next hop

Usage: refold_relay.py --dir DIR --listen HOST:PORT --next HOST:PORT
                       [--next HOST:PORT ...] [--width N] [--hostname NAME]

What a peer records and how (DIR/ready with the port, DIR/events.jsonl,
DIR/msg-N.raw with the DATA bytes as received): peerlib.py. In addition
each accepted message is rewritten, kept as DIR/fwd-N.eml (the message
as sent on, CRLF line ends, not dot-stuffed) and sent with smtplib, same
envelope, to each --next hop in turn (several: the same bytes to each,
so a test can hand one copy to a capture peer and one to a verifying
MTA); a "forwarded" event records the file and the next hops' replies.
The relay answers its client with the first reply that is not 2xx, else
the last one (a refusal there is a refusal here: nothing is lost
silently).

The rewrite touches the header block only. Every byte from the empty line
that ends the header on is passed through unchanged, so a body hash still
holds. In the header:
  - a Received field of our own is added on top;
  - every field is unfolded and folded again at --width columns (default
    38, far from the 78 that signers use) at its whitespace; continuation
    lines start with a TAB where the original's started with a SPACE (or
    the field was not folded) and with a SPACE where it used a TAB;
  - inside the value a run of several WSP becomes one SPACE, and a single
    SPACE after "," or ";" becomes two;
  - field names, their case and the colon stay as they were, and no field
    is added (besides Received), removed or reordered.
Relaxed header canonicalization (RFC 6376 3.4.2) makes all of that
invisible to a DKIM verifier; simple (3.4.1) does not.

DIAGNOSTICS: aiosmtpd's log and forwarding errors go to stderr. The
process exits on SIGTERM/SIGKILL from the test (by PID) and when the test
process dies (PR_SET_PDEATHSIG).
"""

import argparse
import asyncio
import email.utils
import logging
import os
import re
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peerlib  # noqa: E402

from aiosmtpd.smtp import SMTP  # noqa: E402

CRLF = b"\r\n"
DEFAULT_WIDTH = 38
MIN_WIDTH = 10
FORWARD_TIMEOUT = 30.0
TEMPFAIL_REPLY = "451 4.4.1 next hop not reachable: %s"
WSP_RUN = re.compile(rb"([ \t]+)")
LIST_SEPARATORS = (b",", b";")


def unstuff(raw):
    """unstuff - DATA wire bytes (ending CRLF.CRLF) -> the message, CRLF kept."""
    if raw.endswith(b".\r\n"):
        raw = raw[:-3]
    lines = raw.split(CRLF)
    if lines and lines[-1] == b"":
        lines.pop()
    out = [line[1:] if line.startswith(b".") else line for line in lines]
    return CRLF.join(out) + CRLF if out else b""


def split_message(msg):
    """split_message - (header lines without CRLF, rest from the empty line on)."""
    i = msg.find(b"\r\n\r\n")
    if i < 0:
        head = msg[:-2] if msg.endswith(CRLF) else msg
        return (head.split(CRLF) if head else []), b""
    return msg[:i].split(CRLF), msg[i + 2:]


def header_fields(lines):
    """header_fields - header lines grouped into fields: [[first, continuation...]]."""
    fields = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    return fields


def rewrite_value(value):
    """rewrite_value - runs of WSP -> one SPACE; one SPACE after , or ; -> two.

    The result is a list alternating word, WSP run, word, ... (it starts
    with a word, maybe empty, so that a value starting with WSP keeps it).
    """
    parts = WSP_RUN.split(value)
    for i in range(1, len(parts), 2):
        run = parts[i]
        if len(run) > 1:
            parts[i] = b" "
        elif parts[i - 1].endswith(LIST_SEPARATORS):
            parts[i] = b"  "
        else:
            parts[i] = b" "
    return parts


def refold_field(lines, width):
    """refold_field - one header field unfolded, re-spaced and folded at width."""
    first = lines[0]
    colon = first.find(b":")
    if colon < 0:
        return lines                        # not a field: leave it alone
    old_fold = lines[1][:1] if len(lines) > 1 else b" "
    fold = b" " if old_fold == b"\t" else b"\t"
    name = first[:colon + 1]
    value = b"".join(lines)[colon + 1:]     # unfolded: the CRLFs go, WSP stays
    parts = rewrite_value(value)
    out = []
    cur = name + parts[0]
    has_word = bool(parts[0].strip())
    for i in range(1, len(parts), 2):
        run, word = parts[i], parts[i + 1]
        if has_word and word and len(cur) + len(run) + len(word) > width:
            out.append(cur)
            cur = fold + word               # the run becomes the folding WSP
        else:
            cur += run + word
        has_word = has_word or bool(word.strip())
    out.append(cur)
    return out


def refold_header(msg, width, received):
    """refold_header - msg with received on top and every header field re-folded."""
    lines, rest = split_message(msg)
    out = [received.rstrip(CRLF)] if received else []
    for field in header_fields(lines):
        out.extend(refold_field(field, width))
    return CRLF.join(out) + CRLF + rest


def forward(next_hop, helo, mail_from, rcpts, msg):
    """forward - send msg to next_hop with smtplib; the (code, text) of the final reply."""
    host, _, port = next_hop.rpartition(":")
    with smtplib.SMTP(host.strip("[]"), int(port), local_hostname=helo,
                      timeout=FORWARD_TIMEOUT) as s:
        s.ehlo()
        code, text = s.mail(mail_from or "")
        if code != 250:
            return code, text.decode(errors="replace")
        accepted = 0
        last = (code, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            if code in (250, 251):
                accepted += 1
            last = (code, text)
        if not accepted:
            return last[0], last[1].decode(errors="replace")
        code, text = s.data(msg)
        return code, text.decode(errors="replace")


class RelayHandler(peerlib.Handler):
    """RelayHandler - peerlib's recording handler; DATA is re-folded and forwarded."""

    async def handle_DATA(self, server, session, envelope):
        o = self.opts
        raw = server.take_data()
        n = next(self.rec.msgs)
        name = "msg-%d.raw" % n
        with open(self.rec.dir / name, "wb") as f:
            f.write(raw)
        peer = session.peer[0] if session.peer else "unknown"
        rcpt = envelope.rcpt_tos[0] if len(envelope.rcpt_tos) == 1 else None
        received = ("Received: from %s ([%s])\r\n\tby %s (refold_relay) with ESMTP id R%d%s;\r\n"
                    "\t%s\r\n" % (session.host_name or "unknown", peer, o.hostname, n,
                                  "\r\n\tfor <%s>" % rcpt if rcpt else "",
                                  email.utils.formatdate(localtime=False))).encode()
        out = refold_header(unstuff(raw), o.width, received)
        fwd = "fwd-%d.eml" % n
        with open(self.rec.dir / fwd, "wb") as f:
            f.write(out)
        loop = asyncio.get_running_loop()
        replies = []
        for hop in o.next:
            try:
                code, text = await loop.run_in_executor(
                    None, forward, hop, o.hostname, envelope.mail_from, envelope.rcpt_tos, out)
                replies.append("%d %s" % (code, " ".join(text.splitlines())))
            except (OSError, smtplib.SMTPException) as e:
                print("refold_relay: forwarding message %d to %s: %r" % (n, hop, e),
                      file=sys.stderr)
                replies.append(TEMPFAIL_REPLY % " ".join(str(e).split()))
        bad = [r for r in replies if not r.startswith("2")]
        reply = bad[0] if bad else replies[-1]
        self.rec.event("message", conn=server.conn, n=n, file=name,
                       mail_from=envelope.mail_from, mail_options=envelope.mail_options,
                       rcpts=envelope.rcpt_tos, rcpt_options=envelope.rcpt_opts,
                       reply=reply, attempt=getattr(envelope, "attempt", 0), size=len(raw))
        self.rec.event("forwarded", n=n, file=fwd, next=o.next, replies=replies)
        return reply


def parse_args(argv):
    """parse_args - the relay's command line (peerlib's behaviour options are off)."""
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--listen", required=True)
    p.add_argument("--next", required=True, action="append",
                   help="HOST:PORT of a next hop (repeat for several)")
    p.add_argument("--width", type=int, default=DEFAULT_WIDTH)
    p.add_argument("--hostname", default="refold.relay.test")
    opts = p.parse_args(argv)
    if opts.width < MIN_WIDTH:
        p.error("--width must be at least %d" % MIN_WIDTH)
    # what peerlib.Handler's other hooks look at
    for name, value in (("no_ehlo", False), ("pipelining", True), ("dsn", False),
                        ("tempfail", 0), ("tempfail_stage", "rcpt"), ("reject", ""),
                        ("lmtp", False)):
        setattr(opts, name, value)
    return opts


def main():
    """main - run the relay until killed."""
    peerlib.die_with_parent()
    opts = parse_args(sys.argv[1:])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")
    rec = peerlib.Recorder(opts.dir)
    handler = RelayHandler(opts, rec)
    proto = peerlib.make_protocol(SMTP)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return proto(handler, opts, rec, hostname=opts.hostname, loop=loop,
                     data_size_limit=peerlib.DEFAULT_SIZE, ident="posta test refold relay")
    server, port = peerlib.listen_tcp(loop, factory, opts.listen)
    peerlib.serve(loop, server, opts.dir, port)


if __name__ == "__main__":
    main()
