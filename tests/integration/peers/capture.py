#!/usr/bin/python3
"""capture.py - an SMTP server that accepts everything, keeps each
message's raw DATA bytes and counts connections

Usage: capture.py --dir DIR (--listen HOST:PORT | --unix PATH) [peerlib options]
What it records and how: peerlib.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peerlib  # noqa: E402

if __name__ == "__main__":
    peerlib.main({"pipelining": True})
