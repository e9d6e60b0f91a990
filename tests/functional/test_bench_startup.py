"""``bench/startup.py`` with one timed run each: every contender answers with the exit code
an operator sees (``upgrade status`` on a journal with no run: 2), and the table is
printed with the ratio to ``openstack --help``. No time is asserted: that is the
benchmark's to report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional
ROOT = Path(__file__).resolve().parents[2]

CONTENDERS = [
    "ephyra --help",
    "ephyra forklift start --help",
    "ephyra upgrade status",
    "ephyra run list",
    "openstack --help",
    "openstack server list --help",
]


def test_the_startup_benchmark_times_every_contender(tmp_path: Path, report: list[str]) -> None:
    out = tmp_path / "startup.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "startup.py"), "--repeat", "2", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(out.read_text())
    assert [r["name"] for r in rows] == CONTENDERS
    for row in rows:
        assert row["problems"] == [], row
        assert len(row["wall"]) == len(row["cpu"]) == 2
        assert 0 < row["median_s"] <= row["p90_s"]
        assert row["cpu_median_s"] > 0
    by_name = {r["name"]: r for r in rows}
    assert by_name["openstack --help"]["ratio"] == 1.0
    assert by_name["ephyra upgrade status"]["code"] == 2  # no run yet: refused, as documented
    assert {r["name"] for r in rows if r["aim_s"] is not None} == set(CONTENDERS[:4])
    lines = done.stdout.splitlines()
    assert lines[0].startswith("2 run(s) each")
    assert lines[1].split()[:3] == ["command", "median", "s"]
    assert [line.split("  ")[0].strip() for line in lines[2:8]] == CONTENDERS
    assert not any(line.startswith("FAILED") for line in lines)
    report.append(
        "bench/startup.py (2 runs): median s "
        + ", ".join(f"{r['name']} {r['median_s']:.2f} (cpu {r['cpu_median_s']:.2f})" for r in rows)
    )
