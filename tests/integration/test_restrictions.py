"""test_restrictions.py - Postfix's smtpd_*_restrictions through real instances

Each case of CASES starts an instance with its own settings and access
tables (texthash: files written by the test), talks SMTP to it from
127.0.0.1 (in mynetworks) or 127.0.0.2 ("the Internet"), and checks every
reply code and text against what Postfix answers. DNS restrictions
(reject_rbl_client, reject_rhsbl_sender, reject_unknown_*_domain) ask a
dnsmasq that the module starts on 127.0.0.1 with the test's records
(dns_servers points posta's resolver at it). Client names are not looked
up (smtpd_peername_lookup = no), so every client is "unknown".

Also: smtpd_delay_reject = no (the client list at connect, its refusal in
place of the greeting; HELO/EHLO, MAIL and DATA answered from the
engine, some after a DNS lookup), the fatal errors of a misspelled
restriction, a missing argument or table, a session dropped while its
lookup is pending, and the reject lines read by fail2ban's postfix filter
and pflogsumm with syslog_name = postfix.
"""

import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import time

import pytest

import helpers
import tlshelp

INSIDE = "127.0.0.1"
OUTSIDE = "127.0.0.2"
DNSMASQ = "/usr/sbin/dnsmasq"
DNS_READY_TIMEOUT = 10.0
FATAL_TIMEOUT = 10.0
LOOKUP_PENDING_WAIT = 12.0     # > the engine's DNS time limit (10 s)

DNS_RECORDS = [
    "--local=/test/",
    "--local-ttl=300",
    "--host-record=ok.test,192.0.2.1",
    "--mx-host=mx.test,mail.ok.test,10",
    "--host-record=mail.ok.test,192.0.2.2",
    "--mx-host=nullmx.test,.,0",
    # 127.0.0.2 is listed in rbl.test (with a reason) and rbl2.test (without)
    "--host-record=2.0.0.127.rbl.test,127.0.0.2",
    "--txt-record=2.0.0.127.rbl.test,Listed for testing",
    "--host-record=2.0.0.127.rbl2.test,127.0.0.3",
    # a domain listed in the right-hand-side list
    "--host-record=spam.example.dbl.test,127.0.1.2",
    # every question under refused.test is answered REFUSED (a temporary failure)
    "--server=/refused.test/#",
]


# ---------------------------------------------------------------- DNS
def dns_answers(port):
    """dns_answers - does a DNS server on port answer an A question?"""
    q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
         b"\x02ok\x04test\x00\x00\x01\x00\x01")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    try:
        s.sendto(q, ("127.0.0.1", port))
        data, _ = s.recvfrom(512)
        return data[:2] == b"\x12\x34"
    except OSError:
        return False
    finally:
        s.close()


@pytest.fixture(scope="module")
def dns():
    """dns - a dnsmasq on 127.0.0.1 with DNS_RECORDS; its port."""
    if not os.access(DNSMASQ, os.X_OK):
        pytest.skip("dnsmasq is not installed")
    port = helpers.free_dns_port()
    proc = subprocess.Popen(
        [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
         "--listen-address=127.0.0.1", "--bind-interfaces", "--port=%d" % port,
         "--pid-file="] + DNS_RECORDS,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + DNS_READY_TIMEOUT
        while not dns_answers(port):
            assert proc.poll() is None, "dnsmasq exited with %s" % proc.returncode
            assert time.monotonic() < deadline, "dnsmasq does not answer"
            time.sleep(0.05)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- instances
def configure(inst, params, tables, dns_port):
    """configure - base settings, the case's tables (TABLE:name) and parameters."""
    inst.set_param("mynetworks", "127.0.0.1/32")
    inst.set_param("smtpd_error_sleep_time", "0s")
    inst.set_param("smtpd_peername_lookup", "no")
    if dns_port:
        inst.set_param("dns_servers", "127.0.0.1:%d" % dns_port)
    paths = {}
    for name, text in (tables or {}).items():
        path = inst.etc / name
        path.write_text(text)
        paths[name] = "texthash:%s" % path
    for name, value in params.items():
        for tname, spec in paths.items():
            value = value.replace("TABLE:" + tname, spec)
        inst.set_param(name, value)


def run_dialog(inst, source, steps, helo_cmd="EHLO client.example"):
    """run_dialog - banner, helo_cmd (unless None), then each step; the replies.

    A step is (line, code, fragment): the reply must have that code (None:
    any) and contain fragment (None: anything). A line may be bytes with
    several commands (one write); code and fragment are then lists.
    """
    got = []
    with inst.raw(source=source) as c:
        code, text = c.reply()
        assert code == 220, text
        if helo_cmd is not None:
            steps = [(helo_cmd, 250, None)] + list(steps)
        for line, want_code, frag in steps:
            if isinstance(line, bytes):
                c.send(line)
                codes = want_code
                frags = frag
                for i in range(len(codes)):
                    rc, rt = c.reply()
                    got.append((rc, " ".join(rt)))
                    check_reply(line, rc, " ".join(rt), codes[i], frags[i])
                continue
            rc, rt = c.cmd(line)
            text = " ".join(rt)
            got.append((rc, text))
            check_reply(line, rc, text, want_code, frag)
        c.send(b"QUIT\r\n")
    return got


def check_reply(line, code, text, want_code, frag):
    """check_reply - one reply against its expectation."""
    where = "%r -> %d %s" % (line, code, text)
    if want_code is not None:
        assert code == want_code, where
    if frag is not None:
        assert frag in "%d %s" % (code, text), "%s (expected %r)" % (where, frag)


def mail(sender):
    """mail - the MAIL FROM command line for sender."""
    return "MAIL FROM:<%s>" % sender


def rcpt(r):
    """rcpt - the RCPT TO command line for r."""
    return "RCPT TO:<%s>" % r


NET = "sender@example.net"

# (id, params, tables, source, steps, uses_dns, helo_cmd)
CASES = [
    # ---- relay control (the defaults: never an open relay) ----
    ("relay-default-outside", {}, None, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("bob@example.com"), 554, "554 5.7.1 <bob@example.com>: Relay access denied")]),
    ("relay-default-inside", {}, None, INSIDE,
     [(mail(NET), 250, None), (rcpt("bob@example.com"), 250, None)]),
    ("relay-local-domain-outside", {}, None, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None)]),
    ("defer-unauth-destination",
     {"smtpd_relay_restrictions": "permit_mynetworks, defer_unauth_destination"}, None, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("bob@example.com"), 454, "454 4.7.1 <bob@example.com>: Relay access denied")]),
    ("permit-auth-destination",
     {"smtpd_recipient_restrictions": "permit_auth_destination, reject"}, None, INSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None),
      (rcpt("bob@example.com"), 554,
       "554 5.7.1 <bob@example.com>: Recipient address rejected: Access denied")]),
    # ---- generic restrictions in the client list ----
    ("client-reject", {"smtpd_client_restrictions": "reject"}, None, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 554,
       "554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied")]),
    ("client-mynetworks-inside", {"smtpd_client_restrictions": "permit_mynetworks, reject"},
     None, INSIDE, [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None)]),
    ("client-defer", {"smtpd_client_restrictions": "defer"}, None, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 450,
       "450 4.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied")]),
    ("permit-ends-one-list",
     {"smtpd_client_restrictions": "permit", "smtpd_recipient_restrictions": "reject"}, None,
     OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 554,
       "554 5.7.1 <root@localhost>: Recipient address rejected: Access denied")]),
    ("dunno-goes-on", {"smtpd_client_restrictions": "dunno, reject"}, None, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 554, "Client host rejected")]),
    ("unknown-client-hostname", {"smtpd_client_restrictions": "reject_unknown_client_hostname"},
     None, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 450,
       "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.2]")]),
    ("defer-if-permit", {"smtpd_client_restrictions": "defer_if_permit"}, None, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 450,
       "450 4.7.1 <unknown[127.0.0.2]>: Client host rejected: defer_if_permit requested")]),
    ("defer-if-permit-then-reject",
     {"smtpd_client_restrictions": "defer_if_permit",
      "smtpd_recipient_restrictions": "reject"}, None, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 554, "Recipient address rejected")]),
    ("defer-if-reject", {"smtpd_client_restrictions": "defer_if_reject, reject"}, None, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 450,
       "450 4.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied")]),
    ("warn-if-reject", {"smtpd_sender_restrictions": "warn_if_reject, reject_non_fqdn_sender"},
     None, OUTSIDE, [(mail("joe@localhost"), 250, None), (rcpt("root@localhost"), 250, None)]),
    # ---- HELO ----
    ("helo-invalid", {"smtpd_helo_restrictions": "reject_invalid_helo_hostname"}, None, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 501, "501 5.5.2 <-bad->: Helo command rejected: Invalid name")],
     False, "EHLO -bad-"),
    ("helo-non-fqdn", {"smtpd_helo_restrictions": "reject_non_fqdn_helo_hostname"}, None,
     OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 504,
       "504 5.5.2 <localpc>: Helo command rejected: need fully-qualified hostname")],
     False, "EHLO localpc"),
    ("helo-fqdn-ok",
     {"smtpd_helo_restrictions": "reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname"},
     None, OUTSIDE, [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None)],
     False, "EHLO mail.example.org"),
    ("helo-literal-ok",
     {"smtpd_helo_restrictions": "reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname"},
     None, OUTSIDE, [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None)],
     False, "EHLO [127.0.0.2]"),
    # ---- sender and recipient syntax, unlisted recipients ----
    ("sender-non-fqdn", {"smtpd_sender_restrictions": "reject_non_fqdn_sender"}, None, OUTSIDE,
     [(mail("joe@localhost"), 250, None),
      (rcpt("root@localhost"), 504,
       "504 5.5.2 <joe@localhost>: Sender address rejected: need fully-qualified address")]),
    ("recipient-non-fqdn", {"smtpd_recipient_restrictions": "reject_non_fqdn_recipient"}, None,
     OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 504,
       "504 5.5.2 <root@localhost>: Recipient address rejected: need fully-qualified address"),
      (rcpt("root@localhost.localdomain.example"), 554, "Relay access denied")]),
    ("unlisted-recipient", {"smtpd_recipient_restrictions": "reject_unlisted_recipient",
                            "smtpd_reject_unlisted_recipient": "no"}, None, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("no-such-user-xyz@localhost"), 550,
       "550 5.1.1 <no-such-user-xyz@localhost>: Recipient address rejected: "
       "User unknown in local recipient table")]),
    # ---- DNS: unknown domains ----
    ("unknown-sender-domain", {"smtpd_sender_restrictions": "reject_unknown_sender_domain"},
     None, OUTSIDE,
     [(mail("a@nx.test"), 250, None),
      (rcpt("root@localhost"), 450,
       "450 4.1.8 <a@nx.test>: Sender address rejected: Domain not found")], True),
    ("unknown-sender-domain-550",
     {"smtpd_sender_restrictions": "reject_unknown_sender_domain",
      "unknown_address_reject_code": "550"}, None, OUTSIDE,
     [(mail("a@nx.test"), 250, None),
      (rcpt("root@localhost"), 550,
       "550 5.1.8 <a@nx.test>: Sender address rejected: Domain not found")], True),
    ("known-sender-domains", {"smtpd_sender_restrictions": "reject_unknown_sender_domain"},
     None, OUTSIDE,
     [(mail("a@ok.test"), 250, None), (rcpt("root@localhost"), 250, None),
      ("RSET", 250, None), (mail("a@mx.test"), 250, None), (rcpt("root@localhost"), 250, None)],
     True),
    ("sender-domain-tempfail", {"smtpd_sender_restrictions": "reject_unknown_sender_domain"},
     None, OUTSIDE,
     [(mail("a@x.refused.test"), 250, None),
      (rcpt("root@localhost"), 450,
       "450 4.1.8 <a@x.refused.test>: Sender address rejected: Domain not found")], True),
    ("nullmx-sender", {"smtpd_sender_restrictions": "reject_unknown_sender_domain"}, None, OUTSIDE,
     [(mail("a@nullmx.test"), 250, None),
      (rcpt("root@localhost"), 550, "550 5.7.27 <a@nullmx.test>: Sender address rejected: "
       "Domain nullmx.test does not accept mail (nullMX)")], True),
    ("nullmx-recipient", {"smtpd_recipient_restrictions": "reject_unknown_recipient_domain"},
     None, INSIDE,
     [(mail(NET), 250, None),
      (rcpt("u@nullmx.test"), 556, "556 5.1.10 <u@nullmx.test>: Recipient address rejected: "
       "Domain nullmx.test does not accept mail (nullMX)")], True),
    ("unknown-recipient-domain",
     {"smtpd_recipient_restrictions": "reject_unknown_recipient_domain"}, None, INSIDE,
     [(mail(NET), 250, None),
      (rcpt("u@nx.test"), 450,
       "450 4.1.2 <u@nx.test>: Recipient address rejected: Domain not found"),
      (rcpt("u@ok.test"), 250, None)], True),
    # ---- DNS blocklists ----
    ("rbl-listed", {"smtpd_client_restrictions": "reject_rbl_client rbl.test"}, None, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 554,
       "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using rbl.test; "
       "Listed for testing")], True),
    ("rbl-not-listed", {"smtpd_client_restrictions": "reject_rbl_client rbl.test"}, None, INSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None)], True),
    ("rbl-no-txt", {"smtpd_client_restrictions": "reject_rbl_client rbl2.test"}, None, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 554,
       "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using rbl2.test")], True),
    ("rbl-filter-mismatch", {"smtpd_client_restrictions": "reject_rbl_client rbl.test=127.0.0.4"},
     None, OUTSIDE, [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None)], True),
    ("rbl-filter-match", {"smtpd_client_restrictions": "reject_rbl_client rbl.test=127.0.0.2"},
     None, OUTSIDE, [(mail(NET), 250, None), (rcpt("root@localhost"), 554, "blocked using")],
     True),
    ("rhsbl-sender", {"smtpd_sender_restrictions": "reject_rhsbl_sender dbl.test"}, None, OUTSIDE,
     [(mail("a@spam.example"), 250, None),
      (rcpt("root@localhost"), 554,
       "554 5.7.1 Service unavailable; Sender address [spam.example] blocked using dbl.test")],
     True),
    # ---- access tables: each kind of result ----
    ("client-access-reject-text",
     {"smtpd_client_restrictions": "check_client_access TABLE:ca"}, {"ca": "127.0.0.2 REJECT go away\n"},
     OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 554, "554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: go away")]),
    ("client-access-network",
     {"smtpd_client_restrictions": "check_client_access TABLE:ca"}, {"ca": "127.0 REJECT\n"},
     OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 554,
       "554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied")]),
    ("client-access-ok",
     {"smtpd_client_restrictions": "check_client_access TABLE:ca, reject"},
     {"ca": "127.0.0.2 OK\n"}, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None)]),
    ("client-access-numeric",
     {"smtpd_client_restrictions": "check_client_access TABLE:ca"},
     {"ca": "127.0.0.2 450 4.7.0 come back later\n"}, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 450, "450 4.7.0 come back later")]),
    ("client-access-numeric-no-dsn",
     {"smtpd_client_restrictions": "check_client_access TABLE:ca"},
     {"ca": "127.0.0.2 521 go away now\n"}, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 521, "521 5.7.1 go away now")]),
    ("client-access-defer",
     {"smtpd_client_restrictions": "check_client_access TABLE:ca"}, {"ca": "127.0.0.2 DEFER\n"},
     OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 450,
       "450 4.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied")]),
    ("client-access-dunno-stops",
     {"smtpd_client_restrictions": "check_client_access TABLE:ca"},
     {"ca": "127.0.0.2 DUNNO\n127.0.0 REJECT\n"}, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None)]),
    ("client-access-permit-restriction",
     {"smtpd_client_restrictions": "check_client_access TABLE:ca, reject"},
     {"ca": "127.0.0.2 permit_mynetworks\n127.0.0.1 permit_mynetworks\n"}, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 554, "Client host rejected")]),
    ("client-access-bad-action",
     {"smtpd_client_restrictions": "check_client_access TABLE:ca"},
     {"ca": "127.0.0.2 FROBNICATE\n"}, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 451,
       "451 4.3.5 <unknown[127.0.0.2]>: Client host rejected: Server configuration error")]),
    ("sender-access-reject",
     {"smtpd_sender_restrictions": "check_sender_access TABLE:sa"},
     {"sa": "spammer@example.net REJECT\n"}, OUTSIDE,
     [(mail("spammer@example.net"), 250, None),
      (rcpt("root@localhost"), 554,
       "554 5.7.1 <spammer@example.net>: Sender address rejected: Access denied")]),
    ("sender-access-parent-domain",
     {"smtpd_sender_restrictions": "check_sender_access TABLE:sa"},
     {"sa": "example.org 550 5.7.0 no mail from you\n"}, OUTSIDE,
     [(mail("a@sub.example.org"), 250, None),
      (rcpt("root@localhost"), 550, "550 5.7.0 no mail from you")]),
    ("sender-access-user-at",
     {"smtpd_sender_restrictions": "check_sender_access TABLE:sa"},
     {"sa": "carol@ REJECT carol is not welcome\n"}, OUTSIDE,
     [(mail("carol@example.net"), 250, None),
      (rcpt("root@localhost"), 554,
       "554 5.7.1 <carol@example.net>: Sender address rejected: carol is not welcome")]),
    ("sender-access-null",
     {"smtpd_sender_restrictions": "check_sender_access TABLE:sa"},
     {"sa": "<> REJECT no bounces here\n"}, OUTSIDE,
     [(mail(""), 250, None),
      (rcpt("root@localhost"), 554, "554 5.7.1 <>: Sender address rejected: no bounces here")]),
    ("recipient-access-reject",
     {"smtpd_recipient_restrictions": "check_recipient_access TABLE:ra"},
     {"ra": "blocked@localhost REJECT nope\n"}, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("blocked@localhost"), 554,
       "554 5.7.1 <blocked@localhost>: Recipient address rejected: nope"),
      (rcpt("root@localhost"), 250, None)]),
    ("recipient-access-restriction-name",
     {"smtpd_recipient_restrictions": "check_recipient_access TABLE:ra"},
     {"ra": "root@localhost reject\n"}, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 554,
       "554 5.7.1 <root@localhost>: Recipient address rejected: Access denied")]),
    ("relay-by-recipient-access",
     {"smtpd_relay_restrictions":
      "permit_mynetworks, check_recipient_access TABLE:ra, reject_unauth_destination"},
     {"ra": "partner.example OK\n"}, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("bob@partner.example"), 250, None),
      (rcpt("bob@example.com"), 554, "Relay access denied")]),
    ("helo-access",
     {"smtpd_helo_restrictions": "check_helo_access TABLE:ha"},
     {"ha": "helo.test REJECT\n"}, OUTSIDE,
     [(mail(NET), 250, None),
      (rcpt("root@localhost"), 554,
       "554 5.7.1 <x.helo.test>: Helo command rejected: Access denied")],
     False, "EHLO x.helo.test"),
    ("restriction-class",
     {"smtpd_restriction_classes": "strict", "strict": "reject_non_fqdn_sender",
      "smtpd_recipient_restrictions": "check_recipient_access TABLE:ra"},
     {"ra": "root@localhost strict\n"}, OUTSIDE,
     [(mail("joe@localhost"), 250, None),
      (rcpt("root@localhost"), 504, "Sender address rejected: need fully-qualified address"),
      (rcpt("postmaster@localhost"), 250, None)]),
    ("sender-login-mismatch",
     {"smtpd_sender_restrictions": "reject_sender_login_mismatch",
      "smtpd_sender_login_maps": "TABLE:logins"},
     {"logins": "owned@example.net alice\n"}, OUTSIDE,
     [(mail("owned@example.net"), 250, None),
      (rcpt("root@localhost"), 553,
       "553 5.7.1 <owned@example.net>: Sender address rejected: not logged in"),
      ("RSET", 250, None), (mail("free@example.net"), 250, None),
      (rcpt("root@localhost"), 250, None)]),
    # ---- smtpd_delay_reject = no: answered at HELO/EHLO and MAIL ----
    ("nodelay-helo",
     {"smtpd_delay_reject": "no", "smtpd_helo_restrictions": "reject_non_fqdn_helo_hostname"},
     None, OUTSIDE,
     [("EHLO localpc", 504, "504 5.5.2 <localpc>: Helo command rejected: need fully-qualified"),
      ("HELO mail.example.org", 250, None), (mail(NET), 250, None)], False, None),
    ("nodelay-sender",
     {"smtpd_delay_reject": "no", "smtpd_sender_restrictions": "check_sender_access TABLE:sa"},
     {"sa": "spammer@example.net REJECT\n"}, OUTSIDE,
     [(mail("spammer@example.net"), 554,
       "554 5.7.1 <spammer@example.net>: Sender address rejected: Access denied"),
      (mail(NET), 250, None), (rcpt("root@localhost"), 250, None)]),
    ("nodelay-rbl-connect-ok",
     {"smtpd_delay_reject": "no", "smtpd_client_restrictions": "reject_rbl_client rbl.test"},
     None, INSIDE,
     [("EHLO client.example", 250, None), (mail(NET), 250, None),
      (rcpt("root@localhost"), 250, None)], True, None),
    ("nodelay-unknown-sender-at-mail",
     {"smtpd_delay_reject": "no", "smtpd_sender_restrictions": "reject_unknown_sender_domain"},
     None, OUTSIDE,
     [(mail("a@nx.test"), 450, "450 4.1.8 <a@nx.test>: Sender address rejected: Domain not found"),
      (mail("a@ok.test"), 250, None)], True),
    # ---- DATA and BDAT ----
    ("data-reject", {"smtpd_data_restrictions": "reject"}, None, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None),
      ("DATA", 554, "554 5.7.1 <DATA>: Data command rejected: Access denied")]),
    ("bdat-reject", {"smtpd_data_restrictions": "reject"}, None, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None),
      (b"BDAT 7 LAST\r\nhello\r\n", [554], ["554 5.7.1 <BDAT>: Data command rejected: Access denied"])]),
    ("end-of-data-reject", {"smtpd_end_of_data_restrictions": "reject"}, None, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None), ("DATA", 354, None),
      (b"Subject: eod\r\n\r\nhi\r\n.\r\n", [554],
       ["554 5.7.1 <END-OF-MESSAGE>: End-of-data rejected: Access denied"])]),
    ("end-of-data-bdat-rbl",
     {"smtpd_end_of_data_restrictions": "reject_rbl_client rbl.test"}, None, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None),
      (b"BDAT 7 LAST\r\nhello\r\n", [554],
       ["554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using rbl.test"])],
     True),
    ("data-rbl", {"smtpd_data_restrictions": "reject_rbl_client rbl.test"}, None, OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None),
      ("DATA", 554, "blocked using rbl.test")], True),
    ("data-unauth-pipelining", {"smtpd_data_restrictions": "reject_unauth_pipelining"}, None,
     OUTSIDE,
     [(mail(NET), 250, None), (rcpt("root@localhost"), 250, None),
      (b"DATA\r\nSubject: early\r\n\r\nhi\r\n.\r\n", [503],
       ["503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining"])]),
    ("helo-unauth-pipelining", {"smtpd_client_restrictions": "reject_unauth_pipelining"}, None,
     OUTSIDE,
     [(b"HELO client.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<root@localhost>\r\n"
       b"NOOP\r\n", [250, 250, 503, 250],
       [None, None, "503 5.5.0 <unknown[127.0.0.2]>: Client host rejected: Improper use of SMTP "
        "command pipelining", None])], False, None),
    ("ehlo-pipelining-allowed", {"smtpd_client_restrictions": "reject_unauth_pipelining"}, None,
     OUTSIDE,
     [(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<root@localhost>\r\nNOOP\r\n", [250, 250, 250],
       [None, None, None])]),
]


def case_id(c):
    """case_id - the test id of a case: its name."""
    return c[0]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_restriction(inst, request, case):
    """One case of CASES: every reply as Postfix gives it, every rejection logged."""
    name, params, tables, source, steps = case[:5]
    uses_dns = case[5] if len(case) > 5 else False
    helo_cmd = case[6] if len(case) > 6 else "EHLO client.example"
    port = request.getfixturevalue("dns") if uses_dns else None
    configure(inst, params, tables, port)
    inst.start()
    run_dialog(inst, source, steps, helo_cmd)
    log = inst.log()
    for line, code, frag in steps:
        codes = code if isinstance(code, list) else [code]
        if any(c is not None and c >= 400 and c not in (503,) for c in codes) or "pipelining" in str(frag):
            # every rejection by the engine is logged once, in Postfix's form
            assert re.search(r"(NOQUEUE|[0-9A-Za-z]+): reject: (CONNECT|HELO|EHLO|MAIL|RCPT|DATA|BDAT|END-OF-MESSAGE) from "
                             r"unknown\[127\.0\.0\.[12]\]: [45]\d\d [45]\.\d+\.\d+ .*"
                             r"proto=E?SMTP helo=<", log), log[-3000:]


@pytest.mark.parametrize("restriction,uses_dns,frag", [
    ("permit_mynetworks, reject", False,
     "554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied"),
    ("reject_rbl_client rbl.test", True,
     "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using rbl.test; "
     "Listed for testing"),
])
def test_nodelay_client_refused_at_connect(inst, request, restriction, uses_dns, frag):
    """smtpd_delay_reject = no: the refusal replaces the greeting; then 503 to all but QUIT."""
    port = request.getfixturevalue("dns") if uses_dns else None
    configure(inst, {"smtpd_delay_reject": "no", "smtpd_client_restrictions": restriction},
              None, port)
    inst.start()
    with inst.raw(source=OUTSIDE) as c:
        code, text = c.reply()
        assert code == 554 and frag in "%d %s" % (code, " ".join(text)), text
        for line in ("EHLO client.example", "MAIL FROM:<a@example.net>", "NOOP"):
            code, text = c.cmd(line)
            assert (code, " ".join(text)) == (
                503, "5.7.0 Error: access denied for unknown[127.0.0.2]"), (line, text)
        assert c.cmd("QUIT")[0] == 221
    log = inst.log()
    assert re.search(r"NOQUEUE: reject: CONNECT from unknown\[127\.0\.0\.2\]: %s; "
                     r"proto=SMTP$" % re.escape(frag), log, re.M), log


def test_reject_log_line(inst):
    """The reject line has Postfix's exact shape (pflogsumm, fail2ban read it)."""
    configure(inst, {}, None, None)
    inst.start()
    run_dialog(inst, OUTSIDE, [(mail("a@example.net"), 250, None),
                               (rcpt("bob@example.com"), 554, None)], "EHLO client.example")
    assert re.search(r"posta/smtpd\[\d+\]: NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.2\]: "
                     r"554 5\.7\.1 <bob@example\.com>: Relay access denied; "
                     r"from=<a@example\.net> to=<bob@example\.com> proto=ESMTP "
                     r"helo=<client\.example>$", inst.log(), re.M), inst.log()


def test_warn_if_reject_logs_warning(inst):
    configure(inst, {"smtpd_sender_restrictions": "warn_if_reject, reject_non_fqdn_sender"},
              None, None)
    inst.start()
    run_dialog(inst, OUTSIDE, [(mail("joe@localhost"), 250, None),
                               (rcpt("root@localhost"), 250, None)])
    assert re.search(r"NOQUEUE: reject_warning: RCPT from unknown\[127\.0\.0\.2\]: 504 5\.5\.2 "
                     r"<joe@localhost>: Sender address rejected: need fully-qualified address; "
                     r"from=<joe@localhost> to=<root@localhost>", inst.log()), inst.log()


def test_pipelined_transaction_with_lookups(inst, dns):
    """RCPT replies that wait for DNS keep their order; the message is queued."""
    configure(inst, {"smtpd_client_restrictions": "reject_rbl_client rbl.test",
                     "smtpd_sender_restrictions": "reject_unknown_sender_domain"}, None, dns)
    inst.start()
    with inst.raw(source=INSIDE) as c:
        assert c.reply()[0] == 220
        c.send(b"EHLO client.example\r\nMAIL FROM:<a@ok.test>\r\nRCPT TO:<root@localhost>\r\n"
               b"RCPT TO:<nobody-xyz@localhost>\r\nRCPT TO:<postmaster@localhost>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(6)]
        assert codes == [250, 250, 250, 550, 250, 354], codes
        c.send(b"Subject: pipelined\r\n\r\nhello\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, text
        c.send(b"QUIT\r\n")
    assert len(inst.complete_files()) == 1


def test_bdat_after_lookup(inst, dns):
    """BDAT waits for the data restrictions' lookup, then takes its chunk."""
    configure(inst, {"smtpd_data_restrictions": "reject_rbl_client rbl.test"}, None, dns)
    inst.start()
    body = b"Subject: chunk\r\n\r\nhello\r\n"
    with inst.raw(source=INSIDE) as c:
        c.greet()
        assert c.cmd("MAIL FROM:<a@example.net>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        code, text = c.reply()
        assert code == 250, text
    assert len(inst.complete_files()) == 1


def test_sender_login_mismatch_authenticated(inst, tmp_path):
    """An authenticated user may send only as the addresses smtpd_sender_login_maps gives it."""
    if shutil.which("dovecot") is None and not os.path.exists(tlshelp.DOVECOT):
        pytest.skip("dovecot not installed")
    configure(inst, {}, {"logins": "alice@example.net alice\nshared@example.net alice, bob\n"
                                   "bob@example.net bob\n"}, None)
    auth = tlshelp.DovecotAuth(tmp_path / "dovecot", inst.spool / "private" / "auth",
                               {"alice": "alice-pw", "bob": "bob-pw"})
    port = tlshelp.add_smtpd(inst, {
        "smtpd_tls_security_level": "encrypt",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": "private/auth",
        "smtpd_sender_login_maps": "texthash:%s" % (inst.etc / "logins"),
        "smtpd_sender_restrictions": "reject_sender_login_mismatch",
        "smtpd_relay_restrictions": "permit_sasl_authenticated,reject",
    })
    auth.start()
    try:
        inst.start()
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
            s.ehlo("client.example")
            s.starttls(context=tlshelp.client_ctx())
            s.ehlo("client.example")
            s.login("alice", "alice-pw")
            for sender, want, frag in (
                    ("alice@example.net", 250, None),
                    ("shared@example.net", 250, None),
                    ("bob@example.net", 553,
                     b"5.7.1 <bob@example.net>: Sender address rejected: not owned by user alice"),
                    ("nobody@example.net", 553, b"not owned by user alice")):
                assert s.mail(sender)[0] == 250
                code, text = s.rcpt("someone@remote.example")
                assert code == want, (sender, code, text)
                if frag is not None:
                    assert frag in text, text
                s.rset()
    finally:
        auth.stop()
    assert re.search(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 553 5\.7\.1 "
                     r"<bob@example\.net>: Sender address rejected: not owned by user alice; "
                     r"from=<bob@example\.net> to=<someone@remote\.example> proto=ESMTPSA",
                     inst.log()), inst.log()


def test_hash_table_rebuilt_without_restart(inst):
    """A hash: access table built by `posta map`: a rebuilt table is used at once."""
    source = inst.etc / "client_access"
    source.write_text("127.0.0.2 REJECT first version\n")
    r = inst.posta("map", "hash:%s" % source)
    assert r.returncode == 0, r.stdout + r.stderr
    configure(inst, {"smtpd_client_restrictions": "check_client_access hash:%s" % source},
              None, None)
    inst.start()
    run_dialog(inst, OUTSIDE, [(mail(NET), 250, None),
                               (rcpt("root@localhost"), 554, "Client host rejected: first version")])
    time.sleep(1.1)          # a new mtime, and past the dict layer's recheck interval
    source.write_text("127.0.0.2 REJECT second version\n")
    r = inst.posta("map", "hash:%s" % source)
    assert r.returncode == 0, r.stdout + r.stderr
    time.sleep(1.1)
    run_dialog(inst, OUTSIDE, [(mail(NET), 250, None),
                               (rcpt("root@localhost"), 554, "Client host rejected: second version")])


def silent_udp():
    """silent_udp - a bound UDP socket nobody reads: DNS questions to it time out."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def test_session_dropped_during_lookup(inst):
    """A client that hangs up while its RBL lookup runs: nothing crashes, others are served."""
    sink = silent_udp()
    try:
        configure(inst, {"smtpd_client_restrictions": "reject_rbl_client rbl.test"}, None,
                  sink.getsockname()[1])
        inst.start()
        c = inst.raw(source=OUTSIDE)
        c.greet()
        assert c.cmd("MAIL FROM:<a@example.net>")[0] == 250
        c.send(b"RCPT TO:<root@localhost>\r\n")
        time.sleep(0.3)
        # the event loop is not blocked by the pending lookup
        with inst.raw(source=INSIDE) as other:
            other.greet()
            assert other.cmd("NOOP")[0] == 250
        c.close()
        inst.wait_log(r"lost connection after RCPT from unknown\[127\.0\.0\.2\]")
        time.sleep(LOOKUP_PENDING_WAIT)     # the dropped session's lookup ends
        with inst.raw(source=INSIDE) as again:
            again.greet()
            assert again.cmd("NOOP")[0] == 250
    finally:
        sink.close()
    assert "panic" not in inst.log() and "fatal" not in inst.log(), inst.log()


FATAL_CASES = [
    ("typo", {"smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destinaton"},
     'fatal: smtpd_recipient_restrictions: unknown restriction: "reject_unauth_destinaton"'),
    ("missing-table", {"smtpd_client_restrictions": "check_client_access"},
     "fatal: smtpd_client_restrictions: restriction check_client_access requires a "
     "type:table argument"),
    ("missing-domain", {"smtpd_client_restrictions": "reject_rbl_client, permit"},
     "fatal: smtpd_client_restrictions: restriction reject_rbl_client requires a domain name"),
    ("table-cannot-open", {"smtpd_sender_restrictions": "check_sender_access hash:/nonexistent/x"},
     "fatal: smtpd_sender_restrictions: check_sender_access hash:/nonexistent/x"),
    ("no-relay-refusal", {"smtpd_relay_restrictions": "permit_mynetworks",
                          "smtpd_recipient_restrictions": "permit_mynetworks"},
     "specify at least one working instance of: reject_unauth_destination"),
    ("class-undefined", {"smtpd_restriction_classes": "nosuchclass"},
     'restriction class "nosuchclass" has no definition'),
]


@pytest.mark.parametrize("case", FATAL_CASES, ids=case_id)
def test_fatal_configuration(inst, case):
    """A bad list stops smtpd at start: the parameter and the word are named, no mail is taken."""
    _, params, message = case
    configure(inst, params, None, None)
    inst.killed_on_purpose = True
    # posta check names the problem, and posta start refuses to start
    r = inst.posta("check")
    assert r.returncode != 0 and message in r.stdout + r.stderr, r.stdout + r.stderr
    r = inst.posta("start")
    output = r.stdout + r.stderr
    assert r.returncode != 0, output
    assert message in output, output
    with pytest.raises(OSError):
        with helpers.RawSMTP(inst.port, timeout=2) as c:
            c.reply()


def test_fail2ban_and_pflogsumm(inst, tmp_path):
    """With syslog_name = postfix the reject lines are what fail2ban and pflogsumm read."""
    fail2ban = shutil.which("fail2ban-regex")
    if fail2ban is None:
        pytest.skip("fail2ban is not installed")
    configure(inst, {"syslog_name": "postfix",
                     "smtpd_helo_restrictions": "reject_non_fqdn_helo_hostname"}, None, None)
    inst.start()
    run_dialog(inst, OUTSIDE, [(mail("a@example.net"), 250, None),
                               (rcpt("bob@example.com"), 554, "Relay access denied")])
    run_dialog(inst, OUTSIDE, [(mail("a@example.net"), 250, None),
                               (rcpt("root@localhost"), 504, "need fully-qualified hostname")],
               "EHLO localpc")
    inst.wait_log(r"postfix/smtpd\[\d+\]: NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.2\]: 504")
    logfile = tmp_path / "mail.log"
    logfile.write_text(inst.log())
    r = subprocess.run([fail2ban, str(logfile), "/etc/fail2ban/filter.d/postfix.conf"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    m = re.search(r"^Lines: \d+ lines, \d+ ignored, (\d+) matched", r.stdout, re.M)
    assert m and int(m.group(1)) >= 2, r.stdout
    pflogsumm = shutil.which("pflogsumm")
    if pflogsumm is not None:
        r = subprocess.run([pflogsumm, "--detail", "10", str(logfile)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        assert r.returncode == 0, r.stdout
        assert re.search(r"^\s*2\s+rejected", r.stdout, re.M), r.stdout
        assert "Relay access denied" in r.stdout, r.stdout
