"""``bench/versions.py`` at small sizes, on its own real etcd: every contender runs and
agrees, the agents converge, and a rollout that cannot finish in time is reported as such
(exit 1) rather than waited for."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "versions.py"


@pytest.fixture(scope="module")
def etcdctl() -> str:
    """The etcdctl the shell-loop contenders run (Debian's etcd-client, which
    scripts/bootstrap.sh installs)."""
    found = shutil.which("etcdctl")
    assert found, "no etcdctl: run scripts/bootstrap.sh (it installs etcd-client)"
    return found


def bench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), *args, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, json.loads(out.read_text()) if out.exists() else []


def by_name(results: list[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["part"], r["contender"]): r for r in results}


def test_every_contender_runs_and_the_agents_converge(tmp_path: Path, etcdctl: str) -> None:
    done, results = bench(
        tmp_path,
        *("--hosts", "500", "--repeat", "2", "--agents", "40", "--processes", "2"),
        *("--cli-sample", "5", "--idle-seconds", "1", "--deadline", "30"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = by_name(results)
    assert set(found) == {
        ("verify", "ephyra-etcd"),
        ("verify", "ephyra-sqlite"),
        ("verify", "get-loop"),
        ("verify", "etcdctl-loop"),
        ("rollout", "ephyra-agents"),
        ("rollout", "loop"),
        ("rollout", "etcdctl-loop"),
    }
    for r in results:
        assert r["problems"] == [] and r["seconds"] is not None and r["seconds"] > 0, r
    assert found["verify", "etcdctl-loop"]["measured"] == 5  # a sample, scaled to 500
    agents = found["rollout", "ephyra-agents"]["detail"]
    assert agents["processes"] == 2 and len(agents["threads"]) == 2
    converged = found["rollout", "ephyra-agents"]["seconds"]
    # each agent says it runs 2.0 just after writing so: about when verify sees its key
    assert 0 < agents["p50_s"] <= agents["max_s"] < converged + 1.0
    assert agents["requests"]["Txn"] >= 40  # every agent wrote what it runs
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["part", "contender", "hosts"]
    assert any(line.startswith("aim: verify under 0.5 s") for line in lines)
    assert any(line.startswith("aim: rollout within 5 s") for line in lines)


def test_a_rollout_past_its_deadline_is_reported(tmp_path: Path) -> None:
    done, results = bench(
        tmp_path,
        *("--hosts", "50", "--repeat", "1", "--agents", "10", "--processes", "1"),
        *("--cli-sample", "1", "--idle-seconds", "0", "--deadline", "1"),
        *("--upgrade-seconds", "3", "--loop-hosts", "1"),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    agents = by_name(results)["rollout", "ephyra-agents"]
    assert agents["seconds"] is None
    assert agents["problems"] == [
        "after 1 s only 0 of 10 run 2.0 (missing e.g. cmp-00000, cmp-00001, cmp-00002)"
    ]
    assert "did not converge, MISSED" in done.stdout


def test_a_fleet_whose_etcd_was_stopped_past_its_ttl_recovers_without_a_storm(
    tmp_path: Path,
) -> None:
    done, results = bench(
        tmp_path,
        *("--hosts", "50", "--repeat", "1", "--agents", "20", "--processes", "1"),
        *("--cli-sample", "1", "--loop-hosts", "1", "--idle-seconds", "0", "--ttl", "2"),
        *("--pause-etcd", "5", "--steal-cpu", "1", "--deadline", "30"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    agents = by_name(results)["rollout", "ephyra-agents"]
    detail = agents["detail"]
    assert agents["seconds"] > 5  # it converged, after etcd came back
    # every lease was lost, and every agent announced itself again once
    assert (detail["leases_lost"], detail["reannounced"], detail["reannounced_max"]) == (20, 20, 1)
    assert detail["requests"]["LeaseGrant"] == 20
    assert "pressure after the trigger: etcd stopped 5 s, 1 busy process(es)" in done.stdout
