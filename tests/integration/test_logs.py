"""test_logs.py - posta's mail log is read by pflogsumm and fail2ban

An instance that logs to a file (maillog_file) is sent a known mix of
mail, then the tools an administrator already runs on a Postfix log are
run on posta's:

- pflogsumm (Debian package) must count exactly what was sent in its
  "Grand Totals": received, delivered, deferred, bounced, rejected;
- fail2ban-regex with fail2ban's own filters "postfix" (mode normal) and
  "postfix[mode=auth]" (the postfix-sasl jail) must match every reject
  and SASL failure line, with the client's address, when
  syslog_name = postfix;
- the filters posta ships (conf/fail2ban/filter.d/posta.conf and
  posta-sasl.conf) must do the same for the default syslog_name, posta,
  and must not match ordinary lines.

The mix, sent over SMTP from 127.0.0.1 (not in mynetworks) and through
posta's sendmail (pickup):
  delivered  DELIVERED_SMTP messages to local users, one by sendmail
  rejected   relay denied (REJECT_RELAY) and unknown local user
             (REJECT_UNKNOWN): "NOQUEUE: reject: RCPT from ..."
  deferred   an alias to a command that exits 75 (EX_TEMPFAIL) and a
             relay domain whose relayhost is a closed port of 127.0.0.1
  bounced    an alias to a user that does not exist, and an alias to a
             command that exits 67 (EX_NOUSER)
Each bounce sends a notification to the (local) sender, which Postfix
counts, and pflogsumm with it, as one more delivery: the expected
"delivered" is the delivered mail plus the bounces.

A SASL failure cannot be provoked without an authentication server, so
the line smtpd writes for one (smtpd/auth.c: "warning: NAME[ADDR]: SASL
METHOD authentication failed: REASON") is appended to the log in the
same form as the other lines.

DIAGNOSTICS: a failure quotes the tool's output and the log.
"""

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

import conftest

pytestmark = pytest.mark.delivery

PFLOGSUMM = "/usr/sbin/pflogsumm"
F2B_REGEX = shutil.which("fail2ban-regex") or "/usr/bin/fail2ban-regex"
F2B_FILTERS = Path("/etc/fail2ban/filter.d")
SHIPPED_FILTERS = conftest.REPO / "conf" / "fail2ban" / "filter.d"
SENDMAIL = conftest.BUILD / "bin" / "sendmail"
TOOL_TIMEOUT = 120

DELIVERED_SMTP = 3
REJECT_RELAY = ("someone@example.com", "other@example.org")
REJECT_UNKNOWN = ("nosuchuser-zz9@localhost",)
RELAY_DOMAIN = "relay.test"
# sysexits(3): EX_TEMPFAIL defers, EX_NOUSER bounces.
EX_TEMPFAIL = 75
EX_NOUSER = 67
# The client of the SASL failure line (TEST-NET-3: never a real client).
SASL_CLIENT = "203.0.113.7"
# A line of an ordinary session that no filter may match.
LOG_LINE = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ [\w/.-]+\[\d+\]: ")
GRAND_TOTAL = re.compile(r"^\s*(\d+)([km]?)\s+(received|delivered|forwarded|deferred|"
                         r"bounced|rejected|held|discarded)\b", re.M)


def need_tools():
    """need_tools - skip when pflogsumm or fail2ban are not installed."""
    missing = [p for p in (PFLOGSUMM, F2B_REGEX) if not os.path.exists(p)]
    if missing:
        pytest.skip("not installed: %s (scripts/deps.sh test)" % ", ".join(missing))


def closed_port():
    """closed_port - a port of 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(sender, rcpt, subject):
    """message - a small RFC 5322 message (bytes)."""
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nlog test\r\n"
            % (sender, rcpt, subject)).encode()


def send(inst, sender, rcpt, subject):
    """send - one message, one recipient; the refused-recipient error or None."""
    with inst.smtp() as s:
        try:
            s.sendmail(sender, [rcpt], message(sender, rcpt, subject))
        except Exception as e:          # smtplib's refusals: counted below
            return e
    return None


def count(pattern, text):
    """count - lines of text matching pattern."""
    return len(re.findall(pattern, text, re.M))


def make_mix(inst, users, syslog_name):
    """make_mix - configure, start, send the mix, stop; the expected counts."""
    if not SENDMAIL.is_file() or not (conftest.BUILD / "libexec" / "pickup").is_file():
        pytest.skip("sendmail or pickup not built yet")
    if syslog_name is not None:
        inst.set_param("syslog_name", syslog_name)
    # 127.0.0.1 is not a trusted network: relaying is refused to it.
    inst.set_param("mynetworks", "127.0.0.2/32")
    inst.set_param("relay_domains", RELAY_DOMAIN)
    inst.set_param("relayhost", "[127.0.0.1]:%d" % closed_port())
    inst.set_param("smtpd_error_sleep_time", "0s")
    # sendmail runs $command_directory/postdrop: this build's, not an
    # installed one (Postfix's /usr/sbin/postdrop, say).
    inst.set_param("command_directory", str(conftest.BUILD / "bin"))
    prefix = users.alice.name[:-len("alice")]
    inst.add_alias("tempfail", "|/bin/sh -c 'exit %d'" % EX_TEMPFAIL)
    inst.add_alias("ghost", prefix + "nosuchuser")
    inst.add_alias("permfail", "|/bin/sh -c 'exit %d'" % EX_NOUSER)
    conftest.add_smtp_services(inst)
    inst.start()

    sender = users.alice.addr
    rcpts = [users.bob.addr, users.carol.addr, users.bob.addr][:DELIVERED_SMTP]
    for i, rcpt in enumerate(rcpts):
        assert send(inst, sender, rcpt, "delivered %d" % i) is None, inst.log()
    for rcpt in REJECT_RELAY + REJECT_UNKNOWN:
        assert send(inst, sender, rcpt, "rejected") is not None, \
            "%s accepted\n%s" % (rcpt, inst.log())
    deferred = ("tempfail@localhost", "someone@" + RELAY_DOMAIN)
    bounced = ("ghost@localhost", "permfail@localhost")
    for rcpt in deferred + bounced:
        assert send(inst, sender, rcpt, "to " + rcpt) is None, inst.log()
    env = inst.env()
    env["MAIL_CONFIG"] = str(inst.etc)
    r = subprocess.run([str(SENDMAIL), "-f", sender, users.carol.addr], env=env,
                       input=message(sender, users.carol.addr, "by sendmail"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=TOOL_TIMEOUT)
    assert r.returncode == 0, "sendmail: %s" % r.stdout

    want = {
        "received": DELIVERED_SMTP + 1 + len(deferred) + len(bounced),
        "delivered": DELIVERED_SMTP + 1 + len(bounced),
        "deferred": len(deferred),
        "bounced": len(bounced),
        "rejected": len(REJECT_RELAY) + len(REJECT_UNKNOWN),
    }

    def settled():
        log = inst.log()
        deferred_ids = set(re.findall(r": (\w+): to=<[^>]*>.* status=deferred", log))
        return (count(r"status=sent ", log) >= want["delivered"]
                and count(r"status=bounced ", log) >= want["bounced"]
                and len(deferred_ids) >= want["deferred"])
    inst.wait_for(settled, "every message delivered, bounced or deferred")
    r = inst.stop()
    assert r.returncode == 0, r.stderr
    # The SASL failure, as smtpd/auth.c logs it, in the file's own form.
    tag = syslog_name or "posta"
    last = inst.log().splitlines()[-1]
    m = LOG_LINE.match(last)
    assert m, "not a syslog-style line: %r" % last
    stamp_host = last[:m.end()].rsplit(" ", 2)[0]
    with open(inst.maillog, "a") as f:
        f.write("%s %s/smtpd[4242]: warning: unknown[%s]: SASL LOGIN authentication "
                "failed: UGFzc3dvcmQ6\n" % (stamp_host, tag, SASL_CLIENT))
    return want


def pflogsumm(log, syslog_name=None):
    """pflogsumm - run it on the log; its Grand Totals as {name: n}."""
    cmd = [PFLOGSUMM]
    if syslog_name:
        cmd.append("--syslog-name=%s" % syslog_name)
    r = subprocess.run(cmd + [str(log)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=TOOL_TIMEOUT)
    assert r.returncode == 0, r.stdout
    totals = {}
    head = r.stdout.split("bytes received")[0]
    for n, unit, name in GRAND_TOTAL.findall(head):
        assert not unit, "unexpected unit in %s" % r.stdout
        totals[name] = int(n)
    return totals, r.stdout


def f2b_matches(log, filt):
    """f2b_matches - fail2ban-regex LOG FILTER; the matched lines (text)."""
    r = subprocess.run([F2B_REGEX, "--print-all-matched", "--print-no-missed",
                        "--print-no-ignored", "--raw", str(log), filt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=TOOL_TIMEOUT)
    assert r.returncode == 0, "fail2ban-regex %s: %s" % (filt, r.stdout)
    m = re.search(r"^Failregex: (\d+) total", r.stdout, re.M)
    assert m, r.stdout
    matched, section = [], False
    for line in r.stdout.splitlines():
        if line.startswith("|- "):
            section = line.startswith("|- Matched line(s):")
        elif line.startswith("`-"):
            section = False
        elif section:
            matched.append(line.lstrip("|").strip())
    assert len(matched) == int(m.group(1)), r.stdout
    return matched, r.stdout


def reject_lines(log_text):
    """reject_lines - the smtpd reject lines of the log."""
    return [l for l in log_text.splitlines() if "NOQUEUE: reject: RCPT from" in l]


def sasl_lines(log_text):
    """sasl_lines - the SASL failure lines of the log."""
    return [l for l in log_text.splitlines() if "authentication failed:" in l]


def installed_filters(folder):
    """installed_filters - conf/fail2ban filters beside fail2ban's common.conf, as installed."""
    folder.mkdir()
    for name in ("posta.conf", "posta-sasl.conf"):
        shutil.copy(SHIPPED_FILTERS / name, folder / name)
    (folder / "common.conf").symlink_to(F2B_FILTERS / "common.conf")
    return folder


def check_filters(inst, normal, auth):
    """check_filters - normal matches each reject, auth each SASL failure, nothing else."""
    text = inst.log()
    rejects, sasl = reject_lines(text), sasl_lines(text)
    assert len(rejects) == len(REJECT_RELAY) + len(REJECT_UNKNOWN), text
    assert len(sasl) == 1, text
    got, out = f2b_matches(inst.maillog, normal)
    assert sorted(got) == sorted(rejects), "%s matched:\n%s\nlog:\n%s" % (normal, out, text)
    assert "127.0.0.1" in out, out
    got, out = f2b_matches(inst.maillog, auth)
    assert got == sasl, "%s matched:\n%s\nlog:\n%s" % (auth, out, text)
    assert SASL_CLIENT in out, out


def test_pflogsumm_and_fail2ban_postfix(inst, users):
    """syslog_name = postfix: the Debian tools as they are configured for Postfix."""
    need_tools()
    want = make_mix(inst, users, "postfix")
    got, out = pflogsumm(inst.maillog)
    for name, n in want.items():
        assert got.get(name) == n, "pflogsumm %s: %s, sent %d\n%s\nlog:\n%s" % (
            name, got.get(name), n, out, inst.log())
    check_filters(inst, "%s[mode=normal]" % (F2B_FILTERS / "postfix.conf"),
                  "%s[mode=auth]" % (F2B_FILTERS / "postfix.conf"))
    # A message from sendmail: pickup's "uid=" line, then its Message-ID
    # (cleanup adds one), as Postfix's pickup and cleanup log them.
    m = re.search(r" postfix/pickup\[\d+\]: (\w+): uid=\d+ from=<[^>]*>$", inst.log(), re.M)
    assert m, inst.log()
    assert re.search(r" postfix/pickup\[\d+\]: %s: message-id=<[^>]+>$" % m.group(1),
                     inst.log(), re.M), inst.log()


def test_default_name_and_shipped_filters(inst, users):
    """syslog_name = posta (default): pflogsumm --syslog-name and conf/fail2ban."""
    need_tools()
    want = make_mix(inst, users, None)
    assert re.search(r" posta/smtpd\[\d+\]: ", inst.log()), inst.log()
    got, out = pflogsumm(inst.maillog, "posta")
    for name, n in want.items():
        assert got.get(name) == n, "pflogsumm %s: %s, sent %d\n%s" % (name, got.get(name),
                                                                      n, out)
    filters = installed_filters(inst.root / "filter.d")
    check_filters(inst, str(filters / "posta.conf"), str(filters / "posta-sasl.conf"))
    # Postfix's own filter does not know the name: posta's are needed.
    got, _ = f2b_matches(inst.maillog, "%s[mode=normal]" % (F2B_FILTERS / "postfix.conf"))
    assert got == []


# Lines in posta's form (default syslog_name) and whether each filter
# must match them: (line, posta.conf, posta-sasl.conf).
FILTER_CASES = [
    ("posta/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 "
     "<x@example.com>: Relay access denied; from=<a@b> to=<x@example.com> proto=ESMTP "
     "helo=<x>", True, False),
    ("posta/submission/smtpd[2]: NOQUEUE: reject: RCPT from h.example[192.0.2.2]:5555: "
     "550 5.1.1 <y@l>: Recipient address rejected: User unknown in local recipient table; "
     "from=<a@b> to=<y@l> proto=ESMTP helo=<x>", True, False),
    ("posta/smtpd[3]: NOQUEUE: reject: RCPT from unknown[192.0.2.3]: 450 4.7.1 <x@y>: "
     "Client host rejected: cannot find your hostname, [192.0.2.3]; from=<a@b> to=<x@y> "
     "proto=ESMTP helo=<x>", True, False),
    ("posta/smtpd[4]: too many errors after RCPT from unknown[192.0.2.4]", True, False),
    ("posta/smtpd[5]: improper command pipelining after EHLO from unknown[2001:db8::5]: "
     "QUIT", True, False),
    # the server's own trouble, an ordinary line, Postfix's name: no ban
    ("posta/smtpd[6]: NOQUEUE: reject: RCPT from unknown[192.0.2.6]: 451 4.3.0 <x@y>: "
     "Recipient address rejected: temporary lookup failure; from=<a@b> to=<x@y> "
     "proto=ESMTP helo=<x>", False, False),
    ("posta/smtpd[7]: connect from unknown[192.0.2.7]", False, False),
    ("postfix/smtpd[10]: NOQUEUE: reject: RCPT from unknown[192.0.2.10]: 554 5.7.1 "
     "<x@example.com>: Relay access denied; from=<a@b> to=<x@example.com> proto=ESMTP "
     "helo=<x>", False, False),
    ("posta/smtpd[8]: warning: unknown[192.0.2.8]: SASL PLAIN authentication failed: "
     "authentication failure", False, True),
    ("posta/submission/smtpd[9]: warning: h.example[192.0.2.9]:587: SASL LOGIN "
     "authentication failed: UGFzc3dvcmQ6", False, True),
    ("posta/smtpd[11]: warning: unknown[192.0.2.11]: SASL LOGIN authentication failed: "
     "Connection lost to authentication server", False, False),
]


def test_shipped_filters_line_by_line(tmp_path):
    """conf/fail2ban filters: each line matched or not, as FILTER_CASES says."""
    if not os.path.exists(F2B_REGEX):
        pytest.skip("fail2ban not installed (scripts/deps.sh test)")
    filters = installed_filters(tmp_path / "filter.d")
    log = tmp_path / "maillog"
    log.write_text("".join("Nov 22 21:21:%02d mx.example %s\n" % (i, line)
                           for i, (line, _, _) in enumerate(FILTER_CASES)))
    for column, name in ((1, "posta.conf"), (2, "posta-sasl.conf")):
        got, out = f2b_matches(log, str(filters / name))
        want = ["Nov 22 21:21:%02d mx.example %s" % (i, case[0])
                for i, case in enumerate(FILTER_CASES) if case[column]]
        assert sorted(got) == sorted(want), "%s:\n%s" % (name, out)
