"""Crash matrix: kill -9 the forklift at every step boundary and in the middle of slow
steps, in both directions; restart with ``resume``; check every invariant."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from ephyra.forklift.steps import STEPS
from testbed.ironic import Testbed
from testbed.seed import clear, seed_nodes, snapshot, write_credentials
from tests.functional.ephyra_cli import Ephyra
from tests.functional.invariants import assert_home, where

pytestmark = pytest.mark.functional
# An undeploy or a deploy on the slow testbed lasts about 2 s: a kill MID seconds after
# it starts lands inside it.
MID = 0.5
NODES = 2


@pytest.fixture(scope="module")
def moved(slow_testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two deployed nodes on cp1, their credentials, and how they looked."""
    for name in slow_testbed.names:
        clear(slow_testbed.connect(name))
    specs = seed_nodes(slow_testbed.connect("cp1"), NODES)
    creds = write_credentials(tmp_path_factory.mktemp("creds") / "c.yaml", specs)
    return {"creds": f"file:{creds}", "original": snapshot(slow_testbed.connect("cp1"))}


def never_nowhere(tb: Testbed, original: dict[str, Any]) -> None:
    lost = {u: p for u, p in where(tb, list(original)).items() if not p}
    assert not lost, f"nodes enrolled nowhere after the kill: {lost}"


def kill_then_resume(
    tb: Testbed,
    ephyra: Ephyra,
    original: dict[str, Any],
    args: list[str],
    line: str,
    delay: float,
    home: str,
) -> None:
    run = ephyra.background("forklift", *args)
    run.wait_for(lambda text: line in text)
    time.sleep(delay)
    run.kill()
    never_nowhere(tb, original)
    resumed = ephyra("forklift", "resume")
    assert resumed.code == 0, resumed.err
    assert_home(tb, original, home)


def forward(creds: str) -> list[str]:
    return ["start", "--from", "cp1", "--to", "cp2", "--credentials", creds, "--concurrency", "2"]


def check_case(
    tb: Testbed,
    original: dict[str, Any],
    creds: str,
    state: Path,
    report: list[str],
    phase: str,
    line: str,
    delay: float,
) -> None:
    """Kill at ``line`` (+delay) of ``phase``, resume, check; end with every node home."""
    ephyra = Ephyra(tb.clouds_yaml, state)
    target = f"node-0000: {line}" if phase == "forward" else f"node-0001: {line}"
    try:
        if phase == "forward":
            kill_then_resume(tb, ephyra, original, forward(creds), target, delay, "cp2")
            back = ephyra("forklift", "rollback")
            assert back.code == 0, back.err
        else:
            there = ephyra("forklift", *forward(creds))
            assert there.code == 0, there.err
            kill_then_resume(tb, ephyra, original, ["rollback"], target, delay, "cp1")
        assert_home(tb, original, "cp1")
    except BaseException:
        report.append(f"crash matrix: kill at {phase} '{line}' +{delay}s: NOT survived")
        raise
    report.append(f"crash matrix: kill at {phase} '{line}' +{delay}s: survived")


@pytest.mark.parametrize("step", [step.title for step in STEPS])
@pytest.mark.parametrize("phase", ["forward", "rollback"])
def test_kill_at_step_boundary(
    clean_testbed: Testbed, tmp_path: Path, report: list[str], phase: str, step: str
) -> None:
    specs = seed_nodes(clean_testbed.connect("cp1"), NODES)
    creds = f"file:{write_credentials(tmp_path / 'c.yaml', specs)}"
    original = snapshot(clean_testbed.connect("cp1"))
    check_case(
        clean_testbed, original, creds, tmp_path / "state", report, phase, f"{step} done", 0.0
    )


@pytest.mark.parametrize("step", ["undeploy", "deploy"])
@pytest.mark.parametrize("phase", ["forward", "rollback"])
def test_kill_inside_a_slow_step(
    slow_testbed: Testbed,
    moved: dict[str, Any],
    tmp_path: Path,
    report: list[str],
    phase: str,
    step: str,
) -> None:
    check_case(
        slow_testbed,
        moved["original"],
        moved["creds"],
        tmp_path / "state",
        report,
        phase,
        f"{step} started",
        MID,
    )
