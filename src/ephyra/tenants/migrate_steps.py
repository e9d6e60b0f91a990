"""The steps of a tenant migration, and of its rollback, as TaskFlow tasks.

Forward: the freeze's own steps (record, grant-readers, revoke-writers), ``bring-project``
(when B has a Keystone of its own: the project, its users, groups and roles made there),
``enter`` (the run's user gets a role on the project on B, to make the project's things
there), one step per kind of resource in :data:`ephyra.tenants.resources.KINDS` order,
``leave`` (that role taken back) and the freeze's undoing on A (restore-writers,
revoke-grants, forget): with one shared Keystone, the project is unfrozen once it runs on B.

Rollback: clear-b (what the run made on B deleted), restart-a (the servers it stopped on
A started again), drop-snapshots, leave, clear-identity (what bring-project made deleted)
and the freeze's undoing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

from taskflow import task

from ephyra.engine.slots import Slots
from ephyra.errors import Interrupted
from ephyra.tenants import steps as freeze_steps
from ephyra.tenants import takeback
from ephyra.tenants.identity_copy import IdentityCopy
from ephyra.tenants.keystone import Grant, Identity
from ephyra.tenants.mapping import CREATED, INTENT, Mapping
from ephyra.tenants.migrate_records import DEFAULT_BYTES_IN_FLIGHT
from ephyra.tenants.resources import KINDS
from ephyra.tenants.steps import Record, TenantContext
from ephyra.tenants.transfer import BRING, Budget, Move


@dataclass
class MigrationContext:
    tenant: TenantContext
    move: Callable[[], Move]  # made once per flow
    role: str  # the role the run's user holds on the project while it creates on B
    user: Callable[[], str]  # the run's user's id
    #: B's slots (``tenant-migration into B``): this run uses ``concurrency`` of them.
    slots: Slots
    bytes_in_flight: int = DEFAULT_BYTES_IN_FLIGHT  # shared by the slots
    checkpoint: Callable[[], None] = field(default=lambda: None)
    #: B's own Keystone's copy of the project (None: one Keystone for both clouds).
    identity_copy: Callable[[], IdentityCopy | None] = field(default=lambda: None)

    @property
    def concurrency(self) -> int:
        return self.slots.count

    @property
    def record(self) -> Record:
        return self.tenant.record


class Step(task.Task):  # type: ignore[misc]
    title: ClassVar[str]

    def __init__(self, ctx: MigrationContext) -> None:
        super().__init__(name=self.title)
        self.ctx = ctx

    def execute(self) -> None:
        started = time.monotonic()
        on_step = self.ctx.tenant.on_step
        on_step(self.title, "started", 0.0)
        try:
            self.apply()
        except Interrupted:
            raise
        except Exception:
            on_step(self.title, "failed", time.monotonic() - started)
            raise
        on_step(self.title, "done", time.monotonic() - started)

    def apply(self) -> None:
        raise NotImplementedError


def _freeze_step(step: type[freeze_steps.Step]) -> Callable[[MigrationContext], task.Task]:
    """A step of the freeze's, in a migration's flow."""

    def make(ctx: MigrationContext) -> task.Task:
        return step(ctx.tenant)

    make.title = step.title  # type: ignore[attr-defined]  # read by titles()
    return make


def _on_b(ctx: MigrationContext) -> tuple[Identity, str]:
    """B's Keystone and the project's id there."""
    copy = ctx.identity_copy()
    if copy is None:
        return ctx.tenant.identity, ctx.record.freeze.project
    return copy.b, copy.b_project()


def _grant(ctx: MigrationContext) -> Grant:
    identity, project = _on_b(ctx)
    role = identity.roles()[ctx.role]
    return Grant("user", ctx.user(), "project", project, role)


class Enter(Step):
    """The run's user gets ``role`` on the project (unless it has it: then it is not the
    run's to take back), written down before it is given."""

    title = "enter"

    def apply(self) -> None:
        record = self.ctx.record
        if record.data.get("entered"):
            grant = Grant.from_dict(record.data["entered"])
        else:
            grant = _grant(self.ctx)
            if _on_b(self.ctx)[0].has(grant):
                record.save(entered_not_ours=grant.to_dict())
                return
            record.save(entered=grant.to_dict())
        _on_b(self.ctx)[0].grant(grant)


class Leave(Step):
    """Delete the key pairs the run's user held on B for the boots (kept, the next move
    of a key pair of that name would find the user holding it), and take back the role
    ``enter`` gave."""

    title = "leave"

    def apply(self) -> None:
        held = Mapping(self.ctx.record.data.get("mapping") or {}, lambda: None)
        if next(held.entries("transfer_keypair", CREATED, INTENT), None) is not None:
            takeback.drop_transfer_keypairs(self.ctx.move())
        entered = self.ctx.record.data.get("entered")
        if entered:
            _on_b(self.ctx)[0].revoke(Grant.from_dict(entered))


class BringProject(Step):
    """B with its own Keystone: the project, its domain, users, groups and assignments
    made there (what B lacks; see :mod:`ephyra.tenants.identity_copy`)."""

    title = "bring-project"

    def apply(self) -> None:
        copy = self.ctx.identity_copy()
        if copy is not None:
            copy.run()


class ClearIdentity(Step):
    """What bring-project made on B's Keystone deleted (never what it reused)."""

    title = "clear-identity"

    def apply(self) -> None:
        copy = self.ctx.identity_copy()
        if copy is not None:
            copy.clear()


#: The kinds whose every item (an image copy, a server move) holds one of B's slots.
SLOTTED = frozenset({"image", "server"})


class Bring(Step):
    """Every resource of one kind the tenant has on A, brought to B. An image or a server
    holds one of B's slots while it moves (as many at once as this run has slots, fewer
    while other runs into B hold some), with the slot's share of the bytes in flight."""

    kind: ClassVar[str]

    def apply(self) -> None:
        move = self.ctx.move()
        items = [i for i in move.raw().get(self.kind, []) if movable(self.kind, i)]
        bring = BRING[self.kind]
        if self.kind not in SLOTTED:
            for item in items:
                self.ctx.checkpoint()
                bring(move, item)
            return
        workers = min(self.ctx.concurrency, len(items))
        if not workers:
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(self._one, bring, move, item) for item in items]
        for future in futures:
            future.result()

    def _one(self, bring: Callable[[Move, dict[str, Any]], None], move: Move, item: Any) -> None:
        self.ctx.checkpoint()
        share = Budget.share(self.ctx.bytes_in_flight, self.ctx.concurrency)
        with self.ctx.slots.holding():
            bring(move.within(share), item)


def movable(kind: str, item: dict[str, Any]) -> bool:
    """What a plan lists as movable (the rest stays on A, as the plan said)."""
    from ephyra.tenants.resources import _DESCRIBE, _Names

    _, resource = _DESCRIBE[kind](item, _Names({}), {})
    return not resource.blocker


def _bring(kind: str) -> type[Bring]:
    return type(f"Bring_{kind}", (Bring,), {"kind": kind, "title": f"bring-{kind}"})


class ClearB(Step):
    title = "clear-b"

    def apply(self) -> None:
        takeback.clear_b(self.ctx.move())


class RestartA(Step):
    title = "restart-a"

    def apply(self) -> None:
        takeback.restart_a(self.ctx.move())


class DropSnapshots(Step):
    title = "drop-snapshots"

    def apply(self) -> None:
        takeback.drop_snapshots(self.ctx.move())


class DeleteOriginals(Step):
    title = "delete-originals"

    def apply(self) -> None:
        takeback.delete_originals(self.ctx.move())


StepMaker = Callable[[MigrationContext], task.Task]
UNFREEZE: tuple[StepMaker, ...] = tuple(_freeze_step(s) for s in freeze_steps.ROLLBACK)
FORWARD: tuple[StepMaker, ...] = (
    *(_freeze_step(s) for s in freeze_steps.FORWARD),
    BringProject,
    Enter,
    *(_bring(kind) for kind in KINDS),
    Leave,
    *UNFREEZE,
)
ROLLBACK: tuple[StepMaker, ...] = (
    ClearB,
    RestartA,
    DropSnapshots,
    Leave,
    ClearIdentity,
    *UNFREEZE,
)
FINISH: tuple[StepMaker, ...] = (DeleteOriginals,)


def titles(steps: tuple[StepMaker, ...]) -> list[str]:
    return [str(getattr(s, "title")) for s in steps]  # noqa: B009  # a class or a maker


__all__ = ["FINISH", "FORWARD", "ROLLBACK", "Identity", "MigrationContext", "titles"]
