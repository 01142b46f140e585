#!/usr/bin/python3
"""reject.py - an SMTP server that rejects recipients whose local part
starts with "reject" with 550 5.1.1 and accepts the others

Usage: reject.py --dir DIR (--listen HOST:PORT | --unix PATH) [peerlib options]
What it records and how: peerlib.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peerlib  # noqa: E402

if __name__ == "__main__":
    peerlib.main({"pipelining": True, "reject": "reject"})
