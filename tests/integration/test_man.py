"""test_man.py - the manual pages render cleanly and cover the commands

Every page in man/ must render with groff's warnings on (-ww) without a
single warning, as `man -l` would show it; every subcommand that `posta`
lists in its usage text must be documented in posta(1).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import POSTA

MAN = Path(__file__).resolve().parents[2] / "man"
PAGES = sorted(p for p in MAN.iterdir() if re.fullmatch(r".+\.[1-8]", p.name))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_renders_without_warnings(page):
    groff = shutil.which("groff")
    assert groff, "groff is missing (Debian groff-base, scripts/deps.sh test)"
    r = subprocess.run([groff, "-ww", "-man", "-Tutf8", str(page)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    assert len(r.stdout) > 200, "%s renders almost nothing" % page.name


def test_every_subcommand_is_documented():
    r = subprocess.run([str(POSTA), "no-such-command"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode != 0
    usage = r.stdout + r.stderr
    commands = re.findall(r"^  ([a-z][a-z-]+) {2,}", usage, re.M)
    assert len(commands) >= 10, usage
    page = (MAN / "posta.1").read_text().replace("\\-", "-")
    # each command has an entry of its own: the tag line after a ".TP"
    lines = page.splitlines()
    tags = set()
    for k, line in enumerate(lines[:-1]):
        if line.startswith(".TP"):
            tag = re.sub(r"\\f[BIRP]|^\.(BR|BI|B|IR|I) |\"", "", lines[k + 1]).split()
            if tag:
                tags.add(tag[0])
    missing = [c for c in commands if c not in tags]
    assert not missing, "not in posta(1): %s" % missing
