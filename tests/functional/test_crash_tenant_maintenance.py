"""The tenant freeze's crash matrix against a real Keystone (harness:
``tests.functional.crash``).

The kill points come from the kind's step lists (``ephyra.tenants.steps.FORWARD`` and
``ROLLBACK``): a boundary after every step, and mid-step inside each step that makes
several Keystone calls (between two grants, between two revokes; in ``record``, after the
journal has the freeze and before Keystone has it).

- Forward: ONE freeze is killed -9 at every point in turn, each kill resumed by a new
  ``ephyra tenant maintenance resume`` that is itself killed at the next point.
- Rollback: its ``off`` is killed at every rollback point in turn, each recovered by a new
  ``ephyra tenant maintenance off``.

Each process is held at its point by ``tests.functional.holds.held_ephyra`` (stopped before
the call named, until killed), so each kill lands there whatever the machine's speed. After
every kill: no assignment lost but the writers the freeze removes, none added but the
grants the freeze makes, and the run unfinished in the journal. After the forward chain,
every writer reads; after the rollback chain, the assignments are exactly as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ephyra.operations.local import Local
from ephyra.tenants.keystone import Grant
from ephyra.tenants.steps import (
    FORWARD,
    ROLLBACK,
    GrantReaders,
    RecordFreeze,
    RestoreWriters,
    RevokeGrants,
    RevokeWriters,
)
from testbed.keystone import Keystone
from tests.functional.crash import Chain, KillPoint, Stop, kill_points, said
from tests.functional.ephyra_cli import EPHYRA, Background, Ephyra
from tests.functional.holds import HELD, Gate, held_ephyra
from tests.functional.tenants import CLOUD, clouds, make_tenant

pytestmark = pytest.mark.functional
KIND = "tenant-maintenance"
ID = "ephyra.tenants.keystone:Identity"
MULTI = [RecordFreeze.title, GrantReaders.title, RevokeWriters.title]
FORWARD_POINTS = kill_points([s.title for s in FORWARD], mid=MULTI, phases=["forward"])
ROLLBACK_POINTS = kill_points(
    [s.title for s in ROLLBACK], mid=[RestoreWriters.title, RevokeGrants.title], phases=["rollback"]
)
#: Where a held process waits (``module:function``, call number). A boundary is held
#: before the next step's first effect; after the last step, before the project's outcome
#: is written (its second save in the process). Mid-step: before the second Keystone call
#: of the step (the first is done), or, in ``record``, before Keystone gets the freeze.
HOLDS: dict[str, tuple[str, int]] = {
    "forward:record:mid-step": (f"{ID}.save_record", 1),
    "forward:record:boundary": ("ephyra.tenants.steps:GrantReaders.apply", 1),
    "forward:grant-readers:mid-step": (f"{ID}.grant", 2),
    "forward:grant-readers:boundary": ("ephyra.tenants.steps:RevokeWriters.apply", 1),
    "forward:revoke-writers:mid-step": (f"{ID}.revoke", 2),
    "forward:revoke-writers:boundary": ("ephyra.tenants.records:OUTCOMES.save", 2),
    "rollback:restore-writers:mid-step": (f"{ID}.grant", 2),
    "rollback:restore-writers:boundary": ("ephyra.tenants.steps:RevokeGrants.apply", 1),
    "rollback:revoke-grants:mid-step": (f"{ID}.revoke", 2),
    "rollback:revoke-grants:boundary": ("ephyra.tenants.steps:Forget.apply", 1),
    "rollback:forget:boundary": ("ephyra.tenants.records:OUTCOMES.save", 2),
}


def in_run_order(points: list[KillPoint], steps: list[str]) -> list[KillPoint]:
    return sorted(points, key=lambda p: (steps.index(p.step), p.boundary))


@functools.cache
def _local(journal: Path) -> Local:
    return Local(journal_url=f"sqlite:///{journal}")


def status(ephyra: Ephyra) -> dict[str, Any]:
    return _local(ephyra.journal_file).status(KIND, None)


class Runs:
    def __init__(self, ephyra: Ephyra, gate: Gate, project: str) -> None:
        self.ephyra, self.gate, self.project = ephyra, gate, project

    def at(self, point: KillPoint | None, *args: str) -> Background:
        hold = HOLDS.get(str(point)) if point is not None else None
        prefix = held_ephyra(hold[0], hold[1], self.gate) if hold else EPHYRA
        return Background([*prefix, "-v", "tenant", "maintenance", *args], self.ephyra.env)

    def following(self, points: list[KillPoint], *args: str) -> Callable[[], Background]:
        """A new process for each stop after the first, held at the next; the last runs
        to the end."""
        rest: Iterator[KillPoint | None] = iter([*points[1:], None])
        return lambda: self.at(next(rest), *args)


def held_at(point: KillPoint) -> Callable[[Background], object]:
    target, call = HOLDS[str(point)]
    return lambda proc: proc.wait_for(said(f"{HELD} {target} call {call}"))


def test_a_freeze_killed_at_every_point_forward_and_back_loses_nothing(
    keystone: Keystone, tmp_path: Path, report: list[str]
) -> None:
    tenant = make_tenant(keystone)
    ephyra = clouds(keystone, tmp_path)
    before = set(tenant.assignments())
    runs = Runs(ephyra, Gate(tmp_path / "never-opened"), tenant.project)
    where = (tenant.project, "--os-cloud", CLOUD)
    freeze: dict[str, set[Grant]] = {}

    def changes() -> dict[str, set[Grant]]:
        """What the freeze adds and removes, as the journal has it."""
        if not freeze:
            data = _local(ephyra.journal_file).journal
            run = status(ephyra)["id"]
            record = data.record(run, f"tenant:{tenant.project}")["freeze"]
            freeze["grants"] = {Grant.from_dict(g) for g in record["grants"]}
            freeze["revokes"] = {Grant.from_dict(g) for g in record["revokes"]}
            assert len(freeze["grants"]) >= 2 and len(freeze["revokes"]) >= 2, record
        return freeze

    def nothing_lost(point: KillPoint) -> Callable[[], None]:
        """Right after a kill: the run unfinished; every assignment there was is there but
        the writers the freeze removes; nothing new but what it grants; mid-step, the
        step's first call made and no other."""

        def landed() -> None:
            shown = status(ephyra)
            assert shown["state"] in ("running", "rolling-back"), shown
            assert shown["phase"] == point.phase
            now = set(tenant.assignments())
            made = changes()
            assert before - made["revokes"] <= now, before - now
            assert now <= before | made["grants"], now - before
            granted, revoked = made["grants"] & now, made["revokes"] - now
            mid = {
                "forward:record:mid-step": lambda: not tenant.record().get("ephyra_maintenance"),
                "forward:grant-readers:mid-step": lambda: len(granted) == 1 and not revoked,
                "forward:revoke-writers:mid-step": lambda: len(revoked) == 1,
                "rollback:restore-writers:mid-step": lambda: (
                    len(made["revokes"] & now) == 1 and granted == made["grants"]
                ),
                "rollback:revoke-grants:mid-step": lambda: (
                    len(granted) == len(made["grants"]) - 1 and not revoked
                ),
            }
            assert mid.get(str(point), lambda: True)(), (str(point), granted, revoked)

        return landed

    forward = in_run_order(FORWARD_POINTS, [s.title for s in FORWARD])
    Chain(
        start=lambda: runs.at(forward[0], "on", *where, "--split-inherited", "--yes"),
        resume=runs.following(forward, "resume"),
        check=lambda: None,
    ).run([Stop(p, held_at(p), nothing_lost(p)) for p in forward], report, KIND)
    assert status(ephyra)["state"] == "succeeded"
    assert tenant.writers() == set()
    assert set(tenant.assignments()) == (before - changes()["revokes"]) | changes()["grants"]

    back = in_run_order(ROLLBACK_POINTS, [s.title for s in ROLLBACK])
    Chain(
        start=lambda: runs.at(back[0], "off", *where),
        resume=runs.following(back, "off", *where),
        check=lambda: None,
    ).run([Stop(p, held_at(p), nothing_lost(p)) for p in back], report, KIND)
    assert status(ephyra)["state"] == "rolled-back"
    assert set(tenant.assignments()) == before
    assert tenant.record().get("ephyra_maintenance") is None
