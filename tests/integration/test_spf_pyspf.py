"""test_spf_pyspf.py - posta's SPF table agrees with pyspf

tests/unit/test_spf.c checks that posta's evaluator gives every result of
tests/golden/spf/cases.txt on the zone data of zone.txt; this runs pyspf
(Debian python3-spf) over the same table, so both implementations are held
to the same answers (pass, fail, softfail, neutral, none, permerror for
lookup limits and bad syntax, temperror, macros, exp=).
"""

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "golden" / "spf" / "check_pyspf.py"


def test_pyspf_agrees_with_the_golden_table():
    r = subprocess.run(["/usr/bin/python3", str(SCRIPT)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    assert r.returncode == 0, r.stdout
    assert " 0 disagree" in r.stdout, r.stdout
    cases = int(r.stdout.split(" cases")[0].split()[-1])
    assert cases >= 50, r.stdout
