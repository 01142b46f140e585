"""test_mailx.py - the first lab: `mail` on the host, then `mail -f` reads it

As the user alice, `echo hi | mail -s SUBJECT bob@localhost` (bsd-mailx)
must put the message in bob's mailbox of the instance, and bob's
`mail -f MAILBOX` must list it with its subject.

bsd-mailx runs /usr/sbin/sendmail, which on this machine is Postfix's
(installed for the benchmark); system files are not touched: a MAILRC
file of the test says "set sendmail=BUILD/bin/sendmail" (mail(1):
"sendmail - Pathname to an alternative mail delivery system"; MAILRC
replaces ~/.mailrc) and MAIL_CONFIG names the instance's configuration
folder for posta's sendmail, as for Postfix's.

postdrop: installed, it is set-group-ID $setgid_group and then accepts
only the compiled-in configuration folder; the build's postdrop has no
set-ID bit, so for the instance (run as root, setgid_group = nogroup)
alice gets the group as a supplementary group for the test instead, which
gives her exactly the access the set-group-ID bit would (maildrop/ is
0730 mail_owner:setgid_group). It is taken away after the test.

DIAGNOSTICS: the output of mail and the maillog are quoted on failure.
"""

import os
import shutil
import subprocess

import pytest

import conftest
import helpers

pytestmark = pytest.mark.delivery

MAILX = "/usr/bin/bsd-mailx"
SENDMAIL = conftest.BUILD / "bin" / "sendmail"
MAIL_TIMEOUT = 30
PUBLIC_READ = 0o644


@pytest.fixture
def drop_group(posta, users):
    """drop_group - alice in setgid_group for this test (see the header)."""
    group = posta.posta("conf", "-h", "setgid_group").stdout.strip()
    assert group, "no setgid_group"
    subprocess.run(["usermod", "-a", "-G", group, users.alice.name], check=True,
                   timeout=MAIL_TIMEOUT)
    yield group
    subprocess.run(["gpasswd", "-d", users.alice.name, group], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=MAIL_TIMEOUT)


@pytest.fixture
def mailx(tmp_path):
    """mailx - a MAILRC file that sends through posta's sendmail."""
    if not os.path.exists(MAILX) or shutil.which("su") is None:
        pytest.skip("bsd-mailx not installed (scripts/deps.sh test)")
    if not SENDMAIL.is_file():
        pytest.skip("posta's sendmail not built yet")
    if not (conftest.BUILD / "libexec" / "pickup").is_file():
        pytest.skip("pickup not built yet")
    rc = tmp_path / "mailrc"
    rc.write_text("set sendmail=%s\n" % SENDMAIL)
    os.chmod(rc, PUBLIC_READ)
    return rc


def run_as(user, command, stdin=""):
    """run_as - `su USER -c COMMAND` with stdin; the CompletedProcess."""
    return subprocess.run(["su", user.name, "-s", "/bin/sh", "-c", command],
                          input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=MAIL_TIMEOUT)


def test_mail_then_read(posta, users, mailx, drop_group):
    alice, bob = users.alice, users.bob
    subject = "hello " + helpers.token("lab")
    r = run_as(alice, "echo hi | MAILRC=%s MAIL_CONFIG=%s %s -s '%s' %s" % (
        mailx, posta.etc, MAILX, subject, bob.addr))
    assert r.returncode == 0, "mail failed: %s\nlog:\n%s" % (r.stdout, posta.log())
    path = posta.mbox(bob.name)

    def found():
        return [m for m in helpers.read_mbox(path) if m["Subject"] == subject]
    msgs = posta.wait_for(found, "mail's message in %s" % path)
    m = msgs[0]
    assert m.get_payload().strip() == "hi"
    assert m["Return-Path"].strip() == "<%s>" % alice.addr
    assert alice.name in m["From"], m["From"]
    assert m["Message-ID"] and m["Date"], "cleanup adds Message-ID and Date"
    assert os.stat(path).st_uid == bob.uid
    posta.wait_queue_empty()
    # bob reads it with mail -f (x: quit without changing the mailbox)
    r = run_as(bob, "MAILRC=/dev/null %s -f %s" % (MAILX, path), stdin="x\n")
    assert r.returncode == 0, r.stdout
    assert "1 message" in r.stdout, r.stdout
    assert subject in r.stdout and alice.name in r.stdout, r.stdout
    # MAIL= (mail -u reads the system spool) works the same way
    r = run_as(bob, "MAILRC=/dev/null MAIL=%s %s" % (path, MAILX), stdin="x\n")
    assert subject in r.stdout, r.stdout
