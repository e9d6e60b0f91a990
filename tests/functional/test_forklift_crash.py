"""The forklift's crash matrix (harness: ``tests.functional.crash``): kill -9 at every
step boundary of ``ephyra.forklift.steps.titles`` and in the middle of the steps that can
be held, going forward and rolling back; then resume in a new process and check that every
node is home in exactly one control plane with every field as it was. And an abort killed
while it returns the node in flight, finished by a new ``abort`` or by ``rollback``.

The points are killed in chains (``tests.functional.crash.Chain``): one move killed at
every point going forward in turn, each kill resumed by a new process that is killed at
the next point, then its rollback the same way. Mid-step points are held: ``prepare`` and
``return`` by the ``command`` workload waiting on a gate file (it marks that it waits),
``undeploy`` and ``deploy`` by the slow testbed (each fake deploy-interface call sleeps
1 s: the kill comes once the node's provision state is changing); the kill's landing is
checked after it. Each boundary kill follows a ``done`` line printed by the process killed
there: a resume does again the step its process was killed in and skips those recorded
done, and the gates hold the steps after ``record`` and ``deploy``, so every stop's line
comes from its own process (``reached`` fails at once if one goes past it unseen)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from ephyra.forklift.steps import titles
from testbed.ironic import Testbed
from testbed.seed import seed_nodes, snapshot, write_credentials
from tests.functional.crash import (
    Gates,
    KillPoint,
    Stop,
    done_line,
    forward_then_back,
    journal_state,
    kill_points,
    ok,
    reached,
    reported,
    said,
    shown_status,
    stops_at,
    wait_file,
)
from tests.functional.ephyra_cli import Background, Ephyra
from tests.functional.invariants import assert_exactly_one, assert_home, where

pytestmark = pytest.mark.functional
NODES = 2
#: Steps held by the command workload's gate, and by the slow testbed.
GATED = ("prepare", "return")
SLOW = ("undeploy", "deploy")
TITLES = titles(nova=False)  # standalone Ironic: no server steps
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
        self.gates = Gates(tmp / "gates", GATED)

    def start(self, concurrency: int = NODES) -> list[str]:
        return [
            "forklift", "start", "--from", "cp1", "--to", "cp2", "--credentials", self.creds,
            "--concurrency", str(concurrency), *self.gates.workload(),
        ]  # fmt: skip

    def resume(self) -> Background:
        """``forklift resume`` in a new process (the gates' old marks gone)."""
        self.gates.forget()
        return self.ephyra.background("forklift", "resume")

    def status(self) -> dict[str, Any]:
        return shown_status(self.ephyra, "forklift")

    def state(self) -> str:
        return journal_state(self.ephyra, "forklift")

    def never_nowhere(self) -> None:
        lost = {u: p for u, p in where(self.tb, list(self.original)).items() if not p}
        assert not lost, f"nodes enrolled nowhere after the kill: {lost}"

    def provision_state(self, node: str, plane: str) -> str:
        found = self.tb.connect(plane).baremetal.get_node(self.uuids[node])
        return str(found.provision_state)


def plane_of(point: KillPoint) -> str:
    """Where a slow step of ``point`` changes the node's provision state: the forward
    move undeploys in cp1 and deploys in cp2, the rollback the other way round."""
    source, target = ("cp1", "cp2") if point.phase == "forward" else ("cp2", "cp1")
    return source if point.step == "undeploy" else target


def held(move: Move, point: KillPoint, node: str, proc: Background) -> None:
    """Until the run driven by ``proc`` is at ``point`` for ``node``."""
    if point.boundary:
        proc.wait_for(reached(TITLES, node, point.step))
    elif point.step in GATED:
        wait_file(move.gates.held(point.step, node))
    else:  # slow: until the node's provision state is changing
        proc.wait_for(said(f"{node}: {point.step} started"))
        finished = done_line(node, point.step)
        while move.provision_state(node, plane_of(point)) in SETTLED:
            assert not any(finished(line) for line in proc.lines), f"{point} never caught"
            time.sleep(0.05)


def landed(move: Move, point: KillPoint, node: str, state: str) -> None:
    """Right after the kill: no node enrolled nowhere; the run unfinished in the journal;
    a kill mid-step caught its step under way (looked at first: Ironic goes on with it)."""
    if point.step in SLOW and not point.boundary:
        changing = move.provision_state(node, plane_of(point))
        assert changing not in SETTLED, f"{node} {changing}: the kill missed the {point.step}"
    move.never_nowhere()
    assert move.state() == state
    if point.step in GATED and not point.boundary:
        # prepare runs where the node comes from, return where it goes
        source, target = ("cp1", "cp2") if point.phase == "forward" else ("cp2", "cp1")
        places = assert_exactly_one(move.tb, [move.uuids[node]])
        assert places[move.uuids[node]] == (source if point.step == "prepare" else target)
        move.gates.open(point.step)  # the next process goes past the gate


def stops(move: Move, phase: str) -> list[Stop[Background]]:
    """A kill at every point of ``phase`` for one node (the other moves at the same
    time). The gated steps are closed until their mid-step kill has landed, so the
    boundaries before them (record, deploy) are held there too."""
    node, state = ("node-0000", "running") if phase == "forward" else ("node-0001", "rolling-back")
    return stops_at(
        POINTS,
        TITLES,
        phase,
        held=lambda point, proc: held(move, point, node, proc),
        landed=lambda point: landed(move, point, node, state),
    )


def test_killed_at_every_point_forward_then_rolling_back_each_time_resumed(
    clean_slow_testbed: Testbed, tmp_path: Path, report: list[str]
) -> None:
    """One move killed at every kill point going forward, each kill resumed by a new
    process killed at the next point; the last resume ends with every node in cp2 as it
    was. Then its rollback, killed at every point the same way, ends with every node home
    in cp1 as it was."""
    move = Move(clean_slow_testbed, tmp_path)

    def check(phase: str) -> None:
        assert_home(move.tb, move.original, "cp2" if phase == "forward" else "cp1")
        assert move.status()["state"] == ("succeeded" if phase == "forward" else "rolled-back")

    forward_then_back(
        start=lambda: move.ephyra.background(*move.start()),
        rollback=lambda: move.ephyra.background("forklift", "rollback"),
        resume=move.resume,
        stops=lambda phase: stops(move, phase),
        check=check,
        report=report,
        kind="forklift",
        before=move.gates.close_all,
    )


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
