#!/usr/bin/python3
"""tempfail.py - an SMTP server that answers 451 to the first two
transactions (at RCPT; --tempfail-stage data: after the content), then 250

Usage: tempfail.py --dir DIR (--listen HOST:PORT | --unix PATH) [peerlib options]
What it records and how: peerlib.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peerlib  # noqa: E402

if __name__ == "__main__":
    peerlib.main({"pipelining": True, "tempfail": 2})
