"""test_cli.py - the admin commands: posta conf (edits), queue, super, cat, check

Instances come from conftest.py. Mail that must stay in the queue is sent
to an instance without a queue manager (it stays in incoming/), or, with
the delivery services, to a remote domain whose relayhost is a closed
port (it is deferred with a long retry time).
"""

import os
import re
import stat
import time

import pytest

import helpers
from conftest import free_port

SUMMARY_RX = r"posta super: %s: %d message"
LONG_BACKOFF = {"minimal_backoff_time": "1000s", "maximal_backoff_time": "4000s"}


def send(inst, rcpt="someone@example.net", subject="cli test", body="hello\n"):
    """send - one message through SMTP; its queue ID."""
    msg = ("From: sender@example.com\r\nTo: %s\r\nSubject: %s\r\n\r\n%s"
           % (rcpt, subject, body.replace("\n", "\r\n")))
    with inst.smtp() as s:
        s.ehlo("client.example")
        assert s.mail("sender@example.com")[0] == 250
        assert s.rcpt(rcpt)[0] == 250
        code, text = s.data(msg.encode())
        assert code == 250, text
    return helpers.queued_id(text)


def where(inst, qid):
    """where - the queue subdirectories that hold qid."""
    return [sub for sub in ("incoming", "active", "deferred", "hold", "corrupt")
            if (inst.spool / sub / qid).exists()]


# ---- posta conf -------------------------------------------------------------

def test_conf_e_keeps_comments_and_order(inst):
    before = inst.main_cf.read_text()
    r = inst.posta("conf", "-e", "mydestination = example.com, localhost",
                   "message_size_limit=20480000")
    assert r.returncode == 0, r.stderr
    after = inst.main_cf.read_text()
    old_lines = before.splitlines()
    new_lines = after.splitlines()
    # same lines in the same order, only the one value changed, one appended
    idx = [i for i, l in enumerate(old_lines) if l.startswith("mydestination")][0]
    assert new_lines[idx] == "mydestination = example.com, localhost"
    assert new_lines[:idx] == old_lines[:idx]
    assert new_lines[idx + 1:-1] == old_lines[idx + 1:]
    assert new_lines[-1] == "message_size_limit = 20480000"
    assert any(l.startswith("#") for l in new_lines)
    r = inst.posta("conf", "-n")
    assert "message_size_limit = 20480000" in r.stdout.splitlines()
    assert "mydestination = example.com, localhost" in r.stdout.splitlines()


def test_conf_e_keeps_mode_and_replaces_continuations(inst):
    with open(inst.main_cf, "a") as f:
        f.write("smtpd_banner = $myhostname\n    ESMTP posta\n# after\n")
    os.chmod(inst.main_cf, 0o640)
    r = inst.posta("conf", "-e", "smtpd_banner=$myhostname ESMTP")
    assert r.returncode == 0, r.stderr
    text = inst.main_cf.read_text()
    assert "smtpd_banner = $myhostname ESMTP\n# after\n" in text
    assert "    ESMTP posta" not in text
    assert stat.S_IMODE(inst.main_cf.stat().st_mode) == 0o640
    assert not [p for p in inst.etc.iterdir() if ".tmp." in p.name]


def test_conf_e_bad_value_changes_nothing(inst):
    before = inst.main_cf.read_text()
    r = inst.posta("conf", "-e", "message_size_limit=lots")
    assert r.returncode == 1
    assert "message_size_limit" in r.stderr
    assert inst.main_cf.read_text() == before


def test_conf_X_and_comment(inst):
    inst.set_param("relayhost", "[mail.example.com]")
    inst.set_param("smtpd_recipient_limit", "7")
    r = inst.posta("conf", "-X", "relayhost")
    assert r.returncode == 0, r.stderr
    assert "relayhost" not in inst.main_cf.read_text()
    r = inst.posta("conf", "-#", "smtpd_recipient_limit")
    assert r.returncode == 0, r.stderr
    assert "#smtpd_recipient_limit = 7" in inst.main_cf.read_text()
    r = inst.posta("conf", "-n", "smtpd_recipient_limit")
    assert r.stdout == ""


def test_conf_unknown_name_suggests(inst):
    r = inst.posta("conf", "mydestinaton")
    assert r.returncode == 1
    assert ("posta conf: unknown parameter: mydestinaton (did you mean mydestination?)"
            in r.stderr)
    before = inst.main_cf.read_text()
    r = inst.posta("conf", "-e", "mydestinaton=x")
    assert r.returncode == 1
    assert "did you mean mydestination?" in r.stderr
    assert inst.main_cf.read_text() == before
    r = inst.posta("conf", "-X", "relayhots")
    assert r.returncode == 1 and "did you mean relayhost?" in r.stderr


def test_conf_e_own_parameter_when_referenced(inst):
    with open(inst.master_cf, "a") as f:
        f.write("submission inet n - n - - smtpd\n"
                "  -o smtpd_client_restrictions=$mua_client_restrictions\n")
    r = inst.posta("conf", "-e", "mua_client_restrictions=permit_mynetworks, reject")
    assert r.returncode == 0, r.stderr
    assert "mua_client_restrictions = permit_mynetworks, reject" in inst.main_cf.read_text()


def test_conf_M_Me_MX(inst):
    r = inst.posta("conf", "-M")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^qmgr {7}unix  n {7}- {7}n {7}300 {5}1 {7}qmgr$", r.stdout, re.M) or \
        "qmgr" not in inst.master_cf.read_text()
    r = inst.posta("conf", "-Me", "submission/inet = submission inet n - n - - smtpd "
                   "-o syslog_name=posta/submission -o smtpd_tls_security_level=encrypt")
    assert r.returncode == 0, r.stderr
    text = inst.master_cf.read_text()
    assert "submission inet  n       -       n       -       -       smtpd\n" \
           "    -o syslog_name=posta/submission\n" in text
    r = inst.posta("conf", "-M", "submission/inet")
    assert r.stdout == ("submission inet  n       -       n       -       -       smtpd "
                        "-o syslog_name=posta/submission -o smtpd_tls_security_level=encrypt\n")
    r = inst.posta("conf", "-P", "submission/inet")
    assert r.stdout.splitlines() == [
        "submission/inet/smtpd_tls_security_level = encrypt",
        "submission/inet/syslog_name = posta/submission"]
    r = inst.posta("conf", "-F", "submission/inet/chroot")
    assert r.stdout == "submission/inet/chroot = n\n"
    r = inst.posta("conf", "-Fe", "submission/inet/chroot=y")
    assert r.returncode == 0, r.stderr
    r = inst.posta("conf", "-Pe", "submission/inet/smtpd_sasl_auth_enable=yes")
    assert r.returncode == 0, r.stderr
    r = inst.posta("conf", "-PX", "submission/inet/smtpd_tls_security_level")
    assert r.returncode == 0, r.stderr
    r = inst.posta("conf", "-M", "submission/inet")
    assert r.stdout == ("submission inet  n       -       y       -       -       smtpd "
                        "-o syslog_name=posta/submission -o smtpd_sasl_auth_enable=yes\n")
    r = inst.posta("conf", "-MX", "submission/inet")
    assert r.returncode == 0, r.stderr
    assert "submission" not in inst.master_cf.read_text()
    r = inst.posta("conf", "-MX", "submission/inet")
    assert r.returncode == 1 and "unknown service: submission/inet" in r.stderr
    r = inst.posta("check")
    assert r.returncode in (0, 1)   # master.cf still loads
    assert "master.cf" not in r.stderr


def test_conf_Me_bad_entry(inst):
    before = inst.master_cf.read_text()
    r = inst.posta("conf", "-Me", "x/unix = y unix - - n - - prog")
    assert r.returncode == 1 and "defines y/unix" in r.stderr
    r = inst.posta("conf", "-Me", "x/unix = x unix - - n - bad prog")
    assert r.returncode == 1
    assert inst.master_cf.read_text() == before


def test_conf_usage(inst):
    r = inst.posta("conf", "-e", "-X", "a")
    assert r.returncode == 2 and "usage:" in r.stderr
    r = inst.posta("conf", "-Z")
    assert r.returncode == 2


# ---- posta cat --------------------------------------------------------------

def test_cat(posta):
    qid = send(posta, subject="cat me", body="line one\nline two\n")
    r = posta.posta("cat", "-q", qid)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    label = "incoming/" + qid
    for marker in ("*** ENVELOPE RECORDS %s ***", "*** MESSAGE CONTENTS %s ***",
                   "*** HEADER EXTRACTED %s ***", "*** MESSAGE FILE END %s ***"):
        assert marker % label in out
    assert re.search(r"^message_size: +\d+ +\d+ +1$", out, re.M)
    assert re.search(r"^message_arrival_time: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$", out, re.M)
    assert "\nsender: sender@example.com\n" in out
    assert "\nrecipient: someone@example.net\n" in out
    assert "named_attribute: helo_name=client.example" in out
    r = posta.posta("cat", "-q", "-e", qid)
    assert "recipient: someone@example.net" in r.stdout and "Subject:" not in r.stdout
    r = posta.posta("cat", "-q", "-h", qid)
    assert r.returncode == 0
    assert "Subject: cat me\n" in r.stdout
    assert "line one" not in r.stdout and "***" not in r.stdout
    r = posta.posta("cat", "-q", "-b", qid)
    assert r.stdout == "\nline one\nline two\n"
    r = posta.posta("cat", "-bh", str(posta.spool / "incoming" / qid))
    assert r.stdout.endswith("Subject: cat me\n\nline one\nline two\n")


def test_cat_errors(posta):
    r = posta.posta("cat", "-q", "0000000000z1")
    assert r.returncode == 1 and "no such message" in r.stderr
    bad = posta.root / "bad"
    bad.write_bytes(b"V\x0dposta-queue 1Zjunk")
    r = posta.posta("cat", str(bad))
    assert r.returncode == 1
    assert r.stderr.startswith("posta cat: fatal: %s: offset" % bad)
    r = posta.posta("cat", "-x")
    assert r.returncode == 2 and "usage:" in r.stderr


# ---- posta super ------------------------------------------------------------

def test_super_hold_release_requeue_delete(posta):
    a = send(posta, subject="a")
    b = send(posta, subject="b")
    assert where(posta, a) == ["incoming"]
    r = posta.posta("super", "-h", a)
    assert r.returncode == 0, r.stderr
    assert re.search(SUMMARY_RX % ("Placed on hold", 1), r.stderr)
    assert where(posta, a) == ["hold"]
    posta.wait_log(r"postsuper\[\d+\]: %s: placed on hold" % a)
    assert "%s!" % a in posta.posta("queue", "-p").stdout
    r = posta.posta("super", "-H", a)
    assert r.returncode == 0, r.stderr
    assert re.search(SUMMARY_RX % ("Released from hold", 1), r.stderr)
    assert where(posta, a) == ["deferred"]
    assert (posta.spool / "deferred" / a).stat().st_mtime <= time.time() + 1
    r = posta.posta("super", "-r", a)
    assert r.returncode == 0, r.stderr
    assert re.search(SUMMARY_RX % ("Requeued", 1), r.stderr)
    assert where(posta, a) == ["incoming"]
    (posta.spool / "defer" / b).write_text("someone@example.net\t4.4.1\tconnection refused\n")
    r = posta.posta("super", "-d", b)
    assert r.returncode == 0, r.stderr
    assert re.search(SUMMARY_RX % ("Deleted", 1), r.stderr)
    assert where(posta, b) == []
    assert not (posta.spool / "defer" / b).exists()
    posta.wait_log(r"postsuper\[\d+\]: %s: removed" % b)
    # unknown IDs are not an error (postsuper), invalid ones are
    r = posta.posta("super", "-d", "0000000000z1")
    assert r.returncode == 0 and "Deleted" not in r.stderr
    r = posta.posta("super", "-d", "../etc")
    assert r.returncode == 1 and "invalid queue ID" in r.stderr


def test_super_all_and_stdin(posta):
    ids = [send(posta, subject=str(i)) for i in range(3)]
    r = posta.posta("super", "-h", "ALL")
    assert re.search(SUMMARY_RX % ("Placed on hold", 3), r.stderr), r.stderr
    assert sorted(posta.queue_files("hold")) == sorted(ids)
    r = posta.posta("super", "-d", "ALL", "deferred")
    assert "Deleted" not in r.stderr
    assert len(posta.queue_files("hold")) == 3
    cmd = [str(posta.etc)]
    import subprocess
    from conftest import POSTA
    p = subprocess.run([str(POSTA), "-c", cmd[0], "super", "-d", "-"],
                       input="%s\n%s\n" % (ids[0], ids[1]), text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=posta.env())
    assert p.returncode == 0, p.stderr
    assert re.search(SUMMARY_RX % ("Deleted", 2), p.stderr)
    assert posta.queue_files("hold") == [ids[2]]
    r = posta.posta("super", "-d", "ALL")
    assert re.search(SUMMARY_RX % ("Deleted", 1), r.stderr)
    assert posta.queue_files("hold") == []


def test_super_structure_check(posta):
    qid = send(posta)
    r = posta.posta("super", "-h", qid)
    assert r.returncode == 0
    owner = (posta.spool / "hold" / qid).stat()
    # a corrupt file with a queue ID name, a misnamed file, a stale log
    bad_id = "0000000001z1"
    bad = posta.spool / "deferred" / bad_id
    bad.write_bytes(b"V\x0dposta-queue 1garbage")
    junk = posta.spool / "hold" / "junk.txt"
    junk.write_text("not mine\n")
    stale = posta.spool / "defer" / "0000000002z1"
    stale.write_text("x@example.net\t4.0.0\told\n")
    for p in (bad, junk, stale):
        os.chmod(p, 0o700)
        os.chown(p, owner.st_uid, owner.st_gid)
    r = posta.posta("super", "-s")
    assert r.returncode == 0, r.stderr
    assert (posta.spool / "corrupt" / bad_id).exists() and not bad.exists()
    assert (posta.spool / "corrupt" / "junk.txt").exists() and not junk.exists()
    assert not stale.exists()
    assert where(posta, qid) == ["hold"]   # the good one stays
    log = posta.wait_log(r"warning: deferred/%s: corrupt queue file: .*moved to corrupt/" % bad_id)
    assert log
    posta.wait_log(r"warning: hold/junk.txt: not named by a queue ID; moved to corrupt/")
    assert "Moved to corrupt: 2 files" in r.stderr


def test_super_usage(inst):
    r = inst.posta("super")
    assert r.returncode == 2 and "usage:" in r.stderr
    r = inst.posta("super", "-d", "ALL", "nosuchqueue")
    assert r.returncode == 2 and "unknown queue" in r.stderr


# ---- posta queue -i / -s ----------------------------------------------------

def deferred_instance(inst):
    """deferred_instance - delivery to a closed relayhost, slow retries; started."""
    inst.set_param("relayhost", "[127.0.0.1]:%d" % free_port())
    for k, v in LONG_BACKOFF.items():
        inst.set_param(k, v)
    inst.set_param("smtpd_error_sleep_time", "0s")
    inst.start()
    return inst


def wait_deferred(inst, qid):
    """wait_deferred - until qid is in deferred/ with its retry time far ahead."""
    path = inst.spool / "deferred" / qid
    inst.wait_for(lambda: path.exists() and path.stat().st_mtime > time.time() + 100,
                  "%s deferred" % qid)
    return path


def attempts(inst, qid):
    """attempts - how often qmgr took qid into active/."""
    return len(re.findall(r"%s: from=<[^>]*>, size=\d+, nrcpt=\d+ \(queue active\)" % qid,
                          inst.log()))


@pytest.mark.delivery
def test_queue_i_retries_one(inst):
    deferred_instance(inst)
    qid = send(inst, rcpt="someone@example.net")
    other = send(inst, rcpt="other@example.org")
    wait_deferred(inst, qid)
    wait_deferred(inst, other)
    assert attempts(inst, qid) == 1
    r = inst.posta("queue", "-p")
    assert qid in r.stdout and "Requests." in r.stdout
    r = inst.posta("queue", "-i", qid)
    assert r.returncode == 0, r.stderr
    inst.wait_for(lambda: attempts(inst, qid) == 2, "second attempt of %s" % qid)
    wait_deferred(inst, qid)
    assert attempts(inst, other) == 1
    r = inst.posta("queue", "-i", "0000000000z1")
    assert r.returncode == 1 and "no such message" in r.stderr


@pytest.mark.delivery
def test_queue_s_retries_site(inst):
    deferred_instance(inst)
    net = send(inst, rcpt="someone@example.net")
    org = send(inst, rcpt="other@example.org")
    wait_deferred(inst, net)
    wait_deferred(inst, org)
    r = inst.posta("queue", "-s", "EXAMPLE.NET")
    assert r.returncode == 0, r.stderr
    inst.wait_for(lambda: attempts(inst, net) == 2, "second attempt of %s" % net)
    time.sleep(0.5)
    assert attempts(inst, org) == 1
    r = inst.posta("queue", "-f")
    assert r.returncode == 0, r.stderr
    inst.wait_for(lambda: attempts(inst, org) == 2, "flush of %s" % org)


def test_queue_usage(inst):
    r = inst.posta("queue", "-s")
    assert r.returncode == 2 and "usage:" in r.stderr
    r = inst.posta("queue", "-i", "a", "-f")
    assert r.returncode == 2


# ---- posta check / set-permissions ------------------------------------------

@pytest.mark.skipif(os.getuid() != 0, reason="owners can only be changed by root")
def test_check_and_set_permissions(inst):
    inst.set_param("command_directory", str(inst.root))
    inst.start()
    inst.stop()
    r = inst.posta("check")
    assert r.returncode == 0, r.stderr
    deferred = inst.spool / "deferred"
    st = deferred.stat()
    os.chown(deferred, 0, 0)
    os.chmod(deferred, 0o755)
    r = inst.posta("check")
    assert r.returncode == 1
    lines = [l for l in r.stderr.splitlines() if str(deferred) + ":" in l]
    assert any("owner is root, should be" in l for l in lines), r.stderr
    assert any("mode is 0755, should be 0700" in l for l in lines), r.stderr
    assert all(l.startswith("posta check: warning: ") for l in lines)
    r = inst.posta("set-permissions")
    assert r.returncode == 0, r.stdout + r.stderr
    st2 = deferred.stat()
    assert (st2.st_uid, st2.st_gid) == (st.st_uid, st.st_gid)
    assert stat.S_IMODE(st2.st_mode) == 0o700
    assert inst.posta("check").returncode == 0


def test_check_reports_config_errors(inst):
    inst.set_param("message_size_limit", "huge")
    r = inst.posta("check")
    assert r.returncode == 1
    assert "posta check: error:" in r.stderr and "message_size_limit" in r.stderr


def test_unknown_command_and_usage(inst):
    r = inst.posta("nonsense")
    assert r.returncode == 2 and "usage:" in r.stderr
    r = inst.posta("check", "extra")
    assert r.returncode == 2
