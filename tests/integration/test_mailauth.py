"""test_mailauth.py - smtpd and pickup with SPF, DKIM, DMARC and Authentication-Results (issue 7)

A dnsmasq started by each test on 127.0.0.1 (random port, dns_servers in
main.cf) serves the DKIM keys, SPF and DMARC records; it is
authoritative for the test zones (--local), so a missing name is
NXDOMAIN. SMTP clients come from 127.0.0.x source addresses.

  - signing: mail from a mynetworks client and mail submitted with
    sendmail (pickup) is relayed to a capture peer (netlab.Peer
    capture.py) with a DKIM-Signature that dkimpy (python3-dkim)
    verifies, for keys made by `posta dkim keygen` (rsa and ed25519),
    also after a relay hop re-folds a signed header (relaxed); the
    signature is completed by the queue manager after the 250 (a pending
    field in the queue file), also when a crash left it half written;
  - verification: messages signed by dkimpy (valid, body changed, header
    changed, wrong key, missing key) get dkim= pass / fail / fail /
    fail / permerror, as dkimpy judges them;
  - SPF pass / fail / softfail / none in Authentication-Results;
    spf_fail_action = reject refuses MAIL FROM with 550 5.7.23;
  - DMARC: p=reject with a forged From is refused 550 5.7.1 (nothing
    queued); relaxed alignment through a subdomain passes; p=none only
    adds the header; p=quarantine goes to the hold queue;
  - an incoming Authentication-Results field claiming our authserv-id
    is removed, another id is kept; ours comes right after Received.

No network beyond 127.0.0.1.
"""

import os
import re
import subprocess
import time

import pytest

import conftest
import helpers
import netlab

dkim = pytest.importorskip("dkim")

DNSMASQ = "/usr/sbin/dnsmasq"
SENDMAIL = conftest.BUILD / "bin" / "sendmail"
AUTHSERV = "mx.test.example"
ZONES = ("example.org", "example.net", "example.com", "example.edu")
TXT_STRING_MAX = 255
WAIT = 20.0
DNS_READY = 5.0
DNS_START_TRIES = 5         # a port taken between the choice and dnsmasq's bind
INSIDE = "127.0.0.1"        # mynetworks
PASS_IP = "127.0.0.2"       # allowed by the SPF records below
OTHER_IP = "127.0.0.3"      # allowed by none
RCPT = "root@localhost"
REMOTE_RCPT = "someone@remote.example"

SPF_RECORDS = [
    ("pass.example.net", "v=spf1 ip4:%s -all" % PASS_IP),
    ("soft.example.net", "v=spf1 ip4:127.0.0.9 ~all"),
    ("mail.example.org", "v=spf1 ip4:%s -all" % PASS_IP),
    ("example.edu", "v=spf1 ip4:127.0.0.9 -all"),
]
DMARC_RECORDS = [
    ("_dmarc.example.org", "v=DMARC1; p=reject; adkim=r; aspf=r"),
    ("_dmarc.example.net", "v=DMARC1; p=none"),
    ("_dmarc.example.edu", "v=DMARC1; p=quarantine"),
]


def message(frm, subject, extra=b"", body=b"Hello,\r\n\r\nthis is a test.\r\n"):
    """message - a small RFC 5322 message (CRLF)."""
    return (b"From: " + frm.encode() + b"\r\n"
            b"To: Root <root@localhost>\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
            b"Message-ID: <" + helpers.token("m").encode() + b"@example.org>\r\n"
            + extra + b"\r\n" + body)


def keygen(inst_dir, domain, selector, ktype="rsa"):
    """keygen - `posta dkim keygen`: (key path, qname, record)."""
    return helpers.dkim_keygen(conftest.POSTA, inst_dir, domain, selector, ktype)


class Dns:
    """Dns - a dnsmasq on 127.0.0.1:port serving TXT records for the test zones."""

    def __init__(self, root, records):
        if not os.access(DNSMASQ, os.X_OK):
            pytest.fail("dnsmasq is not installed (Debian dnsmasq-base)")
        self.log = root / "dnsmasq.log"
        for _ in range(DNS_START_TRIES):
            self.port = helpers.free_dns_port()
            if self._start(records):
                return
        pytest.fail("dnsmasq did not start: %s" % self.log.read_text())

    def _start(self, records):
        """_start - run dnsmasq on self.port; False when another program took the port first."""
        cmd = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
               "--pid-file", "--bind-interfaces", "--listen-address=127.0.0.1",
               "--port=%d" % self.port, "--cache-size=0", "--user=root", "--log-queries"]
        cmd += ["--local=/%s/" % z for z in ZONES]
        for name, txt in records:
            # dnsmasq's strings: comma-separated pieces of at most 255 bytes
            parts = [txt[i:i + TXT_STRING_MAX] for i in range(0, len(txt), TXT_STRING_MAX)]
            cmd.append("--txt-record=%s,%s" % (name, ",".join(parts)))
        with open(self.log, "wb") as lf:
            self.proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
        time.sleep(0.3)
        if self.proc.poll() is None:
            return True
        assert "Address already in use" in self.log.read_text(), self.log.read_text()
        return False

    def stop(self):
        """stop - end our dnsmasq (by its pid)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def dns_factory(tmp_path):
    """dns_factory - dns_factory(records): a started Dns, stopped afterwards."""
    made = []

    def make(records):
        d = Dns(tmp_path, records)
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()


def configure_inbound(inst, dns, **params):
    """configure_inbound - judge mail from 127.0.0.2+ with the test's DNS."""
    inst.set_param("dns_servers", "127.0.0.1:%d" % dns.port)
    inst.set_param("mynetworks", "%s/32" % INSIDE)
    inst.set_param("smtpd_peername_lookup", "no")
    inst.set_param("authserv_id", AUTHSERV)
    inst.set_param("smtpd_error_sleep_time", "0s")
    for k, v in params.items():
        inst.set_param(k, v)
    inst.start()


def send(inst, source, mail_from, data, rcpt=RCPT, helo="client.example.net"):
    """send - one transaction: ("queued", qid) or ("refused", (stage, code, text))."""
    with inst.smtp(source=source) as c:
        c.ehlo(helo)
        code, text = c.mail(mail_from)
        if code != 250:
            return "refused", ("MAIL", code, text.decode())
        code, text = c.rcpt(rcpt)
        assert code == 250, (code, text, inst.log()[-3000:])
        code, text = c.data(data)
        if code != 250:
            return "refused", ("DATA", code, text.decode())
        return "queued", helpers.queued_id(text)


def stored(inst, qid, sub="incoming"):
    """stored - the content of a queued message (LF line ends)."""
    assert helpers.wait_until(lambda: qid in inst.complete_files(sub), WAIT), \
        (qid, sub, inst.queue_files(sub), inst.log()[-3000:])
    return inst.qfile(qid, sub)["content"]


def header_fields(content):
    """header_fields - [(name lower, whole field)] of the header block."""
    head = content.split(b"\n\n", 1)[0].decode(errors="replace")
    fields = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + "\n" + line)
        else:
            fields.append((line.split(":", 1)[0].strip().lower(), line))
    return fields


def our_ar(content):
    """our_ar - the one Authentication-Results field posta added (unfolded)."""
    fields = header_fields(content)
    assert fields[0][0] == "received", fields[:2]
    assert fields[1][0] == "authentication-results", fields[:3]
    ours = [f for n, f in fields if n == "authentication-results" and AUTHSERV in f]
    assert len(ours) == 1, ours
    return re.sub(r"\s+", " ", ours[0])


# ---- signing (outbound) --------------------------------------------------------


@pytest.mark.delivery
@pytest.mark.parametrize("ktype", ["rsa", "ed25519"])
def test_signed_mail_verifies_with_dkimpy(make_posta, lab, tmp_path, dns_factory, ktype):
    key, qname, record = keygen(tmp_path / "keys", "example.com", "s%s" % ktype[:3], ktype)
    dns = dns_factory([(qname, record)])
    table = tmp_path / "dkim_domains"
    table.write_text("example.com s%s:%s\n" % (ktype[:3], key))
    peer = netlab.Peer(lab, lab.root / "peer-capture", "capture.py", listen="127.0.0.1:0")
    inst = make_posta("posta")
    inst.set_param("relayhost", "[127.0.0.1]:%d" % peer.port)
    inst.set_param("dns_servers", "127.0.0.1:%d" % dns.port)
    inst.set_param("dkim_signing_table", "texthash:%s" % table)
    inst.set_param("smtpd_error_sleep_time", "0s")
    # an access-table PREPEND goes below the pending signature field
    prepend = tmp_path / "prepend"
    prepend.write_text("%s PREPEND X-Checked: by an access table\n" % REMOTE_RCPT)
    inst.set_param("smtpd_recipient_restrictions", "check_recipient_access texthash:%s" % prepend)
    inst.start()
    inst.wait_log(r"DKIM signing", timeout=WAIT)

    # a mynetworks client over SMTP
    subject = "signed over SMTP with a subject line long enough to be folded by a relay"
    msg = message("Alice <alice@example.com>", subject)
    with inst.smtp(source=INSIDE) as c:
        c.sendmail("alice@example.com", [REMOTE_RCPT], msg)
    # local submission: sendmail -> postdrop -> pickup
    env = dict(os.environ, MAIL_CONFIG=str(inst.etc))
    local = message("Alice <alice@example.com>", "signed by pickup").replace(b"\r\n", b"\n")
    r = subprocess.run([str(SENDMAIL), "-i", "-f", "alice@example.com", REMOTE_RCPT],
                       input=local, env=env, capture_output=True, timeout=WAIT)
    assert r.returncode == 0, r
    # unsigned: a From domain the table does not name
    with inst.smtp(source=INSIDE) as c:
        c.sendmail("bob@example.org", [REMOTE_RCPT], message("bob@example.org", "no key"))

    msgs = peer.wait_messages(3, WAIT, lambda: inst.log()[-4000:])

    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        return record.encode() if n.rstrip(".") == qname else b""

    by_subject = {}
    for m in msgs:
        content = netlab.unstuff(m["raw"])
        s = re.search(rb"^Subject: ([^\r]*)", content, re.M).group(1).decode()
        by_subject[s] = content
    assert set(by_subject) == {subject, "signed by pickup", "no key"}, by_subject.keys()
    for s in (subject, "signed by pickup"):
        content = by_subject[s]
        head = content.split(b"\r\n\r\n")[0]
        assert head.count(b"DKIM-Signature:") == 1, head
        assert (b"a=%s-sha256" % ktype.encode()) in head, head
        assert b"c=relaxed/relaxed" in head and b" l=" not in head
        # trace order: the relaying Received first, then the signature
        assert head.index(b"Received:") < head.index(b"DKIM-Signature:"), head
        assert dkim.verify(content, dnsfunc=dnsfunc), (s, content)
        # a relay hop that re-folds the Subject: relaxed still verifies
        refolded = content.replace(b"long enough to be", b"long enough\r\n\tto be")
        refolded = refolded.replace(b"Subject: signed by pickup", b"Subject:  signed\r\n by pickup")
        assert refolded != content
        assert dkim.verify(refolded, dnsfunc=dnsfunc), (s, refolded)
        # and a changed body does not
        assert not dkim.verify(content.replace(b"this is a test", b"this is a fake"),
                               dnsfunc=dnsfunc)
    head = by_subject[subject].split(b"\r\n\r\n")[0]
    assert head.index(b"DKIM-Signature:") < head.index(b"X-Checked: by an access table"), head
    assert b"DKIM-Signature:" not in by_subject["no key"]
    # signed mail is not judged: no Authentication-Results
    assert all(b"Authentication-Results:" not in c for c in by_subject.values())
    inst.wait_queue_empty()


@pytest.mark.delivery
def test_signature_completed_after_queue(make_posta, lab, tmp_path, dns_factory):
    """The 250 comes before the signature: smtpd queues a pending field
    (X-DKIM-Pending, placeholders) and the dkim_sign attribute; a queue
    manager that starts later, even on a field a crash left half written,
    completes it before delivery. A client's own X-DKIM-Pending is removed."""
    key, qname, record = keygen(tmp_path / "keys", "example.com", "srsa", "rsa")
    dns = dns_factory([(qname, record)])
    table = tmp_path / "dkim_domains"
    table.write_text("example.com srsa:%s\n" % key)
    peer = netlab.Peer(lab, lab.root / "peer-capture", "capture.py", listen="127.0.0.1:0")
    inst = make_posta("posta")
    inst.set_param("relayhost", "[127.0.0.1]:%d" % peer.port)
    inst.set_param("dns_servers", "127.0.0.1:%d" % dns.port)
    inst.set_param("dkim_signing_table", "texthash:%s" % table)
    with_qmgr = inst.master_cf.read_text()
    # no queue manager yet: what smtpd queued stays in incoming/
    inst.master_cf.write_text("".join(l for l in with_qmgr.splitlines(True)
                                      if not l.startswith("qmgr")))
    inst.start()
    forged = (b"X-DKIM-Pending: v=1; a=rsa-sha256; d=example.com; s=srsa; h=from; bh=*; b=*\r\n")
    qids = {}
    for subject, extra in (("torn", b""), ("forged", forged)):
        with inst.smtp(source=INSIDE) as c:
            c.ehlo("client.example.net")
            assert c.mail("alice@example.com")[0] == 250
            assert c.rcpt(REMOTE_RCPT)[0] == 250
            code, text = c.data(message("alice@example.com", subject, extra=extra))
            assert code == 250, (code, text)
            qids[subject] = helpers.queued_id(text)
    for subject, qid in qids.items():
        q = inst.qfile(qid) if qid in inst.complete_files() else None
        assert q is not None, (qid, inst.queue_files(), inst.log()[-3000:])
        assert q["attrs"].get("dkim_sign") == "pending", q["attrs"]
        fields = header_fields(q["content"])
        assert fields[0][0] == "received" and fields[1][0] == "x-dkim-pending", fields[:3]
        assert "*" in fields[1][1] and "d=example.com" in fields[1][1]
        assert [n for n, _ in fields].count("x-dkim-pending") == 1, fields
    assert "removed a X-DKIM-Pending field from the client" in inst.log()
    # a crash after the name was written but not the values
    path = inst.spool / "incoming" / qids["torn"]
    data = path.read_bytes()
    at = data.index(b"X-DKIM-Pending:")
    path.write_bytes(data[:at] + b"DKIM-Signature:" + data[at + 15:])
    assert inst.stop().returncode == 0
    inst.master_cf.write_text(with_qmgr)
    inst.start()

    msgs = peer.wait_messages(2, WAIT, lambda: inst.log()[-4000:])

    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        return record.encode() if n.rstrip(".") == qname else b""

    for m in msgs:
        content = netlab.unstuff(m["raw"])
        head = content.split(b"\r\n\r\n")[0]
        assert head.count(b"DKIM-Signature:") == 1 and b"X-DKIM-Pending" not in head, head
        assert b"*" not in head, head
        assert dkim.verify(content, dnsfunc=dnsfunc), content
    for qid in qids.values():
        inst.wait_log(r"%s: DKIM-Signature added d=example.com" % qid, timeout=WAIT)
    inst.wait_queue_empty()


# ---- verification (inbound) ------------------------------------------------------


def dkimpy_sign(msg, key, selector, domain="example.org"):
    """dkimpy_sign - the message with dkimpy's DKIM-Signature on top."""
    return dkim.sign(msg, selector.encode(), domain.encode(), key.read_bytes(),
                     canonicalize=(b"relaxed", b"simple")) + msg


def test_dkim_verdicts_match_dkimpy(inst, tmp_path, dns_factory):
    key, qname, record = keygen(tmp_path / "keys", "example.org", "py")
    other, _, _ = keygen(tmp_path / "other", "example.org", "py")
    dns = dns_factory([(qname, record)])
    configure_inbound(inst, dns, dmarc_verify="no", spf_verify="no", spf_helo_verify="no")

    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        return record.encode() if n.rstrip(".") == qname else b""

    base = message("Alice <alice@example.org>", "dkim")
    good = dkimpy_sign(base, key, "py")
    cases = [
        ("valid", good, "pass"),
        ("body changed", good.replace(b"this is a test", b"this is a fake"), "fail"),
        ("header changed", good.replace(b"Subject: dkim", b"Subject: dkiM"), "fail"),
        ("wrong key", dkimpy_sign(base, other, "py"), "fail"),
        ("missing key", dkimpy_sign(base, key, "nokey"), "permerror"),
        ("unsigned", base, "none"),
    ]
    for what, msg, want in cases:
        st, qid = send(inst, PASS_IP, "alice@example.org", msg)
        assert st == "queued", (what, qid)
        ar = our_ar(stored(inst, qid))
        m = re.search(r"dkim=(\w+)", ar)
        assert m and m.group(1) == want, (what, ar)
        if want != "none":
            assert (m.group(1) == "pass") == bool(dkim.verify(msg, dnsfunc=dnsfunc)), what
            assert "header.d=example.org" in ar, ar
        # the message itself is stored unchanged after Received and A-R
        content = stored(inst, qid)
        rest = helpers.strip_received(content)
        assert rest.startswith(b"Authentication-Results:"), rest[:200]
        assert rest.endswith(helpers.smtp_to_stored(msg)), what


# ---- SPF -------------------------------------------------------------------------


def test_spf_results_in_header(inst, dns_factory):
    dns = dns_factory(SPF_RECORDS)
    configure_inbound(inst, dns, dkim_verify="no", dmarc_verify="no")
    cases = [
        (PASS_IP, "user@pass.example.net", "pass"),
        (OTHER_IP, "user@pass.example.net", "fail"),
        (OTHER_IP, "user@soft.example.net", "softfail"),
        (OTHER_IP, "user@none.example.net", "none"),
    ]
    for ip, sender, want in cases:
        st, qid = send(inst, ip, sender, message(sender, "spf %s" % want))
        assert st == "queued", (sender, qid)
        ar = our_ar(stored(inst, qid))
        assert re.search(r"spf=%s smtp\.mailfrom=%s" % (want, re.escape(sender)), ar), ar
        assert "smtp.helo=client.example.net" in ar, ar


def test_spf_fail_rejected_at_mail(inst, dns_factory):
    dns = dns_factory(SPF_RECORDS)
    configure_inbound(inst, dns, spf_fail_action="reject")
    st, what = send(inst, OTHER_IP, "user@pass.example.net",
                    message("user@pass.example.net", "spf reject"))
    assert st == "refused" and what[:2] == ("MAIL", 550), what
    assert what[2].startswith("5.7.23"), what
    inst.wait_log(r"NOQUEUE: reject: MAIL from .*550 5\.7\.23")
    # softfail and pass go on
    st, qid = send(inst, OTHER_IP, "user@soft.example.net",
                   message("user@soft.example.net", "softfail"))
    assert st == "queued", qid
    st, qid = send(inst, PASS_IP, "user@pass.example.net",
                   message("user@pass.example.net", "pass"))
    assert st == "queued", qid


# ---- DMARC -----------------------------------------------------------------------


def test_dmarc_reject_relaxed_none_quarantine(inst, tmp_path, dns_factory):
    key, qname, record = keygen(tmp_path / "keys", "example.org", "dm")
    dns = dns_factory(SPF_RECORDS + DMARC_RECORDS + [(qname, record)])
    configure_inbound(inst, dns)

    # forged From: SPF passes for another domain, no signature
    st, what = send(inst, PASS_IP, "user@pass.example.net",
                    message("CEO <ceo@example.org>", "forged"))
    assert st == "refused" and what[:2] == ("DATA", 550), what
    assert what[2].startswith("5.7.1"), what
    inst.wait_log(r"reject: END-OF-MESSAGE from .*550 5\.7\.1 Rejected by DMARC policy "
                  r"for example\.org")
    assert inst.queue_files("incoming") == [], "a refused message left a queue file"

    # relaxed alignment: MAIL FROM in a subdomain with SPF pass
    st, qid = send(inst, PASS_IP, "bounces@mail.example.org",
                   message("News <news@example.org>", "aligned by spf"))
    assert st == "queued", qid
    ar = our_ar(stored(inst, qid))
    assert "dmarc=pass" in ar and "header.from=example.org" in ar, ar
    # relaxed alignment: a From subdomain, signed by the organisational domain
    msg = dkimpy_sign(message("news@lists.example.org", "aligned by dkim"), key, "dm")
    st, qid = send(inst, OTHER_IP, "user@soft.example.net", msg)
    assert st == "queued", qid
    ar = our_ar(stored(inst, qid))
    assert "dkim=pass" in ar and "dmarc=pass" in ar, ar

    # p=none: failing mail is only marked
    st, qid = send(inst, OTHER_IP, "x@soft.example.net",
                   message("someone@example.net", "p none"))
    assert st == "queued", qid
    ar = our_ar(stored(inst, qid))
    assert re.search(r"dmarc=fail \(p=none", ar), ar

    # p=quarantine: held
    st, qid = send(inst, OTHER_IP, "x@soft.example.net",
                   message("someone@example.edu", "quarantined"))
    assert st == "queued", qid
    ar = our_ar(stored(inst, qid, "hold"))
    assert re.search(r"dmarc=fail \(p=quarantine", ar), ar
    assert qid not in inst.queue_files("incoming")
    inst.wait_log(r"%s: hold: DMARC quarantine policy of example\.edu" % qid)


# ---- Authentication-Results from outside -----------------------------------------


def test_forged_authentication_results_removed(inst, dns_factory):
    dns = dns_factory(SPF_RECORDS)
    configure_inbound(inst, dns, dkim_verify="no", dmarc_verify="no")
    extra = (b"Authentication-Results: " + AUTHSERV.encode() + b";\r\n"
             b"\tspf=pass smtp.mailfrom=ceo@example.org\r\n"
             b"Authentication-Results: other.example; dkim=pass header.d=example.org\r\n"
             b"X-Keep: yes\r\n")
    st, qid = send(inst, OTHER_IP, "user@pass.example.net",
                   message("user@pass.example.net", "forged A-R", extra=extra))
    assert st == "queued", qid
    content = stored(inst, qid)
    ar = our_ar(content)
    assert "spf=fail" in ar, ar
    assert b"smtp.mailfrom=ceo@example.org" not in content, content
    assert b"Authentication-Results: other.example; dkim=pass" in content, content
    assert b"X-Keep: yes" in content
    inst.wait_log(r"%s: removed an Authentication-Results field claiming %s"
                  % (qid, re.escape(AUTHSERV)))


def test_checks_off_stream_unchanged(inst, dns_factory):
    dns = dns_factory(SPF_RECORDS)
    configure_inbound(inst, dns, spf_verify="no", spf_helo_verify="no", dkim_verify="no",
                      dmarc_verify="no")
    msg = message("user@pass.example.net", "no checks")
    st, qid = send(inst, OTHER_IP, "user@pass.example.net", msg)
    assert st == "queued", qid
    content = stored(inst, qid)
    assert helpers.strip_received(content) == helpers.smtp_to_stored(msg)


def test_large_message_spills_and_stays_intact(inst, dns_factory):
    dns = dns_factory(SPF_RECORDS)
    configure_inbound(inst, dns, dkim_verify="yes", dmarc_verify="no")
    body = b"".join(b"line %06d of a message larger than the in-memory limit\r\n" % i
                    for i in range(20000))
    msg = message("user@pass.example.net", "big", body=body)
    st, qid = send(inst, PASS_IP, "user@pass.example.net", msg)
    assert st == "queued", qid
    content = stored(inst, qid)
    ar = our_ar(content)
    assert "spf=pass" in ar and "dkim=none" in ar, ar
    assert content.endswith(helpers.smtp_to_stored(msg)), len(content)


def test_pipelined_spf_reject_and_bdat_dmarc_reject(inst, dns_factory):
    dns = dns_factory(SPF_RECORDS + DMARC_RECORDS)
    configure_inbound(inst, dns, spf_fail_action="reject")
    with inst.raw(source=OTHER_IP) as c:
        assert "PIPELINING" in " ".join(c.greet("client.example.net")).upper()
        # MAIL waits for SPF: the pipelined RCPT and DATA see no transaction
        c.send(b"MAIL FROM:<user@pass.example.net>\r\nRCPT TO:<root@localhost>\r\n"
               b"DATA\r\n")
        (c1, t1), (c2, _), (c3, _) = c.replies(3)
        assert c1 == 550 and "5.7.23" in " ".join(t1), t1
        assert c2 == 503 and c3 in (503, 554), (c2, c3)
        # BDAT: a forged example.org From is refused after LAST, nothing queued
        body = message("CEO <ceo@example.org>", "forged bdat")
        assert c.cmd("MAIL FROM:<user@soft.example.net>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        code, text = c.reply()
        assert code == 550 and "5.7.1" in " ".join(text), (code, text)
        # the session goes on: a good message over BDAT is queued
        good = message("someone@example.net", "bdat ok")
        assert c.cmd("MAIL FROM:<user@soft.example.net>")[0] == 250
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        half = len(good) // 2
        c.send(b"BDAT %d\r\n" % half + good[:half])
        assert c.reply()[0] == 250
        c.send(b"BDAT %d LAST\r\n" % (len(good) - half) + good[half:])
        code, text = c.reply()
        assert code == 250, (code, text)
        qid = helpers.queued_id(text)
    content = stored(inst, qid)
    assert "dmarc=fail (p=none" in our_ar(content)
    assert content.endswith(helpers.smtp_to_stored(good))
    assert inst.queue_files("incoming") == [qid]


def test_client_gone_while_waiting(inst, tmp_path, dns_factory):
    """A client that drops the connection after the dot: no file, no crash."""
    key, qname, record = keygen(tmp_path / "keys", "example.org", "gone")
    dns = dns_factory(SPF_RECORDS + DMARC_RECORDS + [(qname, record)])
    configure_inbound(inst, dns)
    for i in range(5):
        c = inst.raw(source=OTHER_IP)
        c.greet("client.example.net")
        c.send(b"MAIL FROM:<user@soft.example.net>\r\nRCPT TO:<root@localhost>\r\nDATA\r\n")
        c.replies(3)
        msg = dkimpy_sign(message("a@example.org", "gone %d" % i), key, "gone")
        c.send(msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        c.close()
    time.sleep(1)
    st, qid = send(inst, PASS_IP, "user@pass.example.net",
                   message("user@pass.example.net", "after"))
    assert st == "queued", qid
    inst.wait_log(r"%s: authentication:" % qid)
