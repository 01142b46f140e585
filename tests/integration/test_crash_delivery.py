"""test_crash_delivery.py - kill -9 during delivery: nothing lost, nothing twice

1000 messages, each with a unique token in its Subject, go over SMTP
(several pipelined sessions) to one user's Maildir. While they are being
delivered the test kills with SIGKILL, by PID, the local processes (master
starts new ones), then qmgr (master restarts it), then every process of
the instance (master included), and starts the instance again. At the end
every message that got a 250 must be in the Maildir exactly once. The
window docs/QUEUE.md documents ("between delivery and qfile_mark_done")
still exists in the queue, but local's Maildir delivery is idempotent: a
retry computes the same file name (arrival time, queue ID, recipient
record offset) and finds the earlier attempt's file, so it must not
produce a second copy. A message whose session was cut before its 250
may be there at most once. The retries that found their earlier copy are
counted from the maillog and printed (pytest -s).

Maildir, not mbox: a local killed in the middle of a write leaves its
half-written file in tmp/, never in new/, so a count of new/ is exact;
the retry reuses that file, so tmp/ is empty at the end.

DIAGNOSTICS: the failure names missing and doubled tokens with the maillog
lines of their queue IDs. Every wait is bounded.
"""

import os
import re
import signal
import threading
import time

import pytest

import helpers

pytestmark = pytest.mark.delivery

MESSAGES = 1000
SESSIONS = 4
KILL_LOCAL_AT = 100        # delivered messages before each kill
KILL_QMGR_AT = 300
KILL_ALL_AT = 500
FINISH_TIMEOUT = 60.0      # seconds for everything to be delivered
STALL_LIMIT = 15           # seconds without one more delivery: a failure
SEND_DEADLINE = 60.0       # seconds for the senders, reconnects included
RECONNECT_PAUSE = 0.2
POLL = 0.02
TOKEN_RE = re.compile(rb"^Subject: crash (c\d+-\d+-\d+)\r?$", re.M)
QID_RE = re.compile(rb"\swith \S+ id ([0-9A-Za-z]+)")
BODY = b"line of the crash test body\r\n" * 20


class Senders:
    """Senders - SESSIONS threads sending MESSAGES messages; survive restarts."""

    def __init__(self, posta, sender, rcpt):
        self.posta = posta
        self.sender = sender
        self.rcpt = rcpt
        self.acked = set()        # tokens answered 250
        self.maybe = set()        # tokens whose session was cut before the reply
        self.errors = []
        self.lock = threading.Lock()
        self.threads = []

    def start(self):
        """start - launch the threads."""
        per = MESSAGES // SESSIONS
        for i in range(SESSIONS):
            n = per if i < SESSIONS - 1 else MESSAGES - per * (SESSIONS - 1)
            t = threading.Thread(target=self.run, args=(i, n), daemon=True)
            t.start()
            self.threads.append(t)

    def done(self):
        """done - all threads finished."""
        return not any(t.is_alive() for t in self.threads)

    def run(self, index, count):
        """run - send count messages, reconnecting after the instance restarts."""
        deadline = time.monotonic() + SEND_DEADLINE
        sent = 0
        attempt = 0
        while sent < count and time.monotonic() < deadline:
            try:
                with self.posta.raw() as c:
                    c.greet()
                    while sent < count:
                        attempt += 1
                        tok = "c%d-%d-%d" % (index, sent, attempt)
                        with self.lock:
                            self.maybe.add(tok)
                        if self.one(c, tok):
                            with self.lock:
                                self.maybe.discard(tok)
                                self.acked.add(tok)
                            sent += 1
                    c.send(b"QUIT\r\n")
            except (OSError, helpers.SMTPProtocolError):
                time.sleep(RECONNECT_PAUSE)
        if sent < count:
            with self.lock:
                self.errors.append("session %d sent only %d of %d" % (index, sent, count))

    def one(self, c, tok):
        """one - one pipelined transaction; True on 250 (raises if cut)."""
        c.send(("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (self.sender, self.rcpt))
               .encode())
        codes = [code for code, _ in c.replies(3)]
        if codes != [250, 250, 354]:
            if codes[2] == 354:
                c.send(b".\r\n")
                c.reply()
            raise helpers.SMTPProtocolError("transaction answered %r" % codes)
        c.send(b"From: <%s>\r\nTo: <%s>\r\nSubject: crash %s\r\n\r\n" % (
            self.sender.encode(), self.rcpt.encode(), tok.encode()) + BODY + b".\r\n")
        code, text = c.reply()
        if code != 250:
            raise helpers.SMTPProtocolError("end of data answered %d %r" % (code, text))
        return True


def count_new(maildir):
    """count_new - files in new/ and cur/ (cheap, for the kill schedule)."""
    return len(helpers.maildir_files(maildir))


def tokens_in(maildir):
    """tokens_in - {token: count} over the delivered files."""
    out = {}
    for path in helpers.maildir_files(maildir):
        with open(path, "rb") as f:
            data = f.read()
        m = TOKEN_RE.search(data)
        key = m.group(1).decode() if m else "<no token in %s>" % os.path.basename(path)
        out[key] = out.get(key, 0) + 1
    return out


def kill_children(posta, comm):
    """kill_children - SIGKILL the master's children named comm; their PIDs."""
    pids = [pid for pid, name in posta.children().items() if name == comm]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


class Window:
    """Window - what may be delivered twice: in active/ and in flight at a kill."""

    def __init__(self, posta):
        self.posta = posta
        self.active = set()       # queue IDs in active/ at some kill
        self.agents = 0           # local processes alive at the kills (summed)

    def note(self):
        """note - record active/ and the local processes, just before a kill."""
        self.active |= set(self.posta.queue_files("active"))
        self.agents += sum(1 for name in self.posta.children().values() if name == "local")


def token_qids(maildir):
    """token_qids - {token: queue ID} from the Received header of each file."""
    out = {}
    for path in helpers.maildir_files(maildir):
        with open(path, "rb") as f:
            data = f.read()
        m = TOKEN_RE.search(data)
        q = QID_RE.search(data)
        if m and q:
            out[m.group(1).decode()] = q.group(1).decode()
    return out


def explain(posta, maildir, tokens):
    """explain - the log lines of the messages carrying tokens (a few)."""
    log = posta.log()
    qids = set()
    for path in helpers.maildir_files(maildir):
        with open(path, "rb") as f:
            data = f.read()
        m = TOKEN_RE.search(data)
        if m and m.group(1).decode() in tokens:
            q = QID_RE.search(data)
            if q:
                qids.add(q.group(1).decode())
    lines = [line for line in log.splitlines() if any(q in line for q in qids)]
    return "\n".join(lines[-60:])


def test_kill9_during_delivery_none_lost(inst, users):
    inst.set_param("home_mailbox", "Maildir/")
    inst.killed_on_purpose = True     # agents may exit 1 when qmgr vanishes
    inst.start()
    bob = users.bob
    maildir = bob.maildir()
    senders = Senders(inst, users.alice.addr, bob.addr)
    t0 = time.monotonic()
    senders.start()

    killed = {"local": [], "qmgr": [], "all": 0}
    window = Window(inst)
    events = []               # (what, pids, delivered, seconds) for the report
    deadline = time.monotonic() + SEND_DEADLINE + FINISH_TIMEOUT
    last_n, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = count_new(maildir)
        if n != last_n:
            last_n, last_change = n, time.monotonic()
        elif time.monotonic() - last_change > STALL_LIMIT:
            raise AssertionError(
                "delivery stalled at %d messages for %ds after %r (master must start "
                "new agents at once: they were killed, not broken)\nlog:\n%s" % (
                    n, STALL_LIMIT, events, "\n".join(
                        line for line in inst.log().splitlines()
                        if "warning" in line or "fatal" in line)[-4000:]))
        if n >= KILL_LOCAL_AT and not killed["local"]:
            window.note()
            killed["local"] = kill_children(inst, "local")
            events.append(("kill local", killed["local"], n, time.monotonic() - t0))
        elif n >= KILL_QMGR_AT and killed["local"] and not killed["qmgr"]:
            window.note()
            killed["qmgr"] = kill_children(inst, "qmgr")
            events.append(("kill qmgr", killed["qmgr"], n, time.monotonic() - t0))
        elif n >= KILL_ALL_AT and killed["qmgr"] and not killed["all"]:
            window.note()
            inst.kill9_all()
            killed["all"] = time.monotonic() - t0
            events.append(("kill all", [], n, killed["all"]))
            inst.start()
        if senders.done() and n >= len(senders.acked):
            break                   # (or the schedule did not run: checked below)
        time.sleep(POLL)
    elapsed = time.monotonic() - t0
    print("crash test: %r; loop ended at %.1fs with %d delivered" % (
        events, elapsed, count_new(maildir)))
    assert senders.done(), "senders still running after %.0fs" % elapsed
    assert not senders.errors, senders.errors

    inst.wait_queue_empty(timeout=FINISH_TIMEOUT)
    found = tokens_in(maildir)
    missing = sorted(senders.acked - set(found))
    doubled = sorted(t for t, k in found.items() if k > 1)
    unknown = sorted(t for t in found if t not in senders.acked and t not in senders.maybe)
    assert not missing, "%d acknowledged messages not delivered (%s...)\nlog:\n%s" % (
        len(missing), missing[:5], inst.log()[-4000:])
    qids = token_qids(maildir)
    outside = [t for t in doubled if qids.get(t) not in window.active]
    print("crash test: %d retries found their earlier copy" % sum(
        1 for line in inst.log().splitlines() if "delivered by an earlier attempt" in line))
    print("crash test: %d duplicates (window: %d in active/ at the kills, at most %d "
          "local processes): %s" % (len(doubled), len(window.active), window.agents,
                                     [(t, qids.get(t)) for t in doubled]))
    assert not outside, "%d messages delivered twice that were not in delivery at a " \
        "kill: %s\n%s" % (len(outside), outside[:10], explain(inst, maildir, set(outside[:10])))
    assert not doubled, "%d messages delivered twice (Maildir delivery must be " \
        "idempotent; %d local processes were alive at the kills): %s\n%s" % (
            len(doubled), window.agents, doubled[:10],
            explain(inst, maildir, set(doubled[:10])))
    assert not unknown, unknown[:10]
    # every killed attempt was retried under the same name: no leftovers
    leftovers = os.listdir(os.path.join(str(maildir), "tmp"))
    assert not leftovers, "files left in tmp/ after the retries: %s" % leftovers[:10]
    assert len(senders.acked) == MESSAGES
    # the schedule really ran in the middle of the delivery
    assert killed["local"], "no local process was running at %d delivered" % KILL_LOCAL_AT
    assert killed["qmgr"], "no qmgr process at %d delivered" % KILL_QMGR_AT
    assert killed["all"], "everything was delivered before the full kill"


NAME_RE = re.compile(r"^(\d+)\.P([0-9A-Za-z]+)R(\d+)(H[0-9a-f]{16})?\.(.+)$")


def send_one(posta, sender, rcpt, subject):
    """send_one - one small message over SMTP; its rejected-recipient dict."""
    import email.message
    m = email.message.EmailMessage()
    m["From"] = sender
    m["To"] = rcpt
    m["Subject"] = subject
    m.set_content("idempotent maildir delivery\n")
    with posta.smtp() as s:
        return s.send_message(m, from_addr=sender, to_addrs=[rcpt])


def maildir_names(md):
    """maildir_names - the base names in new/ and cur/."""
    return sorted(os.path.basename(p) for p in helpers.maildir_files(md))


def test_maildir_name_is_derived_from_the_delivery(inst, users):
    inst.set_param("home_mailbox", "Maildir/")
    inst.start()
    alice, bob = users.alice, users.bob
    subject = helpers.token("mdname")
    assert send_one(inst, alice.addr, bob.addr, subject) == {}
    inst.wait_for(lambda: helpers.read_maildir(bob.maildir()) or None, "delivery")
    inst.wait_queue_empty()
    names = maildir_names(bob.maildir())
    assert len(names) == 1, names
    m = NAME_RE.match(names[0])
    assert m, "unexpected Maildir file name %r" % names[0]
    assert m.group(4) is None, "no address hash for a direct recipient: %r" % names[0]
    assert ":" not in names[0] and "/" not in names[0]
    qid = m.group(2)
    inst.wait_log(r"%s: to=<%s>, relay=local, .*status=sent \(delivered to maildir\)"
                  % (re.escape(qid), re.escape(bob.addr)))
    msgs = helpers.read_maildir(bob.maildir())     # Python's mailbox.Maildir
    assert [str(x["Subject"]) for x in msgs] == [subject]


def test_alias_retry_does_not_duplicate(inst, users):
    """An alias to two Maildirs, one unwritable: the retry skips the one done."""
    inst.set_param("home_mailbox", "Maildir/")
    alice, bob, carol = users.alice, users.bob, users.carol
    inst.add_alias("team", "%s, %s" % (bob.name, carol.name))
    md = carol.maildir()
    for sub in ("", "new", "cur", "tmp"):
        (md / sub).mkdir(exist_ok=True)
        os.chown(md / sub, carol.uid, carol.gid)
        os.chmod(md / sub, 0o700)
    os.chmod(md / "new", 0)      # local delivers as carol: new/ refuses her
    inst.start()
    subject = helpers.token("teamretry")
    try:
        assert send_one(inst, alice.addr, "team@localhost", subject) == {}
        inst.wait_log(r"to=<%s>, orig_to=<team@localhost>, .*status=deferred"
                      % re.escape(carol.addr))
        inst.wait_for(lambda: inst.queue_files("deferred"), "message in deferred/")
        assert len(helpers.maildir_files(bob.maildir())) == 1
    finally:
        os.chmod(md / "new", 0o700)
    # the retry delivers "team" again: bob's copy is found, carol's is written
    inst.wait_for(lambda: helpers.read_maildir(md) or None, "carol's copy")
    inst.wait_queue_empty()
    inst.wait_log(r"maildir \S+: \S+ delivered by an earlier attempt")
    for u in (bob, carol):
        names = maildir_names(u.maildir())
        assert len(names) == 1, "%s has %r" % (u.name, names)
        m = NAME_RE.match(names[0])
        assert m and m.group(4), "alias leaf without address hash: %r" % names[0]
        assert not os.listdir(u.maildir() / "tmp")
