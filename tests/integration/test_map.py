"""test_map.py - `posta map` as postmap(1): build, query, list, delete, add

Runs build/bin/posta (POSTA_BUILD) in a temporary folder: tables of every
buildable type (hash, btree, lmdb, cdb) are built from postmap-format
sources and checked through posta's own -q/-s, exit codes (0 found, 1 not
found, 2 error or usage), warnings naming file and line, the atomic
replace (a new inode each build), mode inheritance, -i, -d, -F, queries
of regexp:/pcre:/cidr:/texthash:/inline: tables, and, where Postfix's
postmap supports the type, that each side reads the other's files.
"""

import os
import shutil
import stat
import subprocess

import pytest

from conftest import POSTA

BUILD_TYPES = ("hash", "btree", "lmdb", "cdb")
SUFFIX = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"}
POSTMAP = "/usr/sbin/postmap"
POSTCONF = "/usr/sbin/postconf"
TIMEOUT = 60

SOURCE = """# virtual aliases
Postmaster@Example.COM   admin@example.com
sales@example.com        alice@example.com,
    bob@example.com
sales@example.com        second (ignored)
no-value-here
"""


def posta_map(*args, stdin=None):
    """posta_map - run `posta map ARGS`; the CompletedProcess (text)."""
    return subprocess.run([str(POSTA), "map"] + [str(a) for a in args], input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=TIMEOUT, env=dict(os.environ, MAIL_CONFIG="/nonexistent"))


def postfix_types():
    """postfix_types - the table types Postfix's postmap supports here."""
    if not os.access(POSTMAP, os.X_OK):
        return set()
    r = subprocess.run([POSTCONF, "-m"], stdout=subprocess.PIPE, text=True, check=False)
    return set(r.stdout.split())


@pytest.fixture
def src(tmp_path):
    """src - a postmap source file in a fresh folder."""
    path = tmp_path / "virtual"
    path.write_text(SOURCE)
    return path


@pytest.mark.parametrize("typ", BUILD_TYPES)
def test_build_and_query(src, typ):
    r = posta_map(f"{typ}:{src}")
    assert r.returncode == 0, r.stderr
    assert (src.parent / ("virtual" + SUFFIX[typ])).exists()
    # warnings name file and line, as postmap's
    assert f"{src}, line 5: duplicate entry: \"sales@example.com\"" in r.stderr
    assert f"{src}, line 6: expected format: key whitespace value" in r.stderr
    # keys were folded when built, and are folded when queried
    r = posta_map("-q", "POSTMASTER@example.com", f"{typ}:{src}")
    assert (r.returncode, r.stdout) == (0, "admin@example.com\n"), r.stderr
    r = posta_map("-q", "sales@example.com", f"{typ}:{src}")
    assert r.stdout == "alice@example.com,    bob@example.com\n"
    r = posta_map("-q", "nobody@example.com", f"{typ}:{src}")
    assert (r.returncode, r.stdout) == (1, "")


@pytest.mark.parametrize("typ", BUILD_TYPES)
def test_dump_delete_incremental(src, typ):
    spec = f"{typ}:{src}"
    assert posta_map(spec).returncode == 0
    r = posta_map("-s", spec)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == [
        "postmaster@example.com\tadmin@example.com",
        "sales@example.com\talice@example.com,    bob@example.com",
    ]
    r = posta_map("-d", "Sales@Example.com", spec)
    assert r.returncode == 0, r.stderr
    assert posta_map("-q", "sales@example.com", spec).returncode == 1
    r = posta_map("-d", "sales@example.com", spec)
    assert r.returncode == 1
    r = posta_map("-i", spec, stdin="New@Example.com new\npostmaster@example.com other\n")
    assert r.returncode == 0, r.stderr
    assert "duplicate entry: \"postmaster@example.com\"" in r.stderr
    assert posta_map("-q", "new@example.com", spec).stdout == "new\n"
    assert posta_map("-q", "postmaster@example.com", spec).stdout == "admin@example.com\n"
    # -r: the later value wins
    r = posta_map("-i", "-r", spec, stdin="postmaster@example.com other\n")
    assert r.returncode == 0, r.stderr
    assert posta_map("-q", "postmaster@example.com", spec).stdout == "other\n"
    # -d - reads keys from stdin
    r = posta_map("-d", "-", spec, stdin="new@example.com\nmissing\n")
    assert r.returncode == 0, r.stderr
    assert posta_map("-q", "new@example.com", spec).returncode == 1


def test_query_stdin(src):
    spec = f"lmdb:{src}"
    assert posta_map(spec).returncode == 0
    r = posta_map("-q", "-", spec, stdin="postmaster@example.com\nnope\nsales@example.com\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "postmaster@example.com\tadmin@example.com",
        "sales@example.com\talice@example.com,    bob@example.com",
    ]
    r = posta_map("-q", "-", spec, stdin="nope\n")
    assert (r.returncode, r.stdout) == (1, "")
    # several tables: the first that has the key answers
    other = src.parent / "other"
    other.write_text("nope found-in-other\npostmaster@example.com shadowed\n")
    assert posta_map(f"cdb:{other}").returncode == 0
    r = posta_map("-q", "nope", spec, f"cdb:{other}")
    assert r.stdout == "found-in-other\n"
    r = posta_map("-q", "postmaster@example.com", spec, f"cdb:{other}")
    assert r.stdout == "admin@example.com\n"


def test_atomic_replace_and_mode(src):
    spec = f"cdb:{src}"
    src.chmod(0o640)
    assert posta_map(spec).returncode == 0
    db = src.parent / "virtual.cdb"
    first = db.stat()
    assert stat.S_IMODE(first.st_mode) == 0o640
    assert posta_map(spec).returncode == 0
    second = db.stat()
    assert second.st_ino != first.st_ino          # a new file renamed into place
    assert not list(src.parent.glob("*.tmp"))
    # -p: no inheritance
    assert posta_map("-p", spec).returncode == 0
    assert stat.S_IMODE(db.stat().st_mode) & 0o044 == 0o044
    # -d keeps the table's own mode
    db.chmod(0o600)
    assert posta_map("-d", "postmaster@example.com", spec).returncode == 0
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_other_table_types(tmp_path):
    rx = tmp_path / "rx"
    rx.write_text("/^(.*)@example\\.com$/  local:$1\nif !/@/\n/./  no-domain\nendif\n")
    r = posta_map("-q", "Joe@Example.com", f"regexp:{rx}")
    assert (r.returncode, r.stdout) == (0, "local:Joe\n"), r.stderr
    assert posta_map("-q", "joe", f"regexp:{rx}").stdout == "no-domain\n"
    assert posta_map("-q", "joe@other.org", f"regexp:{rx}").returncode == 1
    pc = tmp_path / "pc"
    pc.write_text("/^(?<user>[a-z]+)\\+\\w+@/  $1\n")
    assert posta_map("-q", "joe+tag@x", f"pcre:{pc}").stdout == "joe\n"
    cidr = tmp_path / "cidr"
    cidr.write_text("192.0.2.0/24  REJECT\n")
    assert posta_map("-q", "192.0.2.7", f"cidr:{cidr}").stdout == "REJECT\n"
    assert posta_map("-q", "198.51.100.1", f"cidr:{cidr}").returncode == 1
    th = tmp_path / "th"
    th.write_text("Key Value\n")
    assert posta_map("-q", "KEY", f"texthash:{th}").stdout == "Value\n"
    assert posta_map("-s", f"texthash:{th}").stdout == "key\tValue\n"
    assert posta_map("-q", "a", "inline:{a=b}").stdout == "b\n"
    r = posta_map("-q", "a", "unionmap:{inline:{a=1}, static:2}")
    assert r.stdout == "1,2\n"
    # a regexp syntax error is a warning with file and line
    bad = tmp_path / "bad"
    bad.write_text("/ok/ fine\n/[/ broken\n")
    r = posta_map("-q", "ok", f"regexp:{bad}")
    assert r.returncode == 0
    assert f"regexp map {bad}, line 2:" in r.stderr


def test_errors_and_usage(tmp_path):
    r = posta_map("-q", "x", f"hash:{tmp_path}/missing")
    assert r.returncode == 2
    assert f"{tmp_path}/missing.db" in r.stderr
    r = posta_map(f"lmdb:{tmp_path}/missing")
    assert r.returncode == 2
    assert f"{tmp_path}/missing" in r.stderr
    corrupt = tmp_path / "corrupt.lmdb"
    corrupt.write_bytes(b"\x00garbage" * 1000)
    r = posta_map("-q", "x", f"lmdb:{tmp_path}/corrupt")
    assert r.returncode == 2
    assert str(corrupt) in r.stderr
    for args in ([], ["-x", "hash:/x"], ["-q"], ["-q", "a", "-s", "hash:/x"],
                 ["-i", "-q", "a", "hash:/x"]):
        r = posta_map(*args)
        assert r.returncode == 2, args
        assert "usage: posta map" in r.stderr
    (tmp_path / "t").write_text("a b\n")
    r = posta_map(f"regexp:{tmp_path}/t")
    assert r.returncode == 2
    assert "unsupported map type" in r.stderr
    r = posta_map("-s", f"regexp:{tmp_path}/t")
    assert r.returncode == 2


def test_default_type_from_config(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "main.cf").write_text("default_database_type = cdb\n")
    (tmp_path / "t").write_text("a b\n")
    r = posta_map("-c", etc, tmp_path / "t")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "t.cdb").exists()
    assert posta_map("-c", etc, "-q", "a", tmp_path / "t").stdout == "b\n"
    # no main.cf: hash
    r = posta_map("-c", tmp_path / "nowhere", tmp_path / "t")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "t.db").exists()


def test_base64_files(tmp_path):
    (tmp_path / "a.pem").write_text("-----A-----\n")
    (tmp_path / "b.pem").write_text("-----B-----\n")
    src = tmp_path / "certs"
    src.write_text(f"mail.example.com {tmp_path}/a.pem {tmp_path}/b.pem\n")
    assert posta_map("-F", f"hash:{src}").returncode == 0
    raw = posta_map("-q", "mail.example.com", f"hash:{src}").stdout.strip()
    assert raw == "LS0tLS1BLS0tLS0KLS0tLS1CLS0tLS0K"
    r = posta_map("-F", "-q", "mail.example.com", f"hash:{src}")
    assert r.stdout == "-----A-----\n-----B-----\n\n"


@pytest.mark.parametrize("typ", ("hash", "lmdb", "cdb"))
def test_postfix_interop(tmp_path, typ):
    if typ not in postfix_types():
        pytest.skip(f"Postfix's postmap does not support {typ} here")
    ours = tmp_path / "ours"
    ours.write_text("Alpha@Example.COM one value\nbeta two\n")
    assert posta_map(f"{typ}:{ours}").returncode == 0
    r = subprocess.run([POSTMAP, "-q", "alpha@example.com", f"{typ}:{ours}"],
                       stdout=subprocess.PIPE, text=True, timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (0, "one value\n")
    r = subprocess.run([POSTMAP, "-q", "gamma", f"{typ}:{ours}"],
                       stdout=subprocess.PIPE, text=True, timeout=TIMEOUT)
    assert r.returncode == 1
    theirs = tmp_path / "theirs"
    theirs.write_text("Alpha@Example.COM one value\nbeta two\n")
    subprocess.run([POSTMAP, f"{typ}:{theirs}"], check=True, timeout=TIMEOUT)
    r = posta_map("-q", "ALPHA@example.com", f"{typ}:{theirs}")
    assert (r.returncode, r.stdout) == (0, "one value\n"), r.stderr
    r = posta_map("-s", f"{typ}:{theirs}")
    assert sorted(r.stdout.splitlines()) == ["alpha@example.com\tone value", "beta\ttwo"]
    # posta edits a Postfix-made table; Postfix still reads it
    assert posta_map("-d", "beta", f"{typ}:{theirs}").returncode == 0
    r = subprocess.run([POSTMAP, "-q", "beta", f"{typ}:{theirs}"],
                       stdout=subprocess.PIPE, text=True, timeout=TIMEOUT)
    assert r.returncode == 1


@pytest.mark.parametrize("typ", ("hash", "lmdb", "cdb"))
def test_concurrent_incremental(tmp_path, typ):
    spec = f"{typ}:{tmp_path}/t"
    (tmp_path / "t").write_text("base 0\n")
    assert posta_map(spec).returncode == 0
    procs = [subprocess.Popen([str(POSTA), "map", "-i", spec], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    for i, p in enumerate(procs):
        p.stdin.write(f"key{i} value{i}\n")
        p.stdin.close()
    for p in procs:
        assert p.wait(timeout=TIMEOUT) == 0, p.stderr.read()
        p.stdout.close()
        p.stderr.close()
    r = posta_map("-s", spec)
    assert sorted(r.stdout.splitlines()) == ["base\t0"] + [f"key{i}\tvalue{i}" for i in range(6)]
