"""test_master.py - master and the `posta` control commands

status / start / stop / reload, a busy port, a child killed with SIGKILL,
a reload while a session is open, and what a bad or unknown main.cf
parameter does.
"""

import os
import re
import signal
import socket
import time

import pytest

import helpers

RESTART_WAIT = 20.0
STOP_WAIT = 15.0


def output(r, inst):
    """output - everything a command and the log said."""
    return r.stdout + r.stderr + inst.log()


def test_status_stopped_and_running(inst):
    assert inst.status() == 1
    inst.start()
    assert inst.status() == 0
    pid = inst.master_pid()
    assert pid and helpers.proc_stat(pid) is not None
    assert inst.stop().returncode == 0
    assert helpers.wait_until(lambda: inst.status() == 1, STOP_WAIT)


def test_second_start_refused(posta):
    pid = posta.master_pid()
    r = posta.posta("start")
    assert r.returncode != 0, r.stdout + r.stderr
    assert (r.stdout + r.stderr).strip(), "refusal must say why"
    assert posta.master_pid() == pid
    assert helpers.proc_stat(pid) is not None
    with posta.raw() as c:
        c.greet()


def test_port_in_use(inst):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        busy.bind(("127.0.0.1", inst.port))
        busy.listen(1)
        r = inst.posta("start")
        text = output(r, inst)
        assert r.returncode != 0, text
        # the address, as "127.0.0.1:PORT" or "127.0.0.1 port PORT"
        assert re.search(r"127\.0\.0\.1(:| port )%d\b" % inst.port, text), text
        assert helpers.wait_until(lambda: not inst.alive(), STOP_WAIT), inst.alive()
        assert inst.status() == 1
    finally:
        busy.close()
    # once the port is free the same instance starts
    inst.start()


def smtpd_children(inst):
    """smtpd_children - PIDs of the master's smtpd children."""
    return sorted(p for p, comm in inst.children().items() if "smtpd" in comm)


def test_kill9_smtpd_is_restarted(inst):
    inst.set_param("service_throttle_time", "1s")
    inst.start()
    old = smtpd_children(inst)
    assert old, inst.children()
    master = inst.master_pid()
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    assert helpers.wait_until(
        lambda: smtpd_children(inst) and not set(smtpd_children(inst)) & set(old),
        RESTART_WAIT), (old, inst.children())
    assert inst.master_pid() == master
    with inst.smtp() as s:
        s.ehlo("client.example")
        assert s.sendmail("a@localhost", ["root@localhost"],
                          b"Subject: after restart\r\n\r\nok\r\n") == {}
    assert len(inst.complete_files()) == 1


def test_reload_during_session(posta):
    master = posta.master_pid()
    old_children = set(smtpd_children(posta))
    with posta.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        # a change that the new configuration carries
        posta.set_param("message_size_limit", "30000")
        r = posta.reload()
        assert r.returncode == 0, r.stdout + r.stderr
        # give master time to act on SIGHUP: new children appear
        assert helpers.wait_until(
            lambda: set(smtpd_children(posta)) - old_children, RESTART_WAIT), \
            posta.children()
        assert c.cmd("RCPT TO:<root@localhost>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: across a reload\r\n\r\nstill here\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, (code, text)
        qid = helpers.queued_id(text)
        assert c.cmd("QUIT")[0] == 221
    assert posta.master_pid() == master
    assert qid in posta.complete_files()
    # new sessions see the new configuration
    with posta.smtp() as s:
        s.ehlo("client.example")
        assert s.esmtp_features.get("size", "").strip() == "30000"
    # the draining children go away once their sessions are done
    assert helpers.wait_until(
        lambda: not set(smtpd_children(posta)) & old_children, RESTART_WAIT), \
        (old_children, posta.children())


def test_stop_is_clean(posta):
    with posta.raw() as c:
        c.greet()
    pids = posta.remember()
    assert len(pids) >= 2
    r = posta.stop()
    assert r.returncode == 0, r.stdout + r.stderr
    assert helpers.wait_until(lambda: not posta.alive(), STOP_WAIT), posta.alive()
    assert posta.status() == 1
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", posta.port), timeout=2).close()
    # stopping a stopped instance fails and says so
    r = posta.stop()
    assert r.returncode != 0


def test_stop_with_open_session(posta):
    c = posta.raw()
    try:
        c.greet()
        assert c.cmd("MAIL FROM:<sender@localhost>")[0] == 250
        r = posta.stop()
        assert r.returncode == 0
        assert helpers.wait_until(lambda: not posta.alive(), STOP_WAIT), posta.alive()
        # the session was told (421) or closed
        try:
            code, _ = c.reply()
            assert code == 421
        except helpers.SMTPProtocolError:
            pass
    finally:
        c.close()


def test_bad_parameter_value(inst):
    inst.set_param("message_size_limit", "lots")
    line = inst.param_line("message_size_limit")
    r = inst.posta("start")
    text = output(r, inst)
    assert r.returncode != 0, text
    assert "main.cf" in text, text
    assert "message_size_limit" in text, text
    assert str(line) in text, text
    time.sleep(0.2)
    assert not inst.alive()
    assert inst.status() == 1


def test_unknown_parameter_warns(inst):
    inst.set_param("posta_no_such_parameter", "42")
    r = inst.posta("start")
    text = output(r, inst)
    assert r.returncode == 0, text
    inst.wait_ready()
    assert "posta_no_such_parameter" in text, text
    assert "warning" in text.lower(), text
    assert inst.status() == 0


def test_unimplemented_parameter_warns(inst):
    """A Postfix setting posta knows by name but does not act on is named, once, at start."""
    inst.set_param("canonical_maps", "hash:/etc/posta/canonical")
    inst.set_param("masquerade_domains", "example.org")
    inst.set_param("always_add_missing_headers", "no")     # Postfix's default: no effect
    r = inst.posta("start")
    assert r.returncode == 0, output(r, inst)
    inst.wait_ready()
    text = output(r, inst)
    for name in ("canonical_maps", "masquerade_domains"):
        pat = r"warning: .*main\.cf, line \d+: parameter %s is not implemented by posta" % name
        assert len(re.findall(pat, text)) == 1, text
    assert "always_add_missing_headers" not in text, text


def test_bad_master_cf(inst):
    with open(inst.master_cf, "a") as f:
        f.write("broken-service inet\n")
    r = inst.posta("start")
    text = output(r, inst)
    assert r.returncode != 0, text
    assert "master.cf" in text, text
    assert inst.status() == 1
