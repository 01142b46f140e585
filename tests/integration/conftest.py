"""conftest.py - a real posta instance per test, always cleaned up

Each test that asks for `inst` (configured, not started) or `posta`
(started) gets its own instance made by scripts/mkinstance.sh in the
test's tmp_path, listening on a free port of 127.0.0.1, logging to
DIR/maillog. The binaries come from $POSTA_BUILD (build/ by default;
build-san/ for the sanitizer run).

Cleanup (fixture finalizer, whatever the test did): `posta stop`, then
kill -9 every process of the instance still alive. Processes are known by
PID *and* start time (from /proc), collected from the master PID file and
the master's descendants every time the test looks at them, so a reused
PID is never killed. No pkill, no killall.

DIAGNOSTICS: after cleanup the test fails (as a teardown error) when a
daemon crashed, panicked or was stopped by a sanitizer: ASan/UBSan reports
are written to DIR/sanitizer/ (ASAN_OPTIONS/UBSAN_OPTIONS log_path, leak
checking off: the unit tests cover leaks) and quoted in the failure, and
the maillog is searched for panics and unexpected child deaths.

Delivery: by default an instance has no qmgr, local or pickup (their
master.cf lines are removed), so the receive-side tests see smtpd's queue
files stay in incoming/. A test marked `@pytest.mark.delivery` gets them
(the agreed master.cf lines are added when mkinstance.sh did not write
them), with short retry settings, and is skipped while those programs are
not built. `mail_users` (session) creates real users with homes in a
temporary folder and removes them (userdel -r) at the end, whatever
happened; `users` gives them to one test with their homes emptied.

SECURITY: run as root (CI) the daemons drop to "nobody": the folders above
tmp_path are made traversable (0711, not listable) for that.
"""

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import helpers

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("POSTA_BUILD", str(REPO / "build"))).resolve()
POSTA = BUILD / "bin" / "posta"
MKINSTANCE = REPO / "scripts" / "mkinstance.sh"

START_TIMEOUT = 30.0      # seconds for `posta start` + first banner
STOP_TIMEOUT = 30.0
CMD_TIMEOUT = 60.0
# Daemon deaths that a test did not cause on purpose (SIGKILL and SIGTERM
# are the tests' and master's own): a sanitizer abort, a panic, a crash.
LOG_PROBLEM = re.compile(
    r"panic: |AddressSanitizer|runtime error:|killed by signal (?!9\b|15\b)\d+"
    r"|warning: process \S+ pid \d+ exit status [1-9]")
TRAVERSE_MODE = 0o711
LOG_MODE = 0o666
PARAM_LINE = r"^[ \t]*{}[ \t]*="

# The delivery services of master.cf (names and columns as agreed for
# issue 3); delivery=False instances have none of them.
DELIVERY_SERVICES = {
    "qmgr": "qmgr      unix  n       -       n       300     1       qmgr",
    "local": "local     unix  -       n       n       -       -       local",
    "pickup": "pickup    unix  n       -       n       60      1       pickup",
}
DELIVERY_PROGRAMS = ("qmgr", "local")
# Retry quickly in tests: a deferred message is tried again within seconds.
DELIVERY_PARAMS = {
    "queue_run_delay": "1s",
    "minimal_backoff_time": "2s",
    "maximal_backoff_time": "4s",
}
DELIVERY_TIMEOUT = 20.0   # seconds for a message to reach its mailbox
QUEUE_SUBDIRS = ("incoming", "active", "deferred")
USER_NAMES = ("alice", "bob", "carol")
USER_SHELL = "/bin/sh"
USERS_DIR_MODE = 0o755


NO_DNS_SERVER = "127.0.0.1:9"   # discard port: no DNS server there


def free_port():
    """free_port - a TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_traversable(path):
    """make_traversable - let mail_owner reach path (root runs only)."""
    if os.getuid() != 0:
        return
    p = Path(path)
    while p != p.parent:
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o001 == 0:
            os.chmod(p, mode | TRAVERSE_MODE)
        p = p.parent


class Instance:
    """Instance - one posta instance in a folder, and ways to drive it."""

    def __init__(self, root, port):
        self.root = Path(root)
        self.port = port
        self.etc = self.root / "etc"
        self.spool = self.root / "spool"
        self.main_cf = self.etc / "main.cf"
        self.master_cf = self.etc / "master.cf"
        self.aliases = self.etc / "aliases"
        self.maillog = self.root / "maillog"
        self.mail = self.root / "mail"      # mail_spool_directory
        self.known = {}       # pid -> starttime of every process we saw
        self.last = None      # CompletedProcess of the last posta command
        self.san_dir = self.root / "sanitizer"
        # A test that kills daemons may see their peers exit with an error.
        self.killed_on_purpose = False

    # ---- configuration ------------------------------------------------
    def set_param(self, name, value):
        """set_param - make main.cf say "name = value" (replace or append)."""
        text = self.main_cf.read_text()
        lines = text.split("\n")
        pat = re.compile(PARAM_LINE.format(re.escape(name)))
        out = []
        done = False
        skipping = False
        for line in lines:
            if skipping and line[:1] in (" ", "\t") and line.strip():
                continue            # continuation of the replaced value
            skipping = False
            if pat.match(line):
                if not done:
                    out.append("%s = %s" % (name, value))
                    done = True
                skipping = True
                continue
            out.append(line)
        if not done:
            if out and out[-1] == "":
                out.pop()
            out.append("%s = %s" % (name, value))
            out.append("")
        self.main_cf.write_text("\n".join(out))

    def param_line(self, name):
        """param_line - 1-based line number of "name =" in main.cf."""
        pat = re.compile(PARAM_LINE.format(re.escape(name)))
        for i, line in enumerate(self.main_cf.read_text().split("\n"), 1):
            if pat.match(line):
                return i
        raise AssertionError("%s not in main.cf" % name)

    def add_alias(self, name, target):
        """add_alias - append "name target" to the texthash aliases."""
        with open(self.aliases, "a") as f:
            f.write("%s %s\n" % (name, target))

    # ---- commands ------------------------------------------------------
    def posta(self, *args, timeout=CMD_TIMEOUT):
        """posta - run `posta -c ETC args...`; the CompletedProcess (text)."""
        cmd = [str(POSTA), "-c", str(self.etc)] + [str(a) for a in args]
        self.last = subprocess.run(cmd, stdin=subprocess.DEVNULL, env=self.env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   timeout=timeout, text=True, errors="replace")
        self.remember()
        return self.last

    def env(self):
        """env - our environment, with sanitizer reports sent to files."""
        env = dict(os.environ)
        self.san_dir.mkdir(exist_ok=True)
        os.chmod(self.san_dir, 0o777)
        env["ASAN_OPTIONS"] = "log_path=%s/asan:abort_on_error=1:detect_leaks=0" % self.san_dir
        env["UBSAN_OPTIONS"] = "log_path=%s/ubsan:print_stacktrace=1" % self.san_dir
        return env

    def problems(self):
        """problems - sanitizer reports and daemon crashes seen in the log."""
        out = []
        if self.san_dir.is_dir():
            for f in sorted(self.san_dir.iterdir()):
                out.append("%s:\n%s" % (f.name, f.read_text(errors="replace")[:4000]))
        for line in self.log().splitlines():
            m = LOG_PROBLEM.search(line)
            if m and not (self.killed_on_purpose and m.group(0).startswith("warning: process")):
                out.append(line)
        return out

    def start(self):
        """start - `posta start`, then wait until a session gets its banner."""
        r = self.posta("start")
        assert r.returncode == 0, "posta start failed (%d): %s%s\nlog:\n%s" % (
            r.returncode, r.stdout, r.stderr, self.log())
        self.wait_ready()
        return r

    def wait_ready(self, timeout=START_TIMEOUT):
        """wait_ready - a new connection gets "220" within timeout."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                with helpers.RawSMTP(self.port, timeout=5) as c:
                    code, text = c.reply()
                    c.send(b"QUIT\r\n")
                    if code == 220:
                        self.remember()
                        return
                    last = (code, text)
            except (OSError, helpers.SMTPProtocolError) as e:
                last = e
            time.sleep(0.1)
        raise AssertionError("instance on port %d not ready: %r\nlog:\n%s" % (
            self.port, last, self.log()))

    def stop(self):
        """stop - `posta stop`; the CompletedProcess."""
        return self.posta("stop", timeout=STOP_TIMEOUT)

    def reload(self):
        """reload - `posta reload`; the CompletedProcess."""
        return self.posta("reload")

    def status(self):
        """status - exit code of `posta status`."""
        return self.posta("status").returncode

    def queue_json(self):
        """queue_json - `posta queue -j` parsed, one dict per message."""
        r = self.posta("queue", "-j")
        assert r.returncode == 0, "posta queue -j: %s" % r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    # ---- processes -----------------------------------------------------
    def master_pid(self):
        """master_pid - the PID in spool/pid/master.pid, or None."""
        try:
            text = (self.spool / "pid" / "master.pid").read_text().strip()
            return int(text.split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def remember(self):
        """remember - record master + descendants (PID, start time); return them."""
        pid = self.master_pid()
        tree = helpers.proc_tree(pid) if pid else {}
        self.known.update(tree)
        return tree

    def children(self):
        """children - live child processes of the master: {pid: comm}."""
        pid = self.master_pid()
        if pid is None or helpers.proc_stat(pid) is None:
            return {}
        self.remember()
        out = {}
        for child in helpers.proc_children_map().get(pid, []):
            st = helpers.proc_stat(child)
            if st is not None:
                out[child] = st[2]
        return out

    def alive(self):
        """alive - the processes we know of that still run."""
        return [p for p, t in self.known.items() if helpers.proc_alive(p, t)]

    def kill9_all(self):
        """kill9_all - SIGKILL every known live process of the instance."""
        self.remember()
        for pid in self.alive():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        helpers.wait_until(lambda: not self.alive(), 10)

    def cleanup(self):
        """cleanup - stop, then kill -9 what is left; never raises."""
        self.remember()
        try:
            if self.alive():
                self.posta("stop", timeout=STOP_TIMEOUT)
                helpers.wait_until(lambda: not self.alive(), 10)
        except Exception:
            pass
        self.kill9_all()

    # ---- queue and log -------------------------------------------------
    def queue_files(self, sub="incoming"):
        """queue_files - names of the files in spool/SUB (sorted)."""
        d = self.spool / sub
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if p.is_file())

    def complete_files(self, sub="incoming"):
        """complete_files - queue files marked complete (mode 0700).

        smtpd may remove an unfinished file between the listing and the
        stat (a session closing while the test looks): such a file was
        not complete."""
        d = self.spool / sub
        done = []
        for n in self.queue_files(sub):
            try:
                mode = (d / n).stat().st_mode
            except FileNotFoundError:
                continue
            if stat.S_IMODE(mode) == helpers.QFILE_MODE_DONE:
                done.append(n)
        return done

    def qfile(self, qid, sub="incoming"):
        """qfile - the parsed queue file of qid."""
        return helpers.parse_qfile(self.spool / sub / qid)

    def log(self):
        """log - the maillog text so far ("" if none)."""
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ---- delivery --------------------------------------------------------
    def mbox(self, name):
        """mbox - the path of NAME's mailbox in mail_spool_directory."""
        return self.mail / name

    def queued(self):
        """queued - queue files still in incoming/, active/ and deferred/."""
        return [(sub, n) for sub in QUEUE_SUBDIRS for n in self.queue_files(sub)]

    def wait_queue_empty(self, timeout=DELIVERY_TIMEOUT):
        """wait_queue_empty - until no message waits; AssertionError if not."""
        if not helpers.wait_until(lambda: not self.queued(), timeout):
            raise AssertionError("queue not empty after %ss: %r\nlog:\n%s" % (
                timeout, self.queued(), self.log()[-6000:]))

    def wait_log(self, pattern, timeout=DELIVERY_TIMEOUT):
        """wait_log - until the maillog matches pattern (regex); the match."""
        rx = re.compile(pattern, re.M)
        m = helpers.wait_until(lambda: rx.search(self.log()), timeout)
        if not m:
            raise AssertionError("no log line matching %r after %ss; log:\n%s" % (
                pattern, timeout, self.log()[-6000:]))
        return m

    def wait_for(self, predicate, what, timeout=DELIVERY_TIMEOUT):
        """wait_for - until predicate() is true; else fail naming what, with the log."""
        value = helpers.wait_until(predicate, timeout)
        if not value:
            raise AssertionError("%s: not within %ss; queue %r\nlog:\n%s" % (
                what, timeout, self.queued(), self.log()[-6000:]))
        return value

    # ---- clients -------------------------------------------------------
    def smtp(self, source=None, timeout=helpers.REPLY_TIMEOUT):
        """smtp - an smtplib.SMTP connected to the instance."""
        kw = {"timeout": timeout}
        if source is not None:
            kw["source_address"] = (source, 0)
        return smtplib.SMTP("127.0.0.1", self.port, **kw)

    def raw(self, source=None):
        """raw - a helpers.RawSMTP connected to the instance."""
        return helpers.RawSMTP(self.port, source=source)


def master_cf_services(text):
    """master_cf_services - the service names of a master.cf text."""
    out = []
    for line in text.split("\n"):
        if line.strip() and not line.startswith("#") and line[:1] not in (" ", "\t"):
            out.append(line.split()[0])
    return out


def set_delivery(inst, delivery):
    """set_delivery - remove (False) or make sure of (True) the delivery services."""
    lines = inst.master_cf.read_text().split("\n")
    out = []
    skipping = False
    for line in lines:
        if skipping and line[:1] in (" ", "\t") and line.strip():
            continue                # continuation of a removed service
        skipping = False
        fields = line.split()
        if (fields and not line.startswith("#") and line[:1] not in (" ", "\t")
                and fields[0] in DELIVERY_SERVICES):
            if not delivery:
                skipping = True
                continue
        out.append(line)
    text = "\n".join(out)
    if delivery:
        have = master_cf_services(text)
        if not text.endswith("\n"):
            text += "\n"
        for name, line in DELIVERY_SERVICES.items():
            if name not in have and (BUILD / "libexec" / name).is_file():
                text += line + "\n"
    inst.master_cf.write_text(text)
    if delivery:
        for name, value in DELIVERY_PARAMS.items():
            inst.set_param(name, value)


def one_smtpd(inst):
    """one_smtpd - master.cf: at most one smtpd process on the instance's port."""
    lines = []
    for line in inst.master_cf.read_text().splitlines():
        f = line.split()
        if len(f) >= 8 and f[0].endswith(":%d" % inst.port) and f[7] == "smtpd":
            f[6] = "1"
            line = "  ".join(f)
        lines.append(line)
    inst.master_cf.write_text("\n".join(lines) + "\n")


def delivery_missing():
    """delivery_missing - the delivery programs not built yet (names)."""
    return [p for p in DELIVERY_PROGRAMS if not (BUILD / "libexec" / p).is_file()]


def create_instance(root, delivery=False):
    """create_instance - mkinstance.sh + test settings in root; not started."""
    assert POSTA.is_file(), "no %s: build first (make), or set POSTA_BUILD" % POSTA
    port = free_port()
    root.parent.mkdir(parents=True, exist_ok=True)
    make_traversable(root.parent)
    r = subprocess.run([str(MKINSTANCE), str(root), str(port), str(BUILD)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=CMD_TIMEOUT)
    assert r.returncode == 0, "mkinstance.sh failed: %s" % r.stdout
    inst = Instance(root, port)
    inst.maillog.touch()
    os.chmod(inst.maillog, LOG_MODE)
    inst.set_param("maillog_file", str(inst.maillog))
    # Tests never ask the machine's resolver: DNS goes to a loopback port
    # where nothing listens (refused at once); a test that needs DNS starts
    # its own server and sets dns_servers.
    inst.set_param("dns_servers", NO_DNS_SERVER)
    set_delivery(inst, delivery)
    return inst


def pytest_configure(config):
    """pytest_configure - declare the markers of this suite."""
    config.addinivalue_line(
        "markers", "delivery: the instance runs qmgr, local and pickup (issue 3)")


@pytest.fixture
def inst(request, tmp_path):
    """inst - a configured instance, not started; cleaned up afterwards."""
    delivery = request.node.get_closest_marker("delivery") is not None
    if delivery and delivery_missing():
        pytest.skip("delivery programs not built yet: %s" % ", ".join(delivery_missing()))
    instance = create_instance(tmp_path / "inst", delivery=delivery)
    yield instance
    instance.cleanup()
    problems = instance.problems()
    assert not problems, "daemon failures during the test:\n" + "\n".join(problems)


@pytest.fixture
def posta(inst):
    """posta - a started instance (deliberate errors answered at once)."""
    inst.set_param("smtpd_error_sleep_time", "0s")
    inst.start()
    return inst


class MailUser:
    """MailUser - one real account made for the tests."""

    def __init__(self, role, name):
        pw = pwd.getpwnam(name)
        self.role = role          # "alice", "bob", ...
        self.name = name          # the login name, e.g. "pt3f9aalice"
        self.uid = pw.pw_uid
        self.gid = pw.pw_gid
        self.home = Path(pw.pw_dir)
        self.addr = name + "@localhost"

    def maildir(self):
        """maildir - the user's ~/Maildir (for home_mailbox = Maildir/)."""
        return self.home / "Maildir"

    def reset(self):
        """reset - empty the home folder (keep the folder, its owner and mode)."""
        for p in self.home.iterdir():
            if p.is_dir() and not p.is_symlink():
                for sub in p.rglob("*"):
                    if sub.is_dir() and not sub.is_symlink():
                        os.chmod(sub, 0o700)   # a test may have chmod 000 one
                shutil.rmtree(p)
            else:
                p.unlink()


class MailUsers:
    """MailUsers - the accounts of the session, by role (users.alice, ...)."""

    def __init__(self, base, names):
        self.base = base
        self.all = [MailUser(role, name) for role, name in names]
        for u in self.all:
            setattr(self, u.role, u)


def remove_users(names):
    """remove_users - userdel -r each account that exists; never raises."""
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        subprocess.run(["userdel", "-r", name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=CMD_TIMEOUT)


@pytest.fixture(scope="session")
def mail_users():
    """mail_users - real accounts (alice, bob, carol) for the session."""
    if os.getuid() != 0:
        pytest.skip("creating users needs root")
    base = Path(tempfile.mkdtemp(prefix="posta-users-"))
    os.chmod(base, USERS_DIR_MODE)
    tag = "pt" + secrets.token_hex(3)
    names = [(role, tag + role) for role in USER_NAMES]
    try:
        for role, name in names:
            subprocess.run(["useradd", "-m", "-d", str(base / role), "-s", USER_SHELL,
                            "-U", name], check=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=CMD_TIMEOUT)
        users = MailUsers(base, names)
        yield users
    finally:
        remove_users([name for _, name in names])
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def users(mail_users):
    """users - the session's accounts, with empty homes for this test."""
    for u in mail_users.all:
        u.reset()
    return mail_users


# ---- issue 4: the smtp client (namespaces, DNS and peers: netlab.py) -------
#
# `lab` gives a test a netlab.Lab: processes it starts (peers, dnsmasq,
# Postfix) are killed by PID and its network namespaces deleted at the
# end, whatever happened; namespaces are made only when the test asks for
# a host (and the test is skipped when not root). `make_posta` creates
# more instances (delivery services and smtp/lmtp included), optionally
# inside a lab host: NsInstance runs every posta command with `ip netns
# exec`, listens on HOST:25 as well as on 127.0.0.1:PORT of its namespace,
# and asks the lab's DNS server (dns_servers). A missing build/libexec/smtp
# makes these tests fail, not skip: the client is what they test.

import netlab  # noqa: E402

SMTP_SERVICES = {
    "smtp": "smtp      unix  -       -       n       -       -       smtp",
    "relay": "relay     unix  -       -       n       -       -       smtp",
    "lmtp": "lmtp      unix  -       -       n       -       -       lmtp",
}
# Short timeouts, so a mistake shows as a failure within the test's time.
SMTP_TEST_PARAMS = {
    "smtp_connect_timeout": "5s",
    "smtp_helo_timeout": "15s",
    "smtp_mail_timeout": "15s",
    "smtp_rcpt_timeout": "15s",
    "smtp_data_init_timeout": "15s",
    "smtp_data_xfer_timeout": "15s",
    "smtp_data_done_timeout": "15s",
    "smtp_quit_timeout": "5s",
    "lmtp_connect_timeout": "5s",
}
LAB_NETWORK = "%s.0/%d" % (netlab.SUBNET, netlab.PREFIXLEN)


def require_programs(*names):
    """require_programs - fail (not skip) when a program of issue 4 is not built."""
    missing = [n for n in names if not (BUILD / "libexec" / n).is_file()]
    assert not missing, ("%s not built (make): the smtp client tests need %s"
                         % (", ".join("build/libexec/" + n for n in missing),
                            " and ".join(missing)))


def add_smtp_services(inst):
    """add_smtp_services - smtp, relay and lmtp lines in master.cf, test timeouts in main.cf."""
    require_programs("smtp")
    text = inst.master_cf.read_text()
    have = master_cf_services(text)
    if not text.endswith("\n"):
        text += "\n"
    for name, line in SMTP_SERVICES.items():
        prog = line.split()[-1]
        if name not in have and (BUILD / "libexec" / prog).is_file():
            text += line + "\n"
    inst.master_cf.write_text(text)
    for name, value in SMTP_TEST_PARAMS.items():
        inst.set_param(name, value)


class NsInstance(Instance):
    """NsInstance - an instance whose processes run in a lab host's namespace."""

    def __init__(self, root, port, host):
        super().__init__(root, port)
        self.host = host

    def posta(self, *args, timeout=CMD_TIMEOUT):
        """posta - `ip netns exec NS posta -c ETC args...`; the CompletedProcess."""
        cmd = self.host.cmd([str(POSTA), "-c", str(self.etc)] + [str(a) for a in args])
        self.last = subprocess.run(cmd, stdin=subprocess.DEVNULL, env=self.env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   timeout=timeout, text=True, errors="replace")
        self.remember()
        return self.last

    def wait_ready(self, timeout=START_TIMEOUT):
        """wait_ready - as Instance's, from inside the namespace."""
        with netlab.entered(self.host.ns):
            return super().wait_ready(timeout)

    def smtp(self, source=None, timeout=helpers.REPLY_TIMEOUT):
        """smtp - an smtplib.SMTP to 127.0.0.1:PORT of the namespace."""
        with netlab.entered(self.host.ns):
            return super().smtp(source, timeout)

    def raw(self, source=None):
        """raw - a helpers.RawSMTP to 127.0.0.1:PORT of the namespace."""
        with netlab.entered(self.host.ns):
            return super().raw(source)


def configure_ns_instance(inst, host, hostname, mydestination, public=True):
    """configure_ns_instance - listen on HOST:25 (public), use the lab's DNS, name the host."""
    if public:
        with open(inst.master_cf, "a") as f:
            f.write("%s:%d inet  n       -       n       -       -       smtpd\n"
                    % (host.addr, netlab.SMTP_PORT))
    inst.set_param("myhostname", hostname)
    inst.set_param("mydestination", mydestination)
    inst.set_param("inet_interfaces",
                   "127.0.0.1, %s" % host.addr if public else "loopback-only")
    inst.set_param("mynetworks", "127.0.0.0/8, %s" % LAB_NETWORK)
    inst.set_param("dns_servers", "%s:%d" % (netlab.DNS_ADDR, netlab.DNS_PORT))


@pytest.fixture(scope="session")
def netlab_session():
    """netlab_session - namespaces left by dead runs (our prefix only) removed before and after."""
    netlab.cleanup_stale()
    yield
    netlab.cleanup_stale()


@pytest.fixture
def lab(netlab_session, tmp_path):
    """lab - a netlab.Lab in tmp_path/lab; everything it started removed afterwards."""
    make_traversable(tmp_path)
    the_lab = netlab.Lab(tmp_path / "lab")
    try:
        yield the_lab
    finally:
        the_lab.close()


@pytest.fixture
def make_posta(lab, tmp_path):
    """make_posta - make_posta(name, host=None, hostname=..., mydestination=..., public=True):

    a configured instance with qmgr, local, pickup and smtp (not
    started), in tmp_path/name, inside host's namespace when given
    (public=False: no listener on the host's address, inet_interfaces =
    loopback-only, as a satellite; smtp=False: no smtp client, for an
    instance that only receives).
    """
    missing = delivery_missing()
    made = []

    def make(name, host=None, hostname=None, mydestination=None, public=True, smtp=True):
        assert not missing, "delivery programs not built: %s" % ", ".join(missing)
        plain = create_instance(tmp_path / name, delivery=True)
        if smtp:
            add_smtp_services(plain)
        if host is None:
            inst = plain
        else:
            inst = NsInstance(plain.root, plain.port, host)
            configure_ns_instance(inst, host, hostname or "%s.test" % name,
                                  mydestination if mydestination is not None
                                  else "$myhostname, localhost", public)
        made.append(inst)
        return inst
    yield make
    for inst in made:
        inst.cleanup()
    problems = []
    for inst in made:
        problems += ["%s: %s" % (inst.root.name, p) for p in inst.problems()]
    assert not problems, "daemon failures during the test:\n" + "\n".join(problems)
