"""helpers.py - shared code for posta's integration tests

What the tests need besides a running instance (conftest.py):
  RawSMTP       an SMTP client on a plain socket, for what smtplib cannot
                do (pipelining in one write, BDAT, bad bytes, smuggling)
  parse_qfile   a reader of the queue file format of src/mail/qfile.h,
                independent of posta's own reader, so a test can check
                what is on disk
  proc_*        the process table from /proc (PIDs, parents, start times)
                so cleanup kills exactly the processes a test started

DIAGNOSTICS: every network read has a deadline; a server that does not
answer makes the test fail with the bytes received so far, never hang.
"""

import os
import re
import signal
import socket
import subprocess
import time

REPLY_TIMEOUT = 15.0          # seconds to wait for one SMTP reply
RECV_BLOCK = 65536

# Record types of the queue file (src/mail/qfile.h)
QREC_VERSION = ord("V")
QREC_SIZE = ord("S")
QREC_TIME = ord("T")
QREC_ATTR = ord("A")
QREC_SENDER = ord("F")
QREC_ORCPT = ord("O")
QREC_NOTIFY = ord("N")
QREC_RCPT = ord("R")
QREC_DONE = ord("D")
QREC_MESSAGE = ord("M")
QREC_CONTENT = ord("C")
QREC_END = ord("E")
QFILE_VERSION = b"posta-queue 1"
QFILE_MODE_DONE = 0o700
LEB128_MAX_BYTES = 5

QNOTIFY_NEVER = 1
QNOTIFY_SUCCESS = 2
QNOTIFY_FAILURE = 4
QNOTIFY_DELAY = 8

QUEUED_RE = re.compile(rb"queued as ([0-9A-Za-z]+)")


class SMTPProtocolError(AssertionError):
    """The server did not answer as SMTP says (or not in time)."""


class RawSMTP:
    """RawSMTP - a byte-exact SMTP client on one TCP connection."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=REPLY_TIMEOUT):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""

    def close(self):
        """close - drop the connection (no QUIT)."""
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        """send - write all bytes in one sendall call."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, deadline):
        """_fill - read more bytes before the deadline; False on EOF."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise SMTPProtocolError("timeout waiting for reply; got %r" % self.buf[-500:])
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(RECV_BLOCK)
        except socket.timeout:
            raise SMTPProtocolError("timeout waiting for reply; got %r" % self.buf[-500:])
        except ConnectionResetError:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def reply(self):
        """reply - one (possibly multi-line) reply: (code, [text lines])."""
        deadline = time.monotonic() + self.timeout
        lines = []
        while True:
            while b"\n" not in self.buf:
                if not self._fill(deadline):
                    raise SMTPProtocolError(
                        "connection closed in the middle of a reply; got %r" % (self.buf,))
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            if len(line) < 3 or not line[:3].isdigit():
                raise SMTPProtocolError("malformed reply line %r" % (line,))
            lines.append(line[4:].decode("utf-8", "replace"))
            if len(line) == 3 or line[3:4] == b" ":
                return int(line[:3]), lines
            if line[3:4] != b"-":
                raise SMTPProtocolError("malformed reply line %r" % (line,))

    def replies(self, count):
        """replies - the next count replies, in order."""
        return [self.reply() for _ in range(count)]

    def cmd(self, line):
        """cmd - send one command line (CRLF added) and read its reply."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")
        return self.reply()

    def greet(self, helo="client.example"):
        """greet - read the banner, say EHLO; returns the EHLO keywords."""
        code, text = self.reply()
        if code != 220:
            raise SMTPProtocolError("banner %d %r" % (code, text))
        code, text = self.cmd("EHLO " + helo)
        if code != 250:
            raise SMTPProtocolError("EHLO answered %d %r" % (code, text))
        return text[1:]

    def closed_by_peer(self, wait=REPLY_TIMEOUT):
        """closed_by_peer - True when the server closes the connection in time."""
        deadline = time.monotonic() + wait
        while True:
            try:
                if not self._fill(deadline):
                    return True
            except SMTPProtocolError:
                return False


def queued_id(text):
    """queued_id - the queue ID from a "250 2.0.0 Ok: queued as ID" reply."""
    if isinstance(text, (list, tuple)):
        text = " ".join(text)
    if isinstance(text, str):
        text = text.encode("utf-8")
    m = QUEUED_RE.search(text)
    if not m:
        raise AssertionError("no 'queued as' in reply %r" % (text,))
    return m.group(1).decode()


def _leb128(data, pos):
    """_leb128 - decode an unsigned LEB128 varint: (value, new position)."""
    value = 0
    shift = 0
    for i in range(LEB128_MAX_BYTES):
        if pos >= len(data):
            raise ValueError("truncated length at offset %d" % pos)
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
    raise ValueError("length varint longer than %d bytes" % LEB128_MAX_BYTES)


def parse_qfile(path):
    """parse_qfile - read a queue file into a dict; ValueError if malformed.

    Keys: records [(type, payload)], version, time, attrs {name: value},
    sender, rcpts [{addr, orcpt, notify, done}], content (bytes), complete.
    """
    with open(path, "rb") as f:
        data = f.read()
    records = []
    pos = 0
    while pos < len(data):
        rtype = data[pos]
        length, pos = _leb128(data, pos + 1)
        if pos + length > len(data):
            raise ValueError("record %c at %d runs past the end" % (rtype, pos))
        records.append((rtype, data[pos:pos + length]))
        pos += length
    if not records or records[0] != (QREC_VERSION, QFILE_VERSION):
        raise ValueError("first record is not the version: %r" % (records[:1],))
    out = {"records": records, "attrs": {}, "rcpts": [], "sender": None,
           "content": b"", "complete": False, "time": None}
    pending = {}
    in_content = False
    for rtype, payload in records[1:]:
        if rtype == QREC_END:
            out["complete"] = True
        elif in_content:
            if rtype != QREC_CONTENT:
                raise ValueError("record %c inside content" % rtype)
            out["content"] += payload
        elif rtype == QREC_TIME:
            out["time"] = payload.decode()
        elif rtype == QREC_ATTR:
            name, _, value = payload.decode("utf-8", "replace").partition("=")
            out["attrs"][name] = value
        elif rtype == QREC_SENDER:
            out["sender"] = payload.decode("utf-8", "replace")
        elif rtype == QREC_ORCPT:
            pending["orcpt"] = payload.decode("utf-8", "replace")
        elif rtype == QREC_NOTIFY:
            pending["notify"] = int(payload.decode())
        elif rtype in (QREC_RCPT, QREC_DONE):
            out["rcpts"].append({"addr": payload.decode("utf-8", "replace"),
                                 "orcpt": pending.get("orcpt"),
                                 "notify": pending.get("notify", 0),
                                 "done": rtype == QREC_DONE})
            pending = {}
        elif rtype == QREC_MESSAGE:
            in_content = True
        elif rtype == QREC_SIZE:
            out["size"] = payload.decode()
        else:
            raise ValueError("unknown record type %r" % chr(rtype))
    return out


def strip_received(content):
    """strip_received - content without the leading Received: header posta adds."""
    lines = content.split(b"\n")
    if not lines or not lines[0].lower().startswith(b"received:"):
        return content
    i = 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\n".join(lines[i:])


def smtp_to_stored(data):
    """smtp_to_stored - what the queue holds for DATA bytes (CRLF -> LF, dots unstuffed)."""
    lines = data.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
        tail = b"\n"
    else:
        tail = b""
    out = [line[1:] if line.startswith(b".") else line for line in lines]
    return b"\n".join(out) + tail


def proc_stat(pid):
    """proc_stat - (ppid, starttime, comm) of a process, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); ppid is field 4, starttime field 22.
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19]), comm


def proc_children_map():
    """proc_children_map - {ppid: [pid, ...]} over all live processes."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st is not None:
            children.setdefault(st[0], []).append(int(name))
    return children


def proc_tree(root_pid):
    """proc_tree - root_pid and all its live descendants: {pid: starttime}."""
    found = {}
    st = proc_stat(root_pid)
    if st is None:
        return found
    found[root_pid] = st[1]
    children = proc_children_map()
    todo = [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            cst = proc_stat(child)
            if cst is not None and child not in found:
                found[child] = cst[1]
                todo.append(child)
    return found


def proc_alive(pid, starttime):
    """proc_alive - the same process (PID and start time) still exists."""
    st = proc_stat(pid)
    return st is not None and st[1] == starttime


def stop_tree(proc, known, timeout):
    """stop_tree - SIGTERM the process proc, then SIGKILL what is left of its
    tree; known ({pid: starttime}) holds descendants seen earlier and is
    updated, so a child that left its parent is still found by PID."""
    known.update(proc_tree(proc.pid))
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    for pid, start in known.items():
        if proc_alive(pid, start):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout)
    if proc.stdout is not None:
        proc.stdout.close()
    wait_until(lambda: not any(proc_alive(p, t) for p, t in known.items()), timeout)


def dkim_keygen(posta, folder, domain, selector, ktype="rsa"):
    """dkim_keygen - `posta dkim keygen` with the posta binary given: (key path, qname, record)."""
    folder.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([str(posta), "dkim", "keygen", domain, selector, "--type", ktype,
                        "--dir", str(folder)], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    m = re.search(r"^(\S+)\. IN TXT \((.*?)\)", p.stdout.decode(), re.M | re.S)
    assert m, p.stdout
    record = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return folder / ("%s.%s.key" % (domain, selector)), m.group(1), record


def free_dns_port():
    """free_dns_port - a port of 127.0.0.1 free for UDP and TCP right now (a DNS server binds both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_until(predicate, timeout, interval=0.05):
    """wait_until - poll predicate until true or timeout; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# ---- mailboxes (issue 3: local delivery) ---------------------------------

def read_mbox(path):
    """read_mbox - the messages of an mbox file (empty list if none)."""
    import mailbox
    if not os.path.exists(path):
        return []
    box = mailbox.mbox(str(path), create=False)
    try:
        return [box[k] for k in box.keys()]
    finally:
        box.close()


def read_maildir(path):
    """read_maildir - the messages in a Maildir's new/ and cur/ (list)."""
    import mailbox
    if not os.path.isdir(os.path.join(str(path), "new")):
        return []
    box = mailbox.Maildir(str(path), factory=None, create=False)
    return [box[k] for k in box.keys()]


def maildir_files(path):
    """maildir_files - paths of the files in new/ and cur/ of a Maildir."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(str(path), sub)
        try:
            out += [os.path.join(d, n) for n in os.listdir(d)]
        except FileNotFoundError:
            pass
    return out


def subjects(messages):
    """subjects - the Subject headers of messages, in order."""
    return [str(m.get("Subject", "")) for m in messages]


def token(prefix="t"):
    """token - a unique word to find one test message by."""
    import secrets
    return "%s-%s" % (prefix, secrets.token_hex(6))
