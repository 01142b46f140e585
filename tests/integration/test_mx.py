"""test_mx.py - MX routing of posta's smtp client in network namespaces (issue 4)

A lab (netlab.Lab) with its own DNS server (dnsmasq, at 10.77.0.53) and
three hosts: "mercurio" (10.77.0.10) runs the posta instance that sends
(myhostname mx.mercurio.test, resolver = the lab's DNS through
dns_servers), "peers" holds 10.77.0.21 (nothing listens: a refused
connection), 10.77.0.22 and 10.77.0.23 (aiosmtpd capture peers on port
25). The zone:

  two.test      MX 10 mx1.two.test (10.77.0.21, or 10.77.0.99 which no
                host has: silent), MX 20 mx2.two.test (10.77.0.22)
  amx.test      no MX; A 10.77.0.23
  null.test     Null MX "0 ." (RFC 7505)
  nosuch.test   NXDOMAIN (dnsmasq --local=/test/)
  broken.test   SERVFAIL (forwarded to peers/dns_servfail.py)
  loop.test     MX 10 mx.mercurio.test, the sender itself
  relay.test    MX 10 mx2.two.test (for relayhost = relay.test)

and the expected outcomes: the preferred MX down -> delivered through the
second; no MX but an A record -> delivered there; Null MX -> bounced at
once with 5.1.10; NXDOMAIN -> bounced; SERVFAIL -> deferred and kept;
an MX that is this host -> bounced "loops back to myself"; relayhost in
its "host" (MX lookup) and "[host]" (address lookup only) forms; the
preferred MX answering 451 -> the next one; relay_domains (relayed.test,
MX mx2.two.test) accepted from a host outside mynetworks, with unknown
users rejected by relay_recipient_maps and other domains refused.

DIAGNOSTICS: every wait is bounded; failures quote posta's log, the
peer's output and dnsmasq's query log (DIR/lab/dns/dnsmasq.log).
"""

import re
import time

import pytest

import dsn_check
import helpers
import netlab

pytestmark = pytest.mark.delivery

WAIT = 20.0
QUIET_WAIT = 3.0
MERCURIO = 10
MX1, MX2, AONLY = "10.77.0.21", "10.77.0.22", "10.77.0.23"
NOWHERE = "10.77.0.99"      # in the subnet, on no host: connects time out


class MxLab:
    """MxLab - the lab of this file: DNS, the sending posta, the peers."""

    def __init__(self, lab, make_posta, mx1_addr=MX1, relayhost=None, mx1_tempfail=False,
                 params=None):
        self.lab = lab
        dns = lab.dns()
        self.dns = dns
        self.sender_host = lab.host("mercurio", MERCURIO)
        self.peer_host = lab.host("peers", MX1, MX2, AONLY)
        (dns.mx("two.test", "mx1.two.test", 10).mx("two.test", "mx2.two.test", 20)
            .a("mx1.two.test", mx1_addr).a("mx2.two.test", MX2)
            .a("amx.test", AONLY)
            .null_mx("null.test")
            .servfail("broken.test")
            .mx("loop.test", "mx.mercurio.test", 10)
            .a("mx.mercurio.test", self.sender_host.addr)
            .mx("relay.test", "mx2.two.test", 10)
            .mx("relayed.test", "mx2.two.test", 10)
            .start())
        self.mx1 = None
        if mx1_tempfail:
            # up, but answering 451 to everything: the client must move on
            self.mx1 = netlab.Peer(lab, lab.root / "mx1", "tempfail.py", host=self.peer_host,
                                   listen="%s:25" % MX1, args=["--tempfail", "1000"])
        self.mx2 = netlab.Peer(lab, lab.root / "mx2", "capture.py", host=self.peer_host,
                               listen="%s:25" % MX2)
        self.aonly = netlab.Peer(lab, lab.root / "aonly", "capture.py", host=self.peer_host,
                                 listen="%s:25" % AONLY)
        lab.wait_reachable(self.sender_host, MX2)
        self.posta = make_posta("mercurio", host=self.sender_host, hostname="mx.mercurio.test",
                                mydestination="mercurio.test, $myhostname, localhost")
        self.posta.set_param("myorigin", "mercurio.test")
        self.posta.set_param("smtpd_error_sleep_time", "0s")
        if relayhost:
            self.posta.set_param("relayhost", relayhost)
        for name, value in (params or {}).items():
            self.posta.set_param(name, value)
        self.posta.start()

    def context(self):
        """context - the logs a failure should show."""
        return "posta log:\n%s\ndnsmasq:\n%s" % (
            self.posta.log()[-4000:], self.dns.log.read_text(errors="replace")[-2000:])


@pytest.fixture
def mxlab(lab, make_posta):
    """mxlab - the standard MxLab of this file."""
    return MxLab(lab, make_posta)


def sent_re(rcpt, host, addr):
    """sent_re - the log line of a delivery of rcpt through host[addr]:25."""
    return (r"to=<%s>, relay=%s\[%s\]:25, delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/"
            r"[0-9.]+, dsn=2\.0\.0, status=sent \(250 " % (
                re.escape(rcpt), re.escape(host), re.escape(addr)))


@pytest.mark.parametrize("down", ["refused", "silent", "451"])
def test_preferred_mx_down_second_used(lab, make_posta, down):
    m = MxLab(lab, make_posta, mx1_addr=MX1 if down != "silent" else NOWHERE,
              mx1_tempfail=down == "451")
    subject = helpers.token("mx2")
    rcpt = "user@two.test"
    assert netlab.send(m.posta, "sender@mercurio.test", rcpt, subject) == {}
    msgs = m.mx2.wait_messages(1, WAIT, m.context)
    assert msgs[0]["rcpts"] == [rcpt], msgs[0]
    assert subject.encode() in msgs[0]["raw"]
    m.posta.wait_log(sent_re(rcpt, "mx2.two.test", MX2))
    m.posta.wait_queue_empty()
    assert m.aonly.events("message") == []
    if m.mx1 is not None:
        # the preferred MX was tried first and said 451 to this recipient
        said = [e for e in m.mx1.events("rcpt") if e["address"] == rcpt]
        assert said and said[0]["reply"].startswith("451"), m.mx1.events()
        assert said[0]["t"] <= msgs[0]["t"], "mx2 was used before mx1 was tried"


def test_no_mx_uses_a_record(mxlab):
    subject = helpers.token("amx")
    rcpt = "user@amx.test"
    assert netlab.send(mxlab.posta, "sender@mercurio.test", rcpt, subject) == {}
    msgs = mxlab.aonly.wait_messages(1, WAIT, mxlab.context)
    assert msgs[0]["rcpts"] == [rcpt]
    mxlab.posta.wait_log(sent_re(rcpt, "amx.test", AONLY))
    mxlab.posta.wait_queue_empty()


def test_null_mx_bounces_at_once(mxlab, users):
    alice = users.alice
    sender = "%s@mercurio.test" % alice.name
    subject = helpers.token("nullmx")
    rcpt = "user@null.test"
    t0 = time.monotonic()
    assert netlab.send(mxlab.posta, sender, rcpt, subject) == {}
    mxlab.posta.wait_log(r"to=<%s>, relay=[^,]*, .*dsn=5\.1\.10, status=bounced"
                         % re.escape(rcpt))
    report = netlab.wait_report(mxlab.posta, mxlab.posta.mbox(alice.name), subject)
    dsn_check.check_dsn(report.as_bytes(), final_recipient=rcpt, status="5.1.10",
                        action="failed", ret=None)
    assert time.monotonic() - t0 < WAIT
    assert not re.search(r"to=<%s>.*status=deferred" % re.escape(rcpt), mxlab.posta.log()), \
        "a Null MX must bounce at once, not defer:\n" + mxlab.posta.log()[-3000:]
    mxlab.posta.wait_queue_empty()


def test_unknown_domain_bounces(mxlab, users):
    alice = users.alice
    sender = "%s@mercurio.test" % alice.name
    subject = helpers.token("nxdomain")
    rcpt = "user@nosuch.test"
    assert netlab.send(mxlab.posta, sender, rcpt, subject) == {}
    mxlab.posta.wait_log(r"to=<%s>, relay=[^,]*, .*dsn=5\.\d\.\d+, status=bounced \("
                         r"Host or domain name not found" % re.escape(rcpt))
    report = netlab.wait_report(mxlab.posta, mxlab.posta.mbox(alice.name), subject)
    blocks = dsn_check.delivery_status(report)
    assert any(b.get("final-recipient", "").endswith(rcpt) and b.get("action") == "failed"
               for b in blocks[1:]), blocks
    mxlab.posta.wait_queue_empty()


def test_servfail_defers(mxlab):
    subject = helpers.token("servfail")
    rcpt = "user@broken.test"
    assert netlab.send(mxlab.posta, "sender@mercurio.test", rcpt, subject) == {}
    mxlab.posta.wait_log(r"to=<%s>, relay=[^,]*, .*dsn=4\.\d\.\d+, status=deferred \("
                         % re.escape(rcpt))
    time.sleep(QUIET_WAIT)
    log = mxlab.posta.log()
    assert not re.search(r"to=<%s>.*status=(bounced|sent)" % re.escape(rcpt), log), log[-3000:]
    js = mxlab.posta.queue_json()
    assert len(js) == 1 and js[0]["recipients"][0]["address"] == rcpt, js
    text = netlab.queue_text(mxlab.posta)
    assert rcpt in text and "broken.test" in text, text


def test_mx_pointing_at_myself_bounces(mxlab, users):
    alice = users.alice
    sender = "%s@mercurio.test" % alice.name
    subject = helpers.token("loop")
    rcpt = "user@loop.test"
    assert netlab.send(mxlab.posta, sender, rcpt, subject) == {}
    mxlab.posta.wait_log(r"to=<%s>, relay=[^,]*, .*dsn=5\.4\.6, status=bounced \(mail for "
                         r"loop\.test loops back to myself\)" % re.escape(rcpt))
    report = netlab.wait_report(mxlab.posta, mxlab.posta.mbox(alice.name), subject)
    dsn_check.check_dsn(report.as_bytes(), final_recipient=rcpt, status="5.4.6",
                        action="failed", ret=None)
    mxlab.posta.wait_queue_empty()
    # it never connected to itself: the only smtpd sessions are the test's own
    assert "connect from mx.mercurio.test" not in mxlab.posta.log()


@pytest.mark.parametrize("relayhost", ["relay.test", "[mx2.two.test]", "[mx2.two.test]:25",
                                       "[%s]" % MX2])
def test_relayhost_forms(lab, make_posta, relayhost):
    m = MxLab(lab, make_posta, relayhost=relayhost)
    subject = helpers.token("relayhost")
    # the recipient's domain does not even exist: only the relayhost matters
    rcpt = "user@nosuch.test"
    assert netlab.send(m.posta, "sender@mercurio.test", rcpt, subject) == {}
    msgs = m.mx2.wait_messages(1, WAIT, m.context)
    assert msgs[0]["rcpts"] == [rcpt]
    host = MX2 if relayhost.startswith("[10.") else "mx2.two.test"
    m.posta.wait_log(sent_re(rcpt, host, MX2))
    m.posta.wait_queue_empty()
    queries = m.dns.log.read_text(errors="replace")
    if relayhost.startswith("[mx2"):
        # [host]: addresses only, no MX lookup of the relay host
        assert not re.search(r"query\[MX\] mx2\.two\.test", queries), queries
    if relayhost.startswith("[10."):
        assert not re.search(r"query\[(MX|A)\] (mx2\.two\.test|nosuch\.test)", queries), queries


RELAY_KNOWN = "known@relayed.test"


def test_relay_domains_from_outside(lab, make_posta, tmp_path):
    (tmp_path / "relay_recipients").write_text("%s ok\n" % RELAY_KNOWN)
    m = MxLab(lab, make_posta, params={
        "mynetworks": "127.0.0.0/8",
        "relay_domains": "relayed.test",
        "relay_recipient_maps": "texthash:%s" % (tmp_path / "relay_recipients"),
    })
    outsider = lab.host("outsider", 40)
    lab.wait_reachable(outsider, m.sender_host.addr)
    subject = helpers.token("relaydom")
    with netlab.entered(outsider.ns):
        c = helpers.RawSMTP(netlab.SMTP_PORT, host=m.sender_host.addr)
    with c:
        c.greet()
        assert c.cmd("MAIL FROM:<someone@elsewhere.test>")[0] == 250
        # a relay domain: accepted from anyone, known users only
        code, text = c.cmd("RCPT TO:<%s>" % RELAY_KNOWN)
        assert code == 250, (code, text)
        code, text = c.cmd("RCPT TO:<unknown@relayed.test>")
        assert code == 550 and text[0].startswith("5.1.1"), (code, text)
        # any other domain: no open relay
        code, text = c.cmd("RCPT TO:<user@two.test>")
        assert code == 554 and text[0].startswith("5.7.1"), (code, text)
        assert c.cmd("DATA")[0] == 354
        c.send(("Subject: %s\r\n\r\nrelayed\r\n.\r\n" % subject).encode())
        code, text = c.reply()
        assert code == 250, (code, text)
        c.cmd("QUIT")
    msgs = m.mx2.wait_messages(1, WAIT, m.context)
    assert msgs[0]["rcpts"] == [RELAY_KNOWN], msgs[0]
    m.posta.wait_log(sent_re(RELAY_KNOWN, "mx2.two.test", MX2))
    m.posta.wait_queue_empty()
