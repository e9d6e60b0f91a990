"""The steps of a tenant freeze, and of its undoing, as TaskFlow tasks.

Forward: record -> grant-readers -> revoke-writers. Rollback (``off``): restore-writers ->
revoke-grants -> forget. Each Keystone call is idempotent (a grant is a PUT, a revoke a
DELETE that may find nothing), and each step writes what it did to the journal after each
call, so a step killed half-way runs again safely. A failure reverts nothing: the project
stays as the run left it, for resume or rollback to carry on from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from taskflow import task

from ephyra.errors import Interrupted, StepFailed
from ephyra.tenants.freeze import LEFT, RESTORED, Freeze, restore
from ephyra.tenants.keystone import Grant, Identity


class Record:
    """The project's record in the journal (``freeze``: what the freeze changes;
    ``done``: assignment path -> what became of it)."""

    def __init__(self, load: Callable[[], dict[str, Any]], save: Callable[[dict[str, Any]], None]):
        self.data = load()
        self._save = save

    def save(self, **changes: Any) -> None:
        self.data.update(changes)
        self._save(self.data)

    @property
    def freeze(self) -> Freeze:
        return Freeze.from_dict(self.data["freeze"])

    @property
    def done(self) -> dict[str, str]:
        done: dict[str, str] = self.data.setdefault("done", {})
        return done

    def mark(self, grant: Grant, state: str) -> None:
        self.done[grant.path] = state
        self.save()


@dataclass
class TenantContext:
    run_id: str
    identity: Identity
    record: Record
    on_step: Callable[[str, str, float], None] = field(default=lambda *a: None)
    message: Callable[[str], None] = field(default=lambda text: None)


class Step(task.Task):  # type: ignore[misc]
    title: ClassVar[str]

    def __init__(self, ctx: TenantContext) -> None:
        super().__init__(name=self.title)
        self.ctx = ctx

    def execute(self) -> None:
        started = time.monotonic()
        self.ctx.on_step(self.title, "started", 0.0)
        try:
            self.apply(self.ctx.record.freeze)
        except Interrupted:
            raise
        except Exception:
            self.ctx.on_step(self.title, "failed", time.monotonic() - started)
            raise
        self.ctx.on_step(self.title, "done", time.monotonic() - started)

    def apply(self, freeze: Freeze) -> None:
        raise NotImplementedError


class RecordFreeze(Step):
    """Write the freeze down in Keystone (the project's property and tag) before anything
    changes; the first time, keep only the grants still absent and the writers still
    there, as Keystone is now."""

    title = "record"

    def apply(self, freeze: Freeze) -> None:
        keystone = self.ctx.identity
        if not freeze.run:
            project = keystone.project(freeze.project)
            theirs = (project.record or {}).get("run")
            if theirs and theirs != self.ctx.run_id:
                raise StepFailed(f"{project.name} is in maintenance by run {theirs} already")
            freeze = Freeze.from_dict(
                {
                    **freeze.to_dict(),
                    "run": self.ctx.run_id,
                    "grants": [g.to_dict() for g in freeze.grants if not keystone.has(g)],
                    "revokes": [g.to_dict() for g in freeze.revokes if keystone.has(g)],
                }
            )
            self.ctx.record.save(freeze=freeze.to_dict())
        keystone.save_record(freeze.project, freeze.to_dict())


class GrantReaders(Step):
    """Give the reader role to every writer (and, for an inherited writer, its role
    directly on the other projects its inherited assignment reached)."""

    title = "grant-readers"

    def apply(self, freeze: Freeze) -> None:
        for grant in freeze.grants:
            self.ctx.identity.grant(grant)
            self.ctx.record.mark(grant, "granted")


class RevokeWriters(Step):
    """Take every writing assignment away (direct, and inherited at its source)."""

    title = "revoke-writers"

    def apply(self, freeze: Freeze) -> None:
        for grant in freeze.revokes:
            self.ctx.identity.revoke(grant)
            self.ctx.record.mark(grant, "revoked")


class RestoreWriters(Step):
    """Give back every writer the freeze removed whose actor still reads the project."""

    title = "restore-writers"

    def apply(self, freeze: Freeze) -> None:
        for grant in freeze.revokes:
            decided = self.ctx.record.done.get(grant.path)
            outcome = restore(
                self.ctx.identity, freeze, grant, decided if decided in (LEFT, RESTORED) else None
            )
            if outcome == LEFT and decided != LEFT:
                self.ctx.message(
                    f"{freeze.said(grant)}: not given back (its reader role on the project "
                    "was removed during the maintenance)"
                )
            self.ctx.record.mark(grant, outcome)


class RevokeGrants(Step):
    """Take back what the freeze granted (each was absent before it)."""

    title = "revoke-grants"

    def apply(self, freeze: Freeze) -> None:
        for grant in freeze.grants:
            self.ctx.identity.revoke(grant)
            self.ctx.record.mark(grant, "taken back")


class Forget(Step):
    """Remove the freeze's record and tag from the project."""

    title = "forget"

    def apply(self, freeze: Freeze) -> None:
        project = self.ctx.identity.project(freeze.project)
        theirs = (project.record or {}).get("run")
        if theirs in (None, "", self.ctx.run_id):
            self.ctx.identity.save_record(freeze.project, None)


FORWARD: tuple[type[Step], ...] = (RecordFreeze, GrantReaders, RevokeWriters)
ROLLBACK: tuple[type[Step], ...] = (RestoreWriters, RevokeGrants, Forget)
