#!/usr/bin/python3
"""policy.py - a scripted Postfix policy server (SMTPD access policy
delegation) for the check_policy_service tests

Usage: policy.py --dir DIR (--listen HOST:PORT | --unix PATH) [--delay S]

It answers each request by the local part of its recipient (the sender's
when there is no recipient; "dunno" when neither matches):
  ok*        action=OK
  reject*    action=REJECT Policy says no
  dip*       action=DEFER_IF_PERMIT Policy says later
  tempfail*  action=450 4.7.1 Greylisted, try again later
  dunno*     action=DUNNO
  warn*      action=WARN policy warning
  hold*      action=HOLD policy hold
  prepend*   action=PREPEND X-Policy: checked
  garbage*   a line without "=" (a protocol error)
  noaction*  a reply without an action (a protocol error)
  slow*      no answer for --delay seconds (default 30), then DUNNO
  close*     closes the connection without answering the first time this
             (instance, recipient) is asked; OK on the retry
  other      action=DUNNO

What it records, in DIR:
  ready           the TCP port (0 for a unix socket), written once listening
  requests.jsonl  one JSON object a request: the attributes (all as
                  received), "conn" (the connection number), "t"
  conns           the number of connections accepted so far

DIAGNOSTICS: errors go to stderr. It exits on SIGTERM/SIGKILL from the
test (by PID) and when the test process dies (peerlib.die_with_parent).
"""

import argparse
import itertools
import json
import os
import socketserver
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peerlib  # noqa: E402

SOCKET_MODE = 0o666
READ_MAX = 65536
ANSWERS = [
    ("ok", "action=OK\n\n"),
    ("reject", "action=REJECT Policy says no\n\n"),
    ("dip", "action=DEFER_IF_PERMIT Policy says later\n\n"),
    ("tempfail", "action=450 4.7.1 Greylisted, try again later\n\n"),
    ("dunno", "action=DUNNO\n\n"),
    ("warn", "action=WARN policy warning\n\n"),
    ("hold", "action=HOLD policy hold\n\n"),
    ("prepend", "action=PREPEND X-Policy: checked\n\n"),
    ("garbage", "this is not an attribute\n\n"),
    ("noaction", "reason=none\n\n"),
]


class State:
    """State - what all connections share: the log, counters, retries seen."""

    def __init__(self, folder, delay):
        self.dir = Path(folder)
        self.delay = delay
        self.lock = threading.Lock()
        self.conns = itertools.count(1)
        self.nconns = 0
        self.closed_once = set()
        self.log = open(self.dir / "requests.jsonl", "a", buffering=1)

    def new_conn(self):
        """new_conn - count a connection; its number."""
        with self.lock:
            n = next(self.conns)
            self.nconns = n
            tmp = self.dir / "conns.tmp"
            tmp.write_text("%d\n" % n)
            os.replace(tmp, self.dir / "conns")
            return n

    def record(self, conn, attrs):
        """record - one request, as one JSON line."""
        with self.lock:
            self.log.write(json.dumps(dict(attrs, conn=conn, t=round(time.time(), 4)),
                                      sort_keys=True) + "\n")

    def first_close(self, key):
        """first_close - true the first time key is seen."""
        with self.lock:
            if key in self.closed_once:
                return False
            self.closed_once.add(key)
            return True


def local_part(addr):
    """local_part - the part before the last @, lower case."""
    return addr.rpartition("@")[0].lower() if "@" in addr else addr.lower()


class Handler(socketserver.StreamRequestHandler):
    """Handler - one connection: requests until the client closes it."""

    def handle(self):
        st = self.server.state
        conn = st.new_conn()
        while True:
            attrs = {}
            while True:
                line = self.rfile.readline(READ_MAX)
                if not line:
                    return
                line = line.decode("utf-8", "replace").rstrip("\n")
                if line == "":
                    break
                name, _, value = line.partition("=")
                attrs[name] = value
            st.record(conn, attrs)
            who = local_part(attrs.get("recipient") or attrs.get("sender") or "")
            if who.startswith("close") and st.first_close((attrs.get("instance"), who)):
                return
            if who.startswith("slow"):
                time.sleep(st.delay)
                answer = "action=DUNNO\n\n"
            elif who.startswith("close"):
                answer = "action=OK\n\n"
            else:
                answer = next((a for p, a in ANSWERS if who.startswith(p)), "action=DUNNO\n\n")
            try:
                self.wfile.write(answer.encode())
                self.wfile.flush()
            except OSError:
                return


class TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def main():
    """main - serve until killed."""
    peerlib.die_with_parent()
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--listen")
    ap.add_argument("--unix")
    ap.add_argument("--delay", type=float, default=30.0)
    opts = ap.parse_args()
    state = State(opts.dir, opts.delay)
    if opts.unix:
        try:
            os.unlink(opts.unix)
        except FileNotFoundError:
            pass
        server = UnixServer(opts.unix, Handler)
        os.chmod(opts.unix, SOCKET_MODE)
        port = 0
    else:
        host, _, port = opts.listen.rpartition(":")
        server = TCPServer((host.strip("[]"), int(port)), Handler)
        port = server.server_address[1]
    server.state = state
    ready = Path(opts.dir) / "ready"
    tmp = ready.with_suffix(".tmp")
    tmp.write_text("%d\n" % port)
    os.replace(tmp, ready)
    server.serve_forever()


if __name__ == "__main__":
    main()
