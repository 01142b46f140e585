"""test_bcc.py - always_bcc, sender_bcc_maps and recipient_bcc_maps

The copies are recipients of the queue file that smtpd (or pickup) writes,
with DSN NOTIFY=NEVER: each case reads the queue file (no queue manager
runs here, so it stays in incoming/). The copies go through
virtual_alias_maps like any recipient; receive_override_options =
no_address_mappings (the listener a content filter hands mail back to)
adds none, and expands no alias. pickup adds them too.
"""

import os
import subprocess

import helpers
from conftest import BUILD, set_delivery
from test_restrictions import configure as configure_restrictions

NEVER = 1          # QNOTIFY_NEVER


def configure(inst, tables, **params):
    """configure - the tables (texthash, TABLE:name) and settings; start."""
    configure_restrictions(inst, params, tables, None)
    inst.start()


def send(inst, sender, rcpts):
    """send - one message over SMTP; the queue file's recipients [(addr, notify)]."""
    with inst.raw() as c:
        c.greet()
        assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
        for r in rcpts:
            assert c.cmd("RCPT TO:<%s>" % r)[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: bcc\r\n\r\nbody\r\n.\r\n")
        code, text = c.reply()
    if code != 250:
        return code, " ".join(text)
    qid = helpers.queued_id(" ".join(text))
    q = inst.qfile(qid)
    return code, [(r["addr"], r["notify"]) for r in q["rcpts"]]


def test_always_sender_recipient_bcc(inst):
    configure(inst, {"sbcc": "@example.net sender-copy@localhost\n",
                     "rbcc": "root@localhost root-copy\n",
                     "va": "root-copy@localhost archive@localhost\n"},
              always_bcc="everything@localhost",
              sender_bcc_maps="TABLE:sbcc", recipient_bcc_maps="TABLE:rbcc",
              virtual_alias_maps="TABLE:va")
    code, rcpts = send(inst, "a@example.net", ["root@localhost", "postmaster@localhost"])
    assert code == 250, rcpts
    assert rcpts == [("root@localhost", 0), ("postmaster@localhost", 0),
                     ("everything@localhost", NEVER), ("sender-copy@localhost", NEVER),
                     ("archive@localhost", NEVER)], rcpts
    # a sender no table lists, and the null sender: only always_bcc
    assert send(inst, "b@example.org", ["postmaster@localhost"])[1] == [
        ("postmaster@localhost", 0), ("everything@localhost", NEVER)]
    assert send(inst, "", ["postmaster@localhost"])[1] == [
        ("postmaster@localhost", 0), ("everything@localhost", NEVER)]


def test_no_address_mappings(inst):
    configure(inst, {"va": "root@localhost postmaster@localhost\n"},
              always_bcc="everything@localhost", virtual_alias_maps="TABLE:va",
              receive_override_options="no_address_mappings")
    assert send(inst, "a@example.net", ["root@localhost"])[1] == [("root@localhost", 0)]


def test_sendmail_gets_copies(inst):
    """pickup adds the copies too (the queue manager counts the recipients)."""
    inst.set_param("always_bcc", "everything@localhost")
    set_delivery(inst, True)
    inst.start()
    env = dict(os.environ, MAIL_CONFIG=str(inst.etc))
    r = subprocess.run([str(BUILD / "bin" / "sendmail"), "-i", "-f", "alice@localhost",
                        "root@localhost"],
                       input=b"Subject: local\n\nbody\n", env=env, capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r
    qid = inst.wait_log(r"posta/pickup\[\d+\]: (\w+): uid=").group(1)
    inst.wait_log(r"%s: from=<alice@localhost>, size=\d+, nrcpt=2 " % qid)
