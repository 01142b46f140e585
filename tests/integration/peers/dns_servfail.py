#!/usr/bin/python3
"""dns_servfail.py - a DNS server (UDP) that answers every query SERVFAIL

Usage: dns_servfail.py HOST PORT READYFILE
The lab's dnsmasq forwards a domain here (--server=/domain/HOST#PORT) so
that names under it fail with SERVFAIL, the answer a resolver gives when
a zone's servers are broken. READYFILE is written once the socket is
bound. Malformed queries are ignored.
"""

import ctypes
import signal
import socket
import sys

HEADER = 12
QTAIL = 4                       # QTYPE and QCLASS after the name
FLAGS_SERVFAIL = b"\x81\x82"    # QR, RD, RA; RCODE 2
MAX_QUERY = 4096
PR_SET_PDEATHSIG = 1


def question_end(data):
    """question_end - offset after the first question, or None."""
    pos = HEADER
    while pos < len(data):
        n = data[pos]
        if n == 0:
            end = pos + 1 + QTAIL
            return end if end <= len(data) else None
        if n & 0xC0:
            return None
        pos += 1 + n
    return None


def main():
    """main - answer until killed (or until the test process dies)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    host, port, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, port))
    with open(ready, "w") as f:
        f.write("%d\n" % port)
    while True:
        data, peer = s.recvfrom(MAX_QUERY)
        if len(data) < HEADER:
            continue
        end = question_end(data)
        if end is None:
            continue
        reply = data[:2] + FLAGS_SERVFAIL + b"\x00\x01" + b"\x00" * 6 + data[HEADER:end]
        s.sendto(reply, peer)


if __name__ == "__main__":
    main()
