"""The first line of ``status``, read from what a run recorded: going forward, the count of
each outcome; in a rollback, where the items are now (a rolled-back forklift's nodes are
back where they came from, not "moved cp1 -> cp2")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ephyra.compute.kind import EvacuationKind
from ephyra.engine.journal import Journal
from ephyra.engine.kinds import RunKind
from ephyra.forklift.kind import ForkliftKind
from ephyra.upgrade.kind import UpgradeKind
from ephyra.upgrade.plan import Action as Change
from ephyra.upgrade.plan import Batch, Plan, Stage, Unit


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal(f"sqlite:///{tmp_path / 'journal.db'}")
    yield journal
    journal.close()


def first_lines(
    journal: Journal,
    kind: RunKind[Any],
    state: str,
    phase: str,
    meta: dict[str, Any],
    records: dict[str, dict[str, Any]],
) -> list[str]:
    """``status``'s lines above its tables, for a run recorded so."""
    record = {"state": state, "phase": phase, "created": time.time(), **meta}
    run = journal.create_run(kind.name, record, records)
    lines = kind.view(kind.status(journal, run).to_dict()).lines
    return [line.replace(run.id, "RUN") for line in lines]


def forklift(
    journal: Journal, state: str, phase: str, nodes: list[tuple[str, str]], reason: str = ""
) -> list[str]:
    order = [f"u{i}" for i in range(len(nodes))]
    meta = {"from": "cp1", "to": "cp2", "settings": {}, "order": order, "reason": reason}
    records = {
        f"node:u{i}": {"name": f"n{i}", "forward": fwd, **({"rollback": back} if back else {})}
        for i, (fwd, back) in enumerate(nodes)
    }
    return first_lines(journal, ForkliftKind(), state, phase, meta, records)


def test_a_rolled_back_forklift_says_its_nodes_are_back(journal: Journal) -> None:
    assert forklift(journal, "rolled-back", "rollback", [("moved", "moved")] * 24) == [
        "run RUN: rolled back: 24 nodes back in cp1 (moved cp1 -> cp2, then back)"
    ]
    nodes = [("moved", "moved"), ("moved", "moved"), ("pending", "")]
    assert forklift(journal, "rolled-back", "rollback", nodes) == [
        "run RUN: rolled back: 2 nodes back in cp1 (moved cp1 -> cp2, then back), "
        "1 node never moved"
    ]
    nodes = [("moved", "moved"), ("returned", "moved"), ("pending", "")]  # aborted, then back
    assert forklift(journal, "rolled-back", "rollback", nodes) == [
        "run RUN: rolled back: 1 node back in cp1 (moved cp1 -> cp2, then back), "
        "1 node returned to cp1 by the abort, 1 node never moved"
    ]


def test_a_forklift_going_back_says_where_each_node_is(journal: Journal) -> None:
    nodes = [("moved", ""), ("moved", ""), ("moved", "moved"), ("moved", "failed")]
    assert forklift(journal, "failed", "rollback", nodes, "a node could not go back") == [
        "run RUN: failed (rollback) cp2 -> cp1: 2 nodes still in cp2, 1 node back in cp1, "
        "1 node failed to go back",
        "reason: a node could not go back",
    ]


def test_a_forklift_going_forward_counts_its_outcomes(journal: Journal) -> None:
    nodes = [("moved", ""), ("moved", ""), ("returned", ""), ("pending", "")]
    assert forklift(journal, "aborted", "forward", nodes) == [
        "run RUN: aborted (forward) cp1 -> cp2: 2 moved, 1 pending, 1 returned"
    ]


def evacuation(journal: Journal, state: str, phase: str, back: str) -> list[str]:
    meta = {"cloud": "c1", "hosts": ["cmp-1", "cmp-2"], "also_down": [], "settings": {}}
    servers = {
        "s1": {"name": "vm1", "how": "live", "outcome": "moved", "to": "cmp-3"},
        "s2": {"name": "vm2", "how": "live", "outcome": "moved", "to": "cmp-3"},
        "s3": {"name": "vm3", "how": "stop", "outcome": "stopped"},
    }
    records = {
        "host:cmp-1": {"forward": "drained", "rollback": back, "servers": servers},
        "host:cmp-2": {"forward": "drained", "rollback": "restored"},
    }
    return first_lines(journal, EvacuationKind(), state, phase, meta, records)


def test_a_rolled_back_evacuation_says_its_servers_stay_where_they_went(
    journal: Journal,
) -> None:
    assert evacuation(journal, "succeeded", "forward", "") == [
        "run RUN: succeeded (forward) on c1: 2 moved, 1 stopped"
    ]
    assert evacuation(journal, "rolled-back", "rollback", "restored") == [
        "run RUN: rolled back on c1: 2 hosts back in service (maintenance off where this "
        "run put it on); 2 servers stay where they were moved; 1 server started again"
    ]
    assert evacuation(journal, "paused", "rollback", "interrupted") == [
        "run RUN: paused (rollback) on c1: 1 host stopped while restored, 1 host back in "
        "service (maintenance off where this run put it on); 2 servers stay where they were "
        "moved; 1 server stopped, to be started again"
    ]


def unit(host: str) -> Unit:
    return Unit(f"data@{host}", host, "compute", "data", (Change("pkg", ("nova-compute",)),))


PLAN = Plan(
    "2026.2",
    "service",
    (Stage("compute", "data", "compute", (Batch((unit("cmp-1"), unit("cmp-2"), unit("cmp-3"))),)),),
)


def upgrade(journal: Journal, state: str, phase: str, units: list[dict[str, Any]]) -> list[str]:
    meta = {"cloud": "c1", "release": "2026.2", "spec": {}, "plan": PLAN.to_dict()}
    records = {f"unit:data@cmp-{i}": data for i, data in enumerate(units, 1)}
    return first_lines(journal, UpgradeKind(), state, phase, meta, records)


def test_a_rolled_back_upgrade_says_what_went_back(journal: Journal) -> None:
    kept = {"pkg": {"before": "1", "after": "2", "kept": "pkg: no downgrade"}}
    units = [
        {"forward": "upgraded", "rollback": "restored"},
        {"forward": "upgraded", "rollback": "restored", "actions": kept},
        {},
    ]
    assert upgrade(journal, "rolled-back", "rollback", units) == [
        "run RUN: rolled back from 2026.2: 2 units taken back to the version before, "
        "1 unit never upgraded; 1 unit kept a change with no downgrade (see kept)"
    ]
    units[1] = {"forward": "upgraded"}
    assert upgrade(journal, "rolling-back", "rollback", units) == [
        "run RUN: rolling-back (rollback), release 2026.2: 1 unit taken back to the version "
        "before, 1 unit still at 2026.2, 1 unit never upgraded"
    ]
    assert upgrade(journal, "succeeded", "forward", [{"forward": "upgraded"}] * 3) == [
        "run RUN: succeeded (forward), release 2026.2: 3 upgraded"
    ]
