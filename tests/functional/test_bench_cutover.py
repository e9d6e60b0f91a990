"""``bench/cutover.py`` for one round: every contender cuts over, the new controller
answers after each, and Ephyra's window is no longer than the script's without ARP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional
ROOT = Path(__file__).resolve().parents[2]


def test_the_cutover_benchmark_runs_every_contender(tmp_path: Path, report: list[str]) -> None:
    out = tmp_path / "cutover.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cutover.py"), "--rounds", "1", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    medians = json.loads(out.read_text())["medians"]
    assert set(medians) == {"script+arping", "script", "ephyra"}
    assert medians["ephyra"] < medians["script"]
    report.append(
        "bench/cutover.py (1 round): VIP unreachable "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in medians.items())
    )
