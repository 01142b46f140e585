"""test_install.py - `make install` lays out the FHS tree; uninstall undoes it

`make install DESTDIR=TMP PREFIX=/usr` (what a package build runs) must
put the posta command, posta-sendmail and postdrop in /usr/sbin, every
daemon in /usr/libexec/posta, every man page of man/ in
/usr/share/man/manN, the systemd unit in systemd's unit folder (with the
paths filled in; `systemd-analyze verify` accepts it), main.cf, master.cf
and aliases in /etc (0644, never overwritten by a second install), the
fail2ban filters in /usr/share/posta and the spool's top folder
/var/spool/posta (0755). With DESTDIR no user or group is created and
postdrop is not made set-group-ID (the package does that); install says
so. `make uninstall DESTDIR=TMP` removes the programs, man pages, unit and
filters and keeps the configuration and the spool, and says so. Another
mail system's postdrop is neither replaced nor removed.

A real install (no DESTDIR) is never run here: it changes the system.
The module builds into a folder of its own (make BUILD=...), so that the
paths compiled in for PREFIX=/usr do not change build/ under the other
tests.

DIAGNOSTICS: a failure quotes make's output.
"""

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

import conftest

REPO = conftest.REPO
MAKE_TIMEOUT = 900          # install builds first
MAKE_JOBS = max(1, min(4, os.cpu_count() or 1))
PREFIX = "/usr"
SBIN = "usr/sbin"
DAEMONS = "usr/libexec/posta"
MAN = "usr/share/man"
FILTERS = "usr/share/posta/fail2ban/filter.d"
CONFIG = "etc/posta"
ALIASES = "etc/aliases"
SPOOL = "var/spool/posta"
EXEC_MODE = 0o755
FILE_MODE = 0o644
DIR_MODE = 0o755
MARKER = "# local change: must survive a second install\n"
FOREIGN_POSTDROP = "#!/bin/sh\n# another mail system's postdrop\nexit 1\n"


def make(build, *args):
    """make - run make in the source tree, building into build (not build/)."""
    return subprocess.run(["make", "--no-print-directory", "-j%d" % MAKE_JOBS, "-C", str(REPO),
                           "BUILD=%s" % build] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=MAKE_TIMEOUT)


def unit_dir():
    """unit_dir - systemd's unit folder, as the Makefile finds it (no leading /)."""
    r = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    d = r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "/lib/systemd/system"
    return d.lstrip("/")


def mode(path):
    """mode - permission bits of path."""
    return stat.S_IMODE(os.stat(path).st_mode)


def daemons(build):
    """daemons - the daemon programs of the build."""
    return sorted(p.name for p in (build / "libexec").iterdir() if p.is_file())


def man_pages():
    """man_pages - (section, name) of every man page in man/."""
    out = []
    for p in sorted((REPO / "man").iterdir()):
        section = p.suffix.lstrip(".")
        if section.isdigit():
            out.append((section, p.name))
    return out


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build - a build folder of this module's own: the compiled-in paths of
    PREFIX=/usr must not replace those of build/, which the other tests use."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="module")
def installed(build, tmp_path_factory):
    """installed - (DESTDIR, make output) after one `make install`."""
    dest = tmp_path_factory.mktemp("destdir")
    r = make(build, "install", "DESTDIR=%s" % dest, "PREFIX=%s" % PREFIX)
    assert r.returncode == 0, "make install failed:\n%s" % r.stdout
    return dest, r.stdout


def test_programs(installed, build):
    dest, out = installed
    for name in ("posta", "posta-sendmail", "postdrop"):
        p = dest / SBIN / name
        assert p.is_file(), "%s missing\n%s" % (p, out)
        # DESTDIR: postdrop is not set-group-ID (the package does it).
        assert mode(p) == EXEC_MODE, "%s mode %o" % (p, mode(p))
    names = daemons(build)
    assert "master" in names and "smtpd" in names, names
    for name in names:
        p = dest / DAEMONS / name
        assert p.is_file() and mode(p) == EXEC_MODE, "%s\n%s" % (p, out)
    assert "DESTDIR set: not creating user posta and group postdrop" in out, out
    # Nothing outside the FHS folders posta uses.
    top = sorted(p.name for p in dest.iterdir())
    assert set(top) <= {"usr", "etc", "var", "lib"}, top


def test_compiled_paths(installed):
    """The installed posta knows the FHS paths and reads the installed main.cf."""
    dest, _ = installed
    posta = str(dest / SBIN / "posta")
    r = subprocess.run([posta, "-c", str(dest / CONFIG), "conf", "-d", "daemon_directory",
                        "queue_directory", "config_directory", "data_directory"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=conftest.CMD_TIMEOUT)
    assert r.returncode == 0, r.stdout
    values = dict(line.split(" = ", 1) for line in r.stdout.splitlines() if " = " in line)
    assert values == {"daemon_directory": "/usr/libexec/posta",
                      "queue_directory": "/var/spool/posta",
                      "config_directory": "/etc/posta",
                      "data_directory": "/var/lib/posta"}, r.stdout
    r = subprocess.run([posta, "-c", str(dest / CONFIG), "conf", "-h", "mail_owner",
                        "setgid_group", "alias_maps"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=conftest.CMD_TIMEOUT)
    assert r.returncode == 0, r.stdout
    assert r.stdout.split() == ["posta", "postdrop", "hash:/etc/aliases"], r.stdout


def test_man_pages(installed):
    dest, out = installed
    pages = man_pages()
    assert pages, "no man pages in man/"
    for section, name in pages:
        p = dest / MAN / ("man" + section) / name
        assert p.is_file() and mode(p) == FILE_MODE, "%s\n%s" % (p, out)
        assert p.read_bytes() == (REPO / "man" / name).read_bytes()


def test_config_and_spool(installed):
    dest, _ = installed
    for name in ("main.cf", "master.cf"):
        p = dest / CONFIG / name
        assert mode(p) == FILE_MODE
        assert p.read_text() == (REPO / "conf" / name).read_text()
    main_cf = (dest / CONFIG / "main.cf").read_text()
    assert "\nmail_owner = posta\n" in main_cf
    assert "\nsetgid_group = postdrop\n" in main_cf
    assert mode(dest / ALIASES) == FILE_MODE
    assert "postmaster:" in (dest / ALIASES).read_text()
    assert (dest / SPOOL).is_dir() and mode(dest / SPOOL) == DIR_MODE
    # master makes smtpd's self-signed certificate there (the unit lets it)
    assert (dest / CONFIG / "tls").is_dir() and mode(dest / CONFIG / "tls") == DIR_MODE
    for name in ("posta.conf", "posta-sasl.conf"):
        p = dest / FILTERS / name
        assert p.is_file() and mode(p) == FILE_MODE


def test_unit(installed):
    dest, out = installed
    unit = dest / unit_dir() / "posta.service"
    assert unit.is_file() and mode(unit) == FILE_MODE, "%s\n%s" % (unit, out)
    text = unit.read_text()
    assert not re.search(r"@[A-Z_]+@", text), "a placeholder is left:\n" + text
    for line in ("Type=notify", "ExecStart=/usr/sbin/posta start-fg",
                 "ExecReload=/usr/sbin/posta reload", "ExecStop=/usr/sbin/posta stop",
                 "Restart=on-failure", "ProtectSystem=full", "ProtectHome=no",
                 "ReadWritePaths=-/etc/posta/tls"):
        assert "\n%s\n" % line in text, line
    # set-group-ID postdrop and local's change of user need new privileges
    assert not re.search(r"^NoNewPrivileges\s*=\s*(yes|true|on|1)", text, re.M | re.I)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    # verify checks that the commands exist: point them into DESTDIR, and
    # let it find the man pages of Documentation= there.
    copy = dest.parent / ("verify-" + dest.name)
    copy.mkdir(exist_ok=True)
    (copy / "posta.service").write_text(text.replace("/usr/sbin/", "%s/%s/" % (dest, SBIN)))
    env = dict(os.environ, MANPATH=str(dest / MAN))
    r = subprocess.run([analyze, "verify", str(copy / "posta.service")], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=conftest.CMD_TIMEOUT)
    assert r.returncode == 0 and "posta.service" not in r.stdout, r.stdout


def test_second_install_keeps_config(installed, build):
    dest, _ = installed
    main_cf = dest / CONFIG / "main.cf"
    with open(main_cf, "a") as f:
        f.write(MARKER)
    with open(dest / ALIASES, "a") as f:
        f.write(MARKER)
    (dest / DAEMONS / "master").unlink()
    r = make(build, "install", "DESTDIR=%s" % dest, "PREFIX=%s" % PREFIX)
    assert r.returncode == 0, r.stdout
    assert main_cf.read_text().endswith(MARKER)
    assert (dest / ALIASES).read_text().endswith(MARKER)
    assert "%s exists: kept" % main_cf in r.stdout, r.stdout
    assert (dest / DAEMONS / "master").is_file(), "programs are replaced"


def test_uninstall_keeps_config_and_spool(installed, build):
    dest, _ = installed
    r = make(build, "uninstall", "DESTDIR=%s" % dest, "PREFIX=%s" % PREFIX)
    assert r.returncode == 0, r.stdout
    for name in ("posta", "posta-sendmail", "postdrop"):
        assert not (dest / SBIN / name).exists(), name
    assert not (dest / DAEMONS).exists()
    for section, name in man_pages():
        assert not (dest / MAN / ("man" + section) / name).exists(), name
    assert not (dest / unit_dir() / "posta.service").exists()
    assert not (dest / "usr/share/posta").exists()
    for p in ("main.cf", "master.cf"):
        assert (dest / CONFIG / p).is_file(), p
    assert (dest / ALIASES).is_file()
    assert (dest / SPOOL).is_dir()
    assert "uninstall: kept the configuration" in r.stdout, r.stdout


def test_foreign_postdrop_kept(tmp_path, build):
    """Another MTA's postdrop stops install and survives uninstall."""
    sbin = tmp_path / SBIN
    sbin.mkdir(parents=True)
    foreign = sbin / "postdrop"
    foreign.write_text(FOREIGN_POSTDROP)
    r = make(build, "install", "DESTDIR=%s" % tmp_path, "PREFIX=%s" % PREFIX)
    assert r.returncode != 0, r.stdout
    assert "belongs to another mail system" in r.stdout, r.stdout
    assert foreign.read_text() == FOREIGN_POSTDROP
    assert not (sbin / "posta").exists(), "install stopped before installing anything"
    r = make(build, "uninstall", "DESTDIR=%s" % tmp_path, "PREFIX=%s" % PREFIX)
    assert r.returncode == 0, r.stdout
    assert foreign.read_text() == FOREIGN_POSTDROP
    assert "is not posta's: kept" in r.stdout, r.stdout
