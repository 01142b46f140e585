#!/usr/bin/python3
"""lmtp.py - an LMTP server (TCP or unix socket) with one reply per
recipient after DATA; recipients whose local part starts with "full"
get 452 4.2.2 there

Usage: lmtp.py --dir DIR (--listen HOST:PORT | --unix PATH) [peerlib options]
What it records and how: peerlib.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peerlib  # noqa: E402

if __name__ == "__main__":
    peerlib.main({"lmtp": True, "pipelining": True, "lmtp_defer": "full"})
