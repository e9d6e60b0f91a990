"""The forklift's crash matrix where Nova owns the nodes (harness:
``tests.functional.crash``), on the session's two clouds: kill -9 at every step boundary of
``ephyra.forklift.steps.titles(nova=True)`` and in the middle of four steps, going forward
and rolling back, each kill resumed by a new process killed at the next point.

Mid-step points are held: ``prepare`` and ``return`` by the ``command`` workload waiting
on a gate file, ``delete-server`` once Nova is deleting the node's server (or has deleted
it, before the step has seen the node torn down), ``boot-server`` once Nova has the new
server (before it is active). After each kill every node is enrolled somewhere and none
carries a server in both clouds; at the end every node is home in one cloud with every
field it had, and its server is there, active, with the same name, flavor, image and
metadata, and in no other cloud."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from ephyra.forklift.steps import titles
from testbed.tenantclouds import TwoClouds
from tests.functional import nova_nodes
from tests.functional.crash import (
    Gates,
    KillPoint,
    Stop,
    done_line,
    forward_then_back,
    journal_state,
    kill_points,
    reached,
    said,
    shown_status,
    stops_at,
    wait_file,
)
from tests.functional.ephyra_cli import Background, Ephyra
from tests.functional.invariants import assert_exactly_one, where
from tests.functional.nova_nodes import Planes, assert_home, never_two_servers

pytestmark = pytest.mark.functional
NODES = 2
GATED = ("prepare", "return")
#: Steps held while Nova deletes or builds the node's server.
SERVED = ("delete-server", "boot-server")
TITLES = titles(nova=True)
POINTS = kill_points(TITLES, mid=[*GATED, *SERVED])


class Move:
    """Two nodes in ``a``, each with its server, moved to ``b`` with ``--nova`` and the
    ``command`` workload, whose prepare and return wait for gate files."""

    def __init__(self, clouds: TwoClouds, tmp: Path) -> None:
        self.planes = Planes(clouds)
        self.nodes = nova_nodes.make(clouds, NODES)
        a = self.planes.connect("a")
        self.views = nova_nodes.node_views(a, self.nodes)
        self.servers = nova_nodes.servers_on(a, self.nodes)
        self.uuids = {view["name"]: uuid for uuid, view in self.views.items()}
        self.ephyra = Ephyra(clouds.clouds_yaml, tmp / "state")
        self.gates = Gates(tmp / "gates", GATED)

    def start(self) -> list[str]:
        return [
            "forklift", "start", "--from", "a", "--to", "b", "--nova",
            "--concurrency", str(NODES), *self.gates.workload(),
        ]  # fmt: skip

    def resume(self) -> Background:
        self.gates.forget()
        return self.ephyra.background("forklift", "resume")

    def status(self) -> dict[str, Any]:
        return shown_status(self.ephyra, "forklift")

    def server(self, node: str, plane: str) -> Any | None:
        """The server on ``node`` in ``plane``'s Nova, if any."""
        conn = self.planes.connect(plane)
        uuid = self.uuids[node]
        for server in conn.compute.servers(all_projects=True, details=True):
            if server.hypervisor_hostname == uuid:
                return server
        return None


def sides(point: KillPoint) -> tuple[str, str]:
    """The cloud ``point``'s move comes from and the one it goes to."""
    return ("a", "b") if point.phase == "forward" else ("b", "a")


def caught(move: Move, point: KillPoint, node: str) -> bool:
    """Whether Nova is in the middle of what ``point``'s step waits for."""
    source, target = sides(point)
    if point.step == "delete-server":
        server = move.server(node, source)
        return server is None or server.task_state == "deleting"
    return move.server(node, target) is not None


def held(move: Move, point: KillPoint, node: str, proc: Background) -> None:
    """Until the run driven by ``proc`` is at ``point`` for ``node``."""
    if point.boundary:
        proc.wait_for(reached(TITLES, node, point.step))
    elif point.step in GATED:
        wait_file(move.gates.held(point.step, node))
    else:
        proc.wait_for(said(f"{node}: {point.step} started"))
        finished = done_line(node, point.step)
        while not caught(move, point, node):
            assert not any(finished(line) for line in proc.lines), f"{point} never caught"
            time.sleep(0.05)
        assert not any(finished(line) for line in proc.lines), f"{point} caught too late"


def landed(move: Move, point: KillPoint, node: str, state: str) -> None:
    """Right after the kill: every node enrolled somewhere, none with a server in both
    clouds, the run unfinished in the journal; a kill mid-step finds the node where
    its step acts (the source while its server is deleted, the target while one boots)."""
    lost = {u: p for u, p in where(move.planes, move.nodes).items() if not p}
    assert not lost, f"nodes enrolled nowhere after the kill: {lost}"
    never_two_servers(move.planes, move.nodes)
    assert journal_state(move.ephyra, "forklift") == state
    if point.boundary:
        return
    source, target = sides(point)
    places = assert_exactly_one(move.planes, [move.uuids[node]])
    expected = source if point.step in ("prepare", "delete-server") else target
    assert places[move.uuids[node]] == expected
    if point.step in GATED:
        move.gates.open(point.step)  # the next process goes past the gate


def stops(move: Move, phase: str) -> list[Stop[Background]]:
    """A kill at every point of ``phase`` for one node (the other moves at the same time);
    the gated steps are closed until their mid-step kill has landed."""
    node, state = ("bm-00", "running") if phase == "forward" else ("bm-01", "rolling-back")
    return stops_at(
        POINTS,
        TITLES,
        phase,
        held=lambda point, proc: held(move, point, node, proc),
        landed=lambda point: landed(move, point, node, state),
    )


def test_servers_killed_at_every_point_forward_then_rolling_back_each_time_resumed(
    bare_two_clouds: TwoClouds, tmp_path: Path, report: list[str]
) -> None:
    """The move killed at every point forward, each kill resumed by a new process killed
    at the next; it ends with every node and its server in b as they were. Then its
    rollback, killed at every point the same way, ends with them all in a again."""
    move = Move(bare_two_clouds, tmp_path)

    def check(phase: str) -> None:
        assert_home(move.planes, move.views, move.servers, "b" if phase == "forward" else "a")
        assert move.status()["state"] == ("succeeded" if phase == "forward" else "rolled-back")

    forward_then_back(
        start=lambda: move.ephyra.background(*move.start()),
        rollback=lambda: move.ephyra.background("forklift", "rollback"),
        resume=move.resume,
        stops=lambda phase: stops(move, phase),
        check=check,
        report=report,
        kind="forklift --nova",
        before=move.gates.close_all,
    )
