"""The forklift's crash matrix (harness: ``tests.functional.crash``): kill -9 at every
step boundary of ``ephyra.forklift.steps.STEPS`` and in the middle of the steps that can
be held, going forward and rolling back; then resume in a new process and check that every
node is home in exactly one control plane with every field as it was. And an abort killed
while it returns the node in flight, finished by a new ``abort`` or by ``rollback``.

Mid-step points are held: ``prepare`` and ``return`` by the ``command`` workload waiting
on a gate file (it marks that it waits), ``undeploy`` and ``deploy`` by the slow testbed
(each fake deploy-interface call sleeps 1 s); the kill's landing is checked after it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ephyra.forklift.steps import STEPS
from testbed.ironic import Testbed
from testbed.seed import seed_nodes, snapshot, write_credentials
from tests.functional.crash import (
    BOUNDARY,
    Crash,
    KillPoint,
    done_line,
    kill_points,
    ok,
    params,
    reported,
    said,
    wait_file,
)
from tests.functional.ephyra_cli import Ephyra
from tests.functional.invariants import assert_exactly_one, assert_home, where

pytestmark = pytest.mark.functional
NODES = 2
#: Steps held by the command workload's gate, and by the slow testbed.
GATED = ("prepare", "return")
SLOW = ("undeploy", "deploy")
#: After a slow step's "started" line, a kill this late lands inside it (about 2 s long).
SLOW_MID = 0.5
TITLES = [step.title for step in STEPS]
POINTS = kill_points(TITLES, mid=[*GATED, *SLOW])
#: Provision states a node is in only while something changes it.
SETTLED = {"active", "available", "manageable", "enroll"}


class Move:
    """Two deployed nodes on cp1 of ``tb``, moved to cp2 by ``ephyra`` with the
    ``command`` workload, whose prepare and return wait for gate files in ``gates``."""

    def __init__(self, tb: Testbed, tmp: Path) -> None:
        self.tb = tb
        specs = seed_nodes(tb.connect("cp1"), NODES)
        self.creds = f"file:{write_credentials(tmp / 'c.yaml', specs)}"
        self.original = snapshot(tb.connect("cp1"))
        self.uuids = {spec["name"]: uuid for uuid, spec in self.original.items()}
        self.ephyra = Ephyra(tb.clouds_yaml, tmp / "state")
        self.gates = tmp / "gates"
        self.gates.mkdir()
        for step in GATED:
            self.open(step)

    def hook(self, step: str) -> str:
        gate, held = self.gates / f"open-{step}", self.gates / f"held-{step}"
        return (
            f'[ -e {gate} ] || {{ touch "{held}-$EPHYRA_NODE_NAME"; '
            f"until [ -e {gate} ]; do sleep 0.05; done; }}"
        )

    def start(self, concurrency: int = NODES) -> list[str]:
        return [
            "forklift", "start", "--from", "cp1", "--to", "cp2", "--credentials", self.creds,
            "--concurrency", str(concurrency), "--workload", "command",
            "--workload-opt", f"prepare={self.hook('prepare')}",
            "--workload-opt", f"return={self.hook('return')}",
        ]  # fmt: skip

    def open(self, step: str) -> None:
        (self.gates / f"open-{step}").touch()

    def close(self, step: str) -> None:
        (self.gates / f"open-{step}").unlink()

    def status(self) -> dict[str, Any]:
        shown: dict[str, Any] = yaml.safe_load(
            ok(self.ephyra("--format", "yaml", "forklift", "status")).out
        )
        return shown

    def never_nowhere(self) -> None:
        lost = {u: p for u, p in where(self.tb, list(self.original)).items() if not p}
        assert not lost, f"nodes enrolled nowhere after the kill: {lost}"

    def provision_state(self, node: str, plane: str) -> str:
        found = self.tb.connect(plane).baremetal.get_node(self.uuids[node])
        return str(found.provision_state)


def held(move: Move, point: KillPoint, node: str, proc_wait: Any) -> None:
    """Wait until the run is at ``point`` for ``node``."""
    if point.boundary:
        proc_wait(done_line(node, point.step))
    elif point.step in GATED:
        wait_file(move.gates / f"held-{point.step}-{node}")
    else:
        proc_wait(said(f"{node}: {point.step} started"))
        time.sleep(SLOW_MID)


def landed(move: Move, point: KillPoint, node: str, state: str, plane: str) -> None:
    """Right after the kill: no node enrolled nowhere; the run unfinished in the journal;
    a kill mid-step caught its step under way."""
    move.never_nowhere()
    shown = move.status()
    assert shown["state"] == state, shown
    if point.step in SLOW and not point.boundary:
        changing = move.provision_state(node, plane)
        assert changing not in SETTLED, f"{node} {changing}: the kill missed the {point.step}"
    if point.step in GATED and not point.boundary:
        # prepare runs where the node comes from, return where it goes
        source, target = ("cp1", "cp2") if point.phase == "forward" else ("cp2", "cp1")
        places = assert_exactly_one(move.tb, [move.uuids[node]])
        assert places[move.uuids[node]] == (source if point.step == "prepare" else target)


def check_case(move: Move, point: KillPoint) -> None:
    """Kill at ``point``, resume in a new process, check; end with every node home."""
    ephyra, gate = move.ephyra, point.step if point.step in GATED and not point.boundary else ""
    if point.phase == "forward":
        node, state, args = "node-0000", "running", move.start()
        # a slow step of the forward move: undeploy in cp1, deploy in cp2
        plane = "cp1" if point.step == "undeploy" else "cp2"
    else:
        ok(ephyra(*move.start()))
        assert_home(move.tb, move.original, "cp2")
        node, state, args = "node-0001", "rolling-back", ["forklift", "rollback"]
        plane = "cp2" if point.step == "undeploy" else "cp1"
    if gate:
        move.close(gate)
    proc = ephyra.background(*args)

    def recover() -> Any:
        if gate:
            move.open(gate)
        return ephyra("forklift", "resume")

    Crash(
        held=lambda: held(move, point, node, proc.wait_for),
        landed=lambda: landed(move, point, node, state, plane),
        recover=recover,
        check=lambda: assert_home(
            move.tb, move.original, "cp2" if point.phase == "forward" else "cp1"
        ),
    ).run(proc)
    if point.phase == "forward":
        ok(ephyra("forklift", "rollback"))
    assert_home(move.tb, move.original, "cp1")
    assert move.status()["state"] == "rolled-back"


BOUNDARIES = [p for p in POINTS if p.where == BOUNDARY or p.step in GATED]


@pytest.mark.parametrize("point", params(BOUNDARIES))
def test_killed_at_a_step_boundary_or_a_held_step_then_resumed(
    clean_testbed: Testbed, tmp_path: Path, report: list[str], point: KillPoint
) -> None:
    move = Move(clean_testbed, tmp_path)
    with reported(report, "forklift", point):
        check_case(move, point)


@pytest.mark.parametrize("point", params(p for p in POINTS if p.step in SLOW and not p.boundary))
def test_killed_inside_a_slow_step_then_resumed(
    clean_slow_testbed: Testbed, tmp_path: Path, report: list[str], point: KillPoint
) -> None:
    move = Move(clean_slow_testbed, tmp_path)
    with reported(report, "forklift", point):
        check_case(move, point)


@pytest.mark.parametrize("then", ["abort", "rollback"])
def test_abort_killed_while_returning_the_node_in_flight(
    clean_testbed: Testbed, tmp_path: Path, report: list[str], then: str
) -> None:
    """node-0000 killed gone from cp1 (in cp2 only); an abort in a new process starts to
    return it and is killed once it is enrolled in cp1 again; ``then`` finishes the job."""
    move = Move(clean_testbed, tmp_path)
    ephyra = move.ephyra
    first, second = move.uuids["node-0000"], move.uuids["node-0001"]

    with reported(report, "forklift", f"abort:return:{then}"):
        proc = ephyra.background(*move.start(concurrency=1))
        proc.wait_for(done_line("node-0000", "delete-source"))
        proc.kill()
        assert assert_exactly_one(move.tb, [first, second]) == {first: "cp2", second: "cp1"}
        aborting = ephyra.background("forklift", "abort")
        aborting.wait_for(said("abort: returning node-0000 to cp1"))
        aborting.wait_for(done_line("node-0000", "enroll-target"))
        aborting.kill()
        move.never_nowhere()
        assert sorted(where(move.tb, [first])[first]) == ["cp1", "cp2"]  # caught mid-return
        if then == "abort":
            assert "aborted" in ok(ephyra("forklift", "abort")).out
            shown = move.status()
            assert shown["state"] == "aborted"
            outcomes = {n["name"]: n["forward"] for n in shown["nodes"]}
            assert outcomes == {"node-0000": "returned", "node-0001": "pending"}
            assert_home(move.tb, move.original, "cp1")  # nothing moved stays moved
            assert ephyra("forklift", "resume").code == 2  # an aborted run does not resume
        ok(ephyra("forklift", "rollback"))
        assert_home(move.tb, move.original, "cp1")
        assert move.status()["state"] == "rolled-back"
