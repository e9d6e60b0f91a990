"""bench/api.py runs end to end (briefly) and prints its table with every answer a 2xx,
Ephyra's endpoints beside their floor's, both served by two workers (``--workers 2``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional
ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = ("status", "run", "list", "kind-list")


def test_the_api_benchmark_prints_its_numbers_beside_the_floor() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "api.py"),
            "--seconds",
            "1",
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
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    starts = ("ephyra ", "floor ", "raw-sdk", "openstack")
    rows = {
        line[:40].strip(): line.split()
        for line in lines
        if line.startswith(starts) and " vs " not in line
    }
    modes = ("saturating", "think 10 ms")
    expected = {f"{who} {n} ({m})" for who in ("ephyra", "floor") for n in ENDPOINTS for m in modes}
    competitors = {"raw-sdk look (both planes)", "openstack CLI look (both planes)"}
    assert set(rows) == expected | competitors, done.stdout
    for row in rows.values():
        p50, p99, rps, non_2xx = (float(v) for v in row[-4:])
        assert 0 < p50 <= p99 and rps > 0 and non_2xx == 0, row
    against = lines.index(next(line for line in lines if line.startswith("against the floor")))
    compared = [line.rsplit(maxsplit=7) for line in lines[against + 1 : against + 9]]
    assert [c[0] for c in compared] == [f"{n} ({m})" for n in ENDPOINTS for m in modes]
    for label, *numbers in compared:
        p50, floor_p50, p99, floor_p99, ratio, cpu, floor_cpu = (float(v) for v in numbers)
        assert cpu > 0 and floor_cpu > 0, label  # the servers' CPU time per answer
        assert (p50, p99) == tuple(float(v) for v in rows[f"ephyra {label}"][-4:-2]), label
        assert (floor_p50, floor_p99) == tuple(float(v) for v in rows[f"floor {label}"][-4:-2])
        low, high = (p99 - 0.05) / (floor_p99 + 0.05), (p99 + 0.05) / (floor_p99 - 0.05)
        assert low - 0.005 <= ratio <= high + 0.005, label  # of the numbers before rounding
    aims = [line for line in lines if line.startswith("aim p99 within 2x of the floor")]
    assert [a.split(",")[1].split(":")[0].strip() for a in aims] == [
        "saturating clients",
        "think clients",
    ], aims
