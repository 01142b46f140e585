"""test_debian_config.py - Debian's stock Postfix configuration runs posta

tests/integration/data/debian-postfix/ holds main.cf and master.cf as the
Debian postfix package writes them for "Internet Site" (main.cf.debian,
main.cf.tls for the snakeoil certificate, then the postconf -e settings
of its postinst; master.cf.dist unchanged). The test copies both into an
instance made by mkinstance.sh and rewrites only what must point into
the test folder: the directories, mail_owner/setgid_group, the log, the
certificate, the aliases, myorigin's /etc/mailname, inet_interfaces, DNS
and the port of the "smtp inet" service. Everything else stays as Debian
wrote it.

Then posta must start, deliver a message to a local user's mailbox, and
report by name, as a warning, every main.cf parameter it does not
implement and every master.cf service whose program is Postfix's and not
posta's, in `posta start`'s output or the maillog; `posta check` reports
the same services as warnings, not errors.

DIAGNOSTICS: a failure quotes the `posta start` output and the maillog.
"""

import re
import shutil
from pathlib import Path

import pytest

import helpers

pytestmark = pytest.mark.delivery

DATA = Path(__file__).resolve().parent / "data" / "debian-postfix"
MAILNAME = "example.org"
MYHOSTNAME = "mail.example.org"

# The instance settings (from mkinstance.sh and conftest) that point into
# the test folder or keep the test off the machine's own services.
INSTANCE_PARAMS = (
    "queue_directory", "data_directory", "daemon_directory",
    "config_directory", "mail_spool_directory", "mail_owner",
    "setgid_group", "maillog_file", "dns_servers",
)
# Debian settings posta implements (a warning about them would be wrong).
IMPLEMENTED = (
    "smtpd_banner", "myhostname", "alias_maps", "myorigin",
    "mydestination", "relayhost", "mynetworks", "mailbox_size_limit",
    "recipient_delimiter", "inet_interfaces", "inet_protocols",
    "smtpd_relay_restrictions", "smtpd_tls_cert_file",
    "smtpd_tls_key_file", "smtpd_tls_security_level",
)
# Postfix programs of Debian's master.cf that posta does not have, with a
# service that runs each.
POSTFIX_ONLY = {
    "cleanup": "cleanup", "tlsmgr": "tlsmgr", "rewrite": "trivial-rewrite",
    "bounce": "bounce", "defer": "bounce", "trace": "bounce",
    "verify": "verify", "flush": "flush", "proxymap": "proxymap",
    "proxywrite": "proxymap", "showq": "showq", "error": "error",
    "retry": "error", "discard": "discard", "virtual": "virtual",
    "anvil": "anvil", "scache": "scache", "postlog": "postlogd",
    "maildrop": "pipe", "uucp": "pipe", "ifmail": "pipe", "bsmtp": "pipe",
    "scalemail-backend": "pipe", "mailman": "pipe",
}
# Debian settings posta does not implement: each must be named in a warning.
UNIMPLEMENTED = ("biff", "readme_directory", "smtp_tls_session_cache_database")
SMTP_INET = re.compile(r"^smtp(\s+inet\s)", re.M)


def instance_values(inst):
    """instance_values - the INSTANCE_PARAMS of mkinstance's main.cf."""
    out = {}
    for line in inst.main_cf.read_text().splitlines():
        m = re.match(r"^(\w+)\s*=\s*(.*)$", line)
        if m and m.group(1) in INSTANCE_PARAMS:
            out[m.group(1)] = m.group(2).strip()
    missing = set(INSTANCE_PARAMS) - set(out)
    assert not missing, "mkinstance main.cf lacks %s" % sorted(missing)
    return out


def debianize(inst):
    """debianize - Debian's main.cf and master.cf, pointed at the instance."""
    values = instance_values(inst)
    shutil.copy(DATA / "main.cf", inst.main_cf)
    for name, value in values.items():
        inst.set_param(name, value)
    etc = inst.etc
    (etc / "mailname").write_text(MAILNAME + "\n")
    inst.set_param("myorigin", etc / "mailname")
    # Debian's hash:/etc/aliases, built here from an aliases(5) file.
    (etc / "aliases").write_text("postmaster: root\nmailer-daemon: postmaster\n")
    r = inst.posta("alias", etc / "aliases")
    assert r.returncode == 0, "posta alias: %s%s" % (r.stdout, r.stderr)
    inst.set_param("alias_maps", "hash:%s" % (etc / "aliases"))
    inst.set_param("alias_database", "hash:%s" % (etc / "aliases"))
    inst.set_param("smtpd_tls_cert_file", etc / "tls" / "cert.pem")
    inst.set_param("smtpd_tls_key_file", etc / "tls" / "key.pem")
    inst.set_param("inet_interfaces", "127.0.0.1")
    master = (DATA / "master.cf").read_text()
    master, n = SMTP_INET.subn(r"127.0.0.1:%d\1" % inst.port, master)
    assert n == 1, "no \"smtp inet\" line in Debian's master.cf"
    inst.master_cf.write_text(master)


@pytest.fixture
def debian(inst):
    """debian - the instance with Debian's configuration, started."""
    debianize(inst)
    r = inst.start()
    inst.start_output = r.stdout + r.stderr
    return inst


def warnings_text(inst):
    """warnings_text - `posta start` output and maillog together."""
    return inst.start_output + "\n" + inst.log()


def test_debian_config_delivers(debian, users):
    alice = users.alice
    subject = helpers.token("debian")
    rcpt = "%s+debian@localhost" % alice.name
    msg = "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nhello from Debian's main.cf\r\n" % (
        "root@" + MAILNAME, rcpt, subject)
    with debian.smtp() as s:
        code, banner = s.ehlo("client.example.org")
        assert code == 250
        assert s.sendmail("root@" + MAILNAME, [rcpt], msg) == {}
    path = debian.mbox(alice.name)

    def found():
        msgs = [m for m in helpers.read_mbox(path) if subject in str(m["Subject"])]
        return msgs or None
    msgs = debian.wait_for(found, "message %r in %s" % (subject, path))
    assert msgs[0]["Delivered-To"] == rcpt

    text = warnings_text(debian)
    for line in text.splitlines():
        if ": fatal:" in line or "panic:" in line:
            pytest.fail("fatal error with Debian's config: %s\n%s" % (line, text))
    for name in IMPLEMENTED:
        assert not re.search(r"unknown parameter %s\b" % name, text), text
    for name in UNIMPLEMENTED:
        pat = r"warning: .*main\.cf, line \d+: (unknown )?parameter %s\b" % name
        assert re.search(pat, text), "no warning for %s:\n%s" % (name, text)
    for service, program in POSTFIX_ONLY.items():
        pat = r"warning: .*master\.cf, line \d+: service %s: program %s is not part of posta" % (
            re.escape(service), re.escape(program))
        assert re.search(pat, text), "no warning for %s:\n%s" % (service, text)


def test_debian_myorigin_mailname(inst):
    """myorigin = /etc/mailname (Debian): the file's first line is used."""
    debianize(inst)
    r = inst.posta("conf", "-x", "myorigin")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "myorigin = %s" % MAILNAME, r.stdout


def test_debian_check(inst):
    """posta check: Postfix-only services are warnings naming them, not errors."""
    debianize(inst)
    r = inst.posta("check")
    errors = [l for l in r.stderr.splitlines() if ": error:" in l]
    assert not errors, r.stderr
    for service, program in POSTFIX_ONLY.items():
        pat = r"warning: .*master\.cf, line \d+: service %s: program %s is not part of posta" % (
            re.escape(service), re.escape(program))
        assert re.search(pat, r.stderr), "no warning for %s:\n%s" % (service, r.stderr)
