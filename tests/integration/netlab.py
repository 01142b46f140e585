"""netlab.py - a private network for one test: namespaces, DNS, peers, Postfix

What the smtp client tests (issue 4) need besides a posta instance:
  Lab           network namespaces named posta-t<PID>-<N>: one "hub"
                holding a bridge, and one namespace per host, each joined
                to the bridge by a veth pair created directly inside the
                two namespaces (nothing is ever added to the machine's own
                namespace). Hosts get 10.77.0.x/24 addresses and their
                loopback up; /etc/netns/NS/resolv.conf points at the lab's
                DNS server so programs that read resolv.conf (Postfix) use
                it under `ip netns exec`.
  entered(ns)   a context manager that moves this thread into a namespace
                (setns), so sockets made inside it belong to that network
  Dnsmasq       a real DNS server (dnsmasq --no-daemon) with the test's
                MX, A, Null MX (raw RR), NXDOMAIN (--local) and SERVFAIL
                (forwarded to peers/dns_servfail.py) answers
  Peer          one of the aiosmtpd scripts of peers/ (capture, tempfail,
                reject, lmtp), with its events (connections, messages,
                replies) read from DIR/events.jsonl and the raw DATA bytes
                of each message from DIR/msg-N.raw
  PostfixPeer   a real Postfix (Debian's) with its own main.cf, master.cf,
                queue and data folders in the test's folder, started with
                `postfix -c DIR start` inside a namespace

Cleanup: Lab.close() (called from a fixture finalizer, whatever the test
did) kills every process the lab started by PID and start time (and
their descendants), stops Postfix, deletes the namespaces (which removes
their veth ends) and the /etc/netns entries. cleanup_stale() removes
namespaces left by an earlier pytest run whose PID no longer exists; it
never touches a namespace of a live run or one without our prefix.

DIAGNOSTICS: every wait is bounded; a failure quotes the peer's or the
DNS server's output. SECURITY: needs root (namespaces); every server the
lab starts listens inside the lab's namespaces or on 127.0.0.1.
"""

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import helpers

PREFIX = "posta-t%d-" % os.getpid()
STALE_RE = re.compile(r"^posta-t(\d+)-\d+$")
NETNS_ETC = Path("/etc/netns")
IP = "/usr/sbin/ip"
DNSMASQ = "/usr/sbin/dnsmasq"
PYTHON = "/usr/bin/python3"
POSTFIX = "/usr/sbin/postfix"
PEERS = Path(__file__).resolve().parent / "peers"

SUBNET = "10.77.0"          # the lab's /24
REVERSE_ZONE = "0.77.10.in-addr.arpa"
PREFIXLEN = 24
DNS_ADDR = SUBNET + ".53"   # the lab's DNS server
DNS_PORT = 53
SERVFAIL_PORT = 5353        # peers/dns_servfail.py, inside the DNS host
CLONE_NEWNET = 0x40000000
CMD_TIMEOUT = 30
READY_TIMEOUT = 15.0        # seconds for a server to listen
KILL_WAIT = 5.0
SMTP_PORT = 25
DISCARD_PORT = 9            # nothing listens there: a refusal proves the path

_counter = [0]
_libc = ctypes.CDLL(None, use_errno=True)


def run(args, check=True, timeout=CMD_TIMEOUT):
    """run - a command (list); CompletedProcess with text output."""
    r = subprocess.run([str(a) for a in args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout, errors="replace")
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(map(str, args)),
                                                     r.returncode, r.stdout))
    return r


def available():
    """available - None when namespaces can be used, else why not."""
    if os.getuid() != 0:
        return "network namespaces need root"
    for tool in (IP, DNSMASQ):
        if not os.access(tool, os.X_OK):
            return "%s missing" % tool
    return None


def ns_list():
    """ns_list - names of the network namespaces of the machine."""
    r = run([IP, "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _setns(path):
    """_setns - move this thread into the network namespace at path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns(%s): %s" % (path, os.strerror(err)))
    finally:
        os.close(fd)


@contextmanager
def entered(ns):
    """entered - run the block in namespace ns (sockets made there stay there)."""
    if ns is None:
        yield
        return
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns("/run/netns/%s" % ns)
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                # A thread stuck in a lab namespace would poison every
                # later test: stop the run.
                os._exit(99)
    finally:
        os.close(home)


def kill_tree(pid, starttime=None):
    """kill_tree - SIGKILL pid (if still the same process) and its descendants."""
    st = helpers.proc_stat(pid)
    if st is None or (starttime is not None and st[1] != starttime):
        return
    tree = helpers.proc_tree(pid)
    for p, t in tree.items():
        if helpers.proc_alive(p, t):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    helpers.wait_until(lambda: not any(helpers.proc_alive(p, t) for p, t in tree.items()),
                       KILL_WAIT)


def delete_ns(name):
    """delete_ns - kill what runs in namespace name, delete it and its /etc/netns entry."""
    r = run([IP, "netns", "pids", name], check=False)
    for word in r.stdout.split():
        if word.isdigit():
            try:
                os.kill(int(word), signal.SIGKILL)
            except ProcessLookupError:
                pass
    run([IP, "netns", "delete", name], check=False)
    etc = NETNS_ETC / name
    if etc.is_dir():
        for f in etc.iterdir():
            f.unlink()
        etc.rmdir()


def cleanup_stale():
    """cleanup_stale - delete namespaces of earlier runs whose PID is gone, and ours."""
    if os.getuid() != 0:
        return
    for name in ns_list():
        m = STALE_RE.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or helpers.proc_stat(pid) is None:
            delete_ns(name)


class Host:
    """Host - one namespace of the lab with its addresses."""

    def __init__(self, lab, name, ns, addrs):
        self.lab = lab
        self.name = name
        self.ns = ns
        self.addrs = list(addrs)
        self.addr = self.addrs[0]

    def cmd(self, args):
        """cmd - args prefixed to run inside the namespace."""
        return [IP, "netns", "exec", self.ns] + [str(a) for a in args]

    def run(self, args, check=True, timeout=CMD_TIMEOUT, **kw):
        """run - a command inside the namespace (CompletedProcess, text)."""
        r = subprocess.run(self.cmd(args), stdin=kw.pop("stdin", subprocess.DEVNULL),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, errors="replace", **kw)
        if check and r.returncode != 0:
            raise AssertionError("in %s: %s failed (%d): %s" % (
                self.name, " ".join(map(str, args)), r.returncode, r.stdout))
        return r

    def popen(self, args, log_path, **kw):
        """popen - start a long-running process inside the namespace (tracked)."""
        return self.lab.popen(self.cmd(args), log_path, **kw)

    def connect(self, addr, port, timeout=helpers.REPLY_TIMEOUT):
        """connect - a TCP socket from this host to addr:port."""
        import socket
        with entered(self.ns):
            return socket.create_connection((addr, port), timeout=timeout)


class Lab:
    """Lab - namespaces joined by one bridge; close() removes everything."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.namespaces = []
        self.procs = []             # (pid, starttime, Popen)
        self.closers = []           # callables run first at close
        self.hosts = {}
        self.nveth = 0
        self.hub = None             # made with the first host

    def _make_hub(self):
        """_make_hub - the namespace holding the bridge all hosts are joined to."""
        why = available()
        if why:
            import pytest
            pytest.skip(why)
        self.hub = self._new_ns()
        run([IP, "-n", self.hub, "link", "set", "lo", "up"])
        run([IP, "-n", self.hub, "link", "add", "br0", "type", "bridge"])
        run([IP, "-n", self.hub, "link", "set", "br0", "up"])

    def _new_ns(self):
        """_new_ns - create the next namespace of our prefix; its name."""
        _counter[0] += 1
        name = "%s%d" % (PREFIX, _counter[0])
        run([IP, "netns", "add", name])
        self.namespaces.append(name)
        return name

    def host(self, name, *addrs):
        """host - a new namespace joined to the bridge with addrs (last octets or full)."""
        if self.hub is None:
            self._make_hub()
        full = [a if "." in str(a) else "%s.%s" % (SUBNET, a) for a in addrs]
        ns = self._new_ns()
        self.nveth += 1
        peer = "v%d" % self.nveth
        run([IP, "link", "add", "name", "eth0", "netns", ns, "type", "veth",
             "peer", "name", peer, "netns", self.hub])
        run([IP, "-n", self.hub, "link", "set", peer, "master", "br0"])
        run([IP, "-n", self.hub, "link", "set", peer, "up"])
        run([IP, "-n", ns, "link", "set", "lo", "up"])
        for a in full:
            run([IP, "-n", ns, "addr", "add", "%s/%d" % (a, PREFIXLEN), "dev", "eth0"])
        run([IP, "-n", ns, "link", "set", "eth0", "up"])
        etc = NETNS_ETC / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(
            "nameserver %s\noptions timeout:1 attempts:2\n" % DNS_ADDR)
        h = Host(self, name, ns, full)
        self.hosts[name] = h
        return h

    def dns(self, last_octet=DNS_ADDR.rsplit(".", 1)[1]):
        """dns - a host for the lab's DNS server and its (not yet started) Dnsmasq."""
        host = self.host("dns", last_octet)
        return Dnsmasq(host, self.root / "dns", addr=host.addr)

    def popen(self, args, log_path, **kw):
        """popen - start a tracked process with stdout+stderr to log_path."""
        log = open(log_path, "ab")
        try:
            p = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, **kw)
        finally:
            log.close()
        st = helpers.proc_stat(p.pid)
        self.procs.append((p.pid, st[1] if st else None, p))
        return p

    def wait_reachable(self, src, dst_addr, port=DISCARD_PORT, timeout=10.0):
        """wait_reachable - until a TCP connect from src to dst_addr:port is answered

        (accepted or refused: either way the address is there); new
        bridge ports take a moment.
        """
        def ok():
            try:
                src.connect(dst_addr, port, timeout=1).close()
                return True
            except ConnectionRefusedError:
                return True
            except OSError:
                return False
        if not helpers.wait_until(ok, timeout, interval=0.2):
            raise AssertionError("%s cannot reach %s" % (src.name, dst_addr))

    def close(self):
        """close - stop everything and delete the namespaces; never raises."""
        for fn in reversed(self.closers):
            try:
                fn()
            except Exception as e:          # keep cleaning up
                print("netlab: cleanup step failed: %r" % (e,), file=sys.stderr)
        for pid, start, p in self.procs:
            try:
                kill_tree(pid, start)
                p.wait(timeout=KILL_WAIT)
            except Exception:
                pass
        for ns in reversed(self.namespaces):
            try:
                delete_ns(ns)
            except Exception as e:
                print("netlab: deleting %s failed: %r" % (ns, e), file=sys.stderr)
        self.namespaces = []


# ---- DNS -------------------------------------------------------------------

def _wire_name(name):
    """_wire_name - a domain name in DNS wire format, as hex ("." -> "00")."""
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return (out + b"\x00").hex()


class Dnsmasq:
    """Dnsmasq - the lab's DNS server: add records, then start()."""

    RR_MX = 15

    def __init__(self, host, root, addr=DNS_ADDR, port=DNS_PORT, local_domain="test"):
        self.host = host
        self.root = Path(root)
        self.addr = addr
        self.port = port
        self.args = ["--local=/%s/" % local_domain,
                     "--local=/%s/" % REVERSE_ZONE]
        self.log = self.root / "dnsmasq.log"
        self.proc = None
        self.need_servfail = False

    def mx(self, domain, target, pref):
        """mx - an MX record domain -> target with preference pref."""
        self.args.append("--mx-host=%s,%s,%d" % (domain, target, pref))
        return self

    def a(self, name, addr):
        """a - an A record (and its PTR)."""
        self.args.append("--host-record=%s,%s" % (name, addr))
        return self

    def null_mx(self, domain):
        """null_mx - the RFC 7505 Null MX "0 ." (raw RR: preference 0, root name)."""
        self.args.append("--dns-rr=%s,%d,0000%s" % (domain, self.RR_MX, _wire_name(".")))
        return self

    def servfail(self, domain):
        """servfail - names under domain answer SERVFAIL (forwarded to peers/dns_servfail.py)."""
        self.args.append("--server=/%s/127.0.0.1#%d" % (domain, SERVFAIL_PORT))
        self.need_servfail = True
        return self

    def start(self):
        """start - run dnsmasq in the host's namespace and wait until it answers."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.need_servfail:
            ready = self.root / "servfail.ready"
            p = self.host.popen([PYTHON, PEERS / "dns_servfail.py", "127.0.0.1",
                                 SERVFAIL_PORT, ready], self.root / "servfail.log")
            if not helpers.wait_until(lambda: ready.exists() or p.poll() is not None,
                                      READY_TIMEOUT) or not ready.exists():
                raise AssertionError("dns_servfail.py did not start:\n%s" % (
                    (self.root / "servfail.log").read_text(errors="replace")))
        cmd = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
               "--pid-file", "--bind-interfaces", "--listen-address=%s" % self.addr,
               "--port=%d" % self.port, "--log-queries", "--cache-size=0",
               "--user=root"] + self.args
        (self.root / "dnsmasq.cmd").write_text(" ".join(cmd) + "\n")
        self.proc = self.host.popen(cmd, self.log)
        if not helpers.wait_until(self._answers, READY_TIMEOUT, interval=0.1):
            raise AssertionError("dnsmasq does not answer on %s:%d:\n%s" % (
                self.addr, self.port, self.log.read_text(errors="replace")))
        return self

    def _answers(self):
        """_answers - dnsmasq answers a query (any rcode)."""
        if self.proc.poll() is not None:
            raise AssertionError("dnsmasq exited (%s):\n%s" % (
                self.proc.returncode, self.log.read_text(errors="replace")))
        try:
            self.query("probe.invalid", "A", timeout=0.5)
            return True
        except OSError:
            return False

    def query(self, name, rtype, timeout=2.0):
        """query - ask the server from its own namespace: (rcode, [rdata text])."""
        import dns.exception
        import dns.message
        import dns.query
        import dns.rcode
        q = dns.message.make_query(name, rtype)
        with entered(self.host.ns):
            try:
                r = dns.query.udp(q, self.addr, port=self.port, timeout=timeout)
            except dns.exception.Timeout as e:
                raise OSError("timeout: %s" % e)
        return dns.rcode.to_text(r.rcode()), [rd.to_text() for rr in r.answer for rd in rr]


# ---- SMTP and LMTP peers (peers/*.py) ---------------------------------------

class Peer:
    """Peer - one aiosmtpd peer script running in a host (or the test's own namespace)."""

    def __init__(self, lab, root, script, host=None, listen=None, unix=None, args=()):
        self.lab = lab
        self.host = host
        self.dir = Path(root)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.events_path = self.dir / "events.jsonl"
        self.log = self.dir / "peer.log"
        cmd = [PYTHON, str(PEERS / script), "--dir", str(self.dir)]
        if listen is not None:
            cmd += ["--listen", listen]
        if unix is not None:
            cmd += ["--unix", str(unix)]
        cmd += list(args)
        cmd = host.cmd(cmd) if host is not None else cmd
        self.proc = lab.popen(cmd, self.log)
        ready = self.dir / "ready"
        if not helpers.wait_until(lambda: ready.exists() or self.proc.poll() is not None,
                                  READY_TIMEOUT):
            raise AssertionError("peer %s not ready:\n%s" % (script, self.output()))
        if not ready.exists():
            raise AssertionError("peer %s exited (%s):\n%s" % (
                script, self.proc.returncode, self.output()))
        self.port = int(ready.read_text().split()[0]) if listen is not None else None

    def output(self):
        """output - what the peer printed."""
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def events(self, kind=None):
        """events - the peer's events so far (dicts), or only those of kind."""
        out = []
        try:
            text = self.events_path.read_text()
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            if line.endswith("}"):
                ev = json.loads(line)
                if kind is None or ev["ev"] == kind:
                    out.append(ev)
        return out

    def messages(self):
        """messages - the accepted messages' events, each with its raw wire bytes ("raw")."""
        out = []
        for ev in self.events("message"):
            ev = dict(ev)
            ev["raw"] = (self.dir / ev["file"]).read_bytes()
            out.append(ev)
        return out

    def connections(self):
        """connections - how many connections the peer accepted."""
        return len(self.events("connect"))

    def wait_messages(self, count, timeout, context=""):
        """wait_messages - until count messages arrived; the messages.

        context: text (or a function giving it, called on failure) to quote.
        """
        got = helpers.wait_until(lambda: len(self.events("message")) >= count, timeout)
        if not got:
            if callable(context):
                context = context()
            raise AssertionError("peer got %d of %d messages in %ss\n%s\npeer:\n%s" % (
                len(self.events("message")), count, timeout, context, self.output()))
        return self.messages()


def unstuff(raw):
    """unstuff - DATA wire bytes (ending CRLF.CRLF) -> the message (CRLF kept)."""
    assert raw.endswith(b".\r\n"), "DATA does not end with .CRLF: %r" % raw[-20:]
    body = raw[:-3]
    lines = body.split(b"\r\n")
    assert lines[-1] == b"", "content does not end with CRLF before the dot"
    out = []
    for line in lines[:-1]:
        assert line != b".", "a lone dot before the end of DATA: %r" % raw
        out.append(line[1:] if line.startswith(b".") else line)
    return b"\r\n".join(out) + b"\r\n"


def wire_problems(raw):
    """wire_problems - CRLF and dot-stuffing faults of DATA wire bytes (list of texts)."""
    out = []
    for m in re.finditer(rb"(?<!\r)\n", raw):
        out.append("bare LF at %d: %r" % (m.start(), raw[max(0, m.start() - 30):m.start() + 10]))
    for m in re.finditer(rb"\r(?!\n)", raw):
        out.append("bare CR at %d: %r" % (m.start(), raw[max(0, m.start() - 30):m.start() + 10]))
    if not raw.endswith(b"\r\n.\r\n") and raw != b".\r\n":
        out.append("does not end with CRLF.CRLF: %r" % raw[-20:])
    lines = raw.split(b"\r\n")
    for i, line in enumerate(lines[:-2]):
        if line == b".":
            out.append("line %d is a lone dot before the end" % i)
    return out


# ---- Postfix -----------------------------------------------------------------

class PostfixPeer:
    """PostfixPeer - Debian's Postfix with its own configuration in root, in host."""

    def __init__(self, lab, host, root, hostname, domain, mynetworks,
                 extra=None):
        self.lab = lab
        self.host = host
        self.root = Path(root)
        self.etc = self.root / "etc"
        self.queue = self.root / "spool"
        self.data = self.root / "data"
        self.maillog = self.root / "maillog"
        for d in (self.etc, self.queue, self.data):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        run(["chown", "postfix", self.data])
        self.maillog.touch()
        params = {
            "compatibility_level": "3.6",
            "config_directory": self.etc,
            "queue_directory": self.queue,
            "data_directory": self.data,
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "shlib_directory": "/usr/lib/postfix",
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "syslog_name": "postfix-%s" % host.name,
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.root,
            "myhostname": hostname,
            "mydomain": domain,
            "myorigin": domain,
            "mydestination": "%s, $myhostname, localhost" % domain,
            "mynetworks": "127.0.0.0/8, %s" % mynetworks,
            "inet_interfaces": "127.0.0.1, %s" % host.addr,
            "inet_protocols": "ipv4",
            "alias_maps": "",
            "alias_database": "",
            "home_mailbox": "Maildir/",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtp_host_lookup": "dns",
            "biff": "no",
            "queue_run_delay": "2s",
            "minimal_backoff_time": "2s",
            "maximal_backoff_time": "4s",
            "smtp_connect_timeout": "5s",
        }
        params.update(extra or {})
        self.params = params
        self.etc.joinpath("main.cf").write_text(
            "".join("%s = %s\n" % (k, v) for k, v in params.items()))
        self.etc.joinpath("master.cf").write_text(self._master_cf())
        lab.closers.append(self.stop)
        self.pids = {}

    @staticmethod
    def _master_cf():
        """_master_cf - the stock master.cf without chroot and without pipe(8) services."""
        out = []
        skip = False
        for line in Path("/etc/postfix/master.cf").read_text().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[:1] in (" ", "\t"):
                if not skip:
                    out.append(line)
                continue
            f = line.split()
            skip = len(f) >= 8 and f[7] == "pipe"
            if skip:
                continue
            if len(f) >= 5:
                f[4] = "n"
            out.append("  ".join(f))
        return "\n".join(out) + "\n"

    def postfix(self, *args, check=True):
        """postfix - `postfix -c ETC args` inside the namespace."""
        return self.host.run([POSTFIX, "-c", self.etc] + list(args), check=check)

    def master_pid(self):
        """master_pid - Postfix's master PID, or None."""
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def start(self):
        """start - check, start, wait for the banner on host.addr:25."""
        self.postfix("check")
        self.postfix("start")
        pid = self.master_pid()
        if pid:
            self.pids.update(helpers.proc_tree(pid))

        def banner():
            try:
                s = self.host.connect(self.host.addr, SMTP_PORT, timeout=2)
            except OSError:
                return False
            try:
                return s.recv(512).startswith(b"220")
            except OSError:
                return False
            finally:
                s.close()
        if not helpers.wait_until(banner, READY_TIMEOUT, interval=0.2):
            raise AssertionError("Postfix does not answer on %s:25\n%s" % (
                self.host.addr, self.log()))
        pid = self.master_pid()
        if pid:
            self.pids.update(helpers.proc_tree(pid))
        return self

    def log(self):
        """log - Postfix's maillog."""
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def queued(self):
        """queued - files still in Postfix's queue."""
        out = []
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            d = self.queue / sub
            if d.is_dir():
                out += [str(p) for p in d.rglob("*") if p.is_file()]
        return out

    def stop(self):
        """stop - `postfix stop`, then kill by PID whatever of it is left."""
        pid = self.master_pid()
        if pid:
            self.pids.update(helpers.proc_tree(pid))
        try:
            self.postfix("stop", check=False)
        except Exception:
            pass
        helpers.wait_until(lambda: not any(helpers.proc_alive(p, t)
                                           for p, t in self.pids.items()), KILL_WAIT)
        for p, t in self.pids.items():
            if helpers.proc_alive(p, t):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# ---- mail helpers shared by the smtp client tests ------------------------------

def send(inst, sender, rcpts, subject, body="hello from the smtp client tests\n",
         mail_options=(), rcpt_options=(), extra_headers=None):
    """send - one message to inst over SMTP (smtplib); the refused-recipient dict."""
    import email.message
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    m = email.message.EmailMessage()
    m["From"] = sender or "MAILER-DAEMON@localhost"
    m["To"] = ", ".join(rcpts)
    m["Subject"] = subject
    m["Message-ID"] = "<%s@tests.posta>" % subject
    for k, v in (extra_headers or {}).items():
        m[k] = v
    m.set_content(body)
    with inst.smtp() as s:
        return s.send_message(m, from_addr=sender, to_addrs=rcpts,
                              mail_options=list(mail_options),
                              rcpt_options=list(rcpt_options))


def reports(path):
    """reports - the delivery reports in mbox path."""
    return [m for m in helpers.read_mbox(path) if m.get_content_type() == "multipart/report"]


def wait_report(inst, path, needle, timeout=20.0):
    """wait_report - the report in mbox path that mentions needle."""
    def found():
        for m in reports(path):
            if needle in m.as_string():
                return m
        return None
    return inst.wait_for(found, "a delivery report about %r in %s" % (needle, path), timeout)


def queue_text(inst):
    """queue_text - the output of `posta queue -p`."""
    r = inst.posta("queue", "-p")
    assert r.returncode == 0, "posta queue -p failed: %s%s" % (r.stdout, r.stderr)
    return r.stdout
