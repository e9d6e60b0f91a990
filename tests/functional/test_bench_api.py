"""bench/api.py runs end to end (briefly) and prints its table with every answer a 2xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional
ROOT = Path(__file__).resolve().parents[2]


def test_the_api_benchmark_prints_its_numbers() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "api.py"),
            "--seconds",
            "2",
            "--connections",
            "10",
            "--runs",
            "3",
            "--nodes",
            "5",
            "--sdk-threads",
            "2",
            "--cli-looks",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    rows = [line.split() for line in lines if line.startswith(("ephyra ", "raw-sdk", "openstack"))]
    measured = [r for r in rows if "vs" not in r]
    assert len(measured) == 10, done.stdout
    for row in measured:
        p50, p99, rps, non_2xx = (float(v) for v in row[-4:])
        assert 0 < p50 <= p99 and rps > 0 and non_2xx == 0, row
    assert any(line.startswith("aim p99 < 50 ms, think clients") for line in lines)
