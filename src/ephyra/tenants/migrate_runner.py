"""Running a tenant migration: one project, one TaskFlow engine per phase over its flow
detail in the run's logbook (``forward:<project>``, ``rollback:<project>``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ephyra.clouds import connect, translated
from ephyra.engine.slots import Slots
from ephyra.engine.states import Phase
from ephyra.tenants.identity_copy import SEPARATE, IdentityCopy
from ephyra.tenants.keystone import Identity
from ephyra.tenants.mapping import Mapping
from ephyra.tenants.migrate_records import (
    DEFAULT_BYTES_IN_FLIGHT,
    DEFAULT_CONCURRENCY,
    DEFAULT_MIGRATOR_ROLE,
    OUTCOMES,
    MigrationMeta,
)
from ephyra.tenants.migrate_steps import FINISH, FORWARD, ROLLBACK, MigrationContext, StepMaker
from ephyra.tenants.records import Outcome
from ephyra.tenants.runner import TenantDriver
from ephyra.tenants.steps import Record
from ephyra.tenants.transfer import Budget, Move

START = "ephyra.tenant.migration.start"
END = "ephyra.tenant.migration.end"
ROLLED_BACK = "ephyra.tenant.migration.rollback"
FINISHED = "ephyra.tenant.migration.finish"


def slots_name(target: str) -> str:
    """The slots every tenant migration into cloud ``target`` shares."""
    return f"tenant-migration into {target}"


def scoped(cloud: str, project: str) -> Any:
    """A connection to ``cloud`` as its clouds.yaml user, scoped to ``project`` (an id)."""
    import openstack

    with translated(cloud, f"log in to project {project}"):
        conn = openstack.connect(cloud=cloud, project_id=project)
        conn.authorize()
    return conn


class TenantMigration(TenantDriver):
    meta: MigrationMeta
    outcomes = OUTCOMES
    done = {Phase.FORWARD: Outcome.MOVED, Phase.ROLLBACK: Outcome.RESTORED}
    doing = {Phase.FORWARD: "move", Phase.ROLLBACK: "take back"}

    read_meta = staticmethod(MigrationMeta.from_meta)

    def steps(self, phase: Phase) -> Sequence[StepMaker]:
        return FORWARD if phase is Phase.FORWARD else ROLLBACK

    def beginning(self, phase: Phase) -> None:
        if phase is Phase.FORWARD:
            self._notice(START)  # started or resumed

    def ended(self, phase: Phase) -> None:
        self._notice(END if phase is Phase.FORWARD else ROLLED_BACK)

    def holding(self, ctx: MigrationContext) -> Slots:
        return ctx.slots

    def _notice(self, event: str) -> None:
        """Told to the run's notifiers (docs/notifications.md)."""
        self.observer.notice(
            event,
            project=self.meta.project,
            name=self.meta.project_name,
            source=self.meta.source,
            target=self.meta.target,
        )

    def context(self, record: Record) -> MigrationContext:
        tenant = self.tenant_context(record)
        mapping = Mapping(record.data.setdefault("mapping", {}), record.save)
        made: dict[str, Move] = {}
        settings = {**(record.data.get("settings") or {}), **(self.run.meta.get("settings") or {})}
        meta = self.meta
        copies: dict[str, IdentityCopy] = {}

        def identity_copy() -> IdentityCopy | None:
            if settings.get("keystones") != SEPARATE:
                return None
            if "copy" not in copies:
                b = Identity.connect(meta.target)
                copies["copy"] = IdentityCopy(self.identity, b, record.freeze, mapping)
            return copies["copy"]

        concurrency = int(settings.get("concurrency") or DEFAULT_CONCURRENCY)
        in_flight = int(settings.get("bytes_in_flight") or DEFAULT_BYTES_IN_FLIGHT)

        def move() -> Move:
            if "move" not in made:
                freeze = record.freeze
                users = {
                    g.actor_id: freeze.names.get(g.actor_id, g.actor_id)
                    for g in freeze.before
                    if g.actor == "user" and g.target_id == freeze.project
                }
                copy = identity_copy()
                b_project = copy.b_project() if copy else meta.project
                made["move"] = Move(
                    run_id=self.run.id,
                    project=meta.project,
                    b_project=b_project,
                    source=meta.source,
                    target=meta.target,
                    a=connect(meta.source),
                    b=connect(meta.target),
                    mapping=mapping,
                    users=users,
                    scoped=lambda: scoped(meta.target, b_project),
                    budget=Budget.share(in_flight, concurrency),
                    message=self.observer.message,
                )
            return made["move"]

        def user() -> str:
            with translated(meta.target, "find the run's user"):
                return str(connect(meta.target).current_user_id)

        return MigrationContext(
            tenant=tenant,
            move=move,
            role=str(settings.get("role") or DEFAULT_MIGRATOR_ROLE),
            user=user,
            slots=Slots(
                slots_name(meta.target),
                concurrency,
                self.lock_url(),
                checkpoint=self.control.checkpoint,
                message=self.observer.message,
                sleep=self.control.sleep,
            ),
            bytes_in_flight=in_flight,
            checkpoint=self.control.checkpoint,
            identity_copy=identity_copy,
        )

    def lock_url(self) -> str | None:
        """The lock backend of the run's own locks (None: the default): B's slots are
        taken there, shared with every run on that backend."""
        return next((str(url) for lock in self.locks if (url := getattr(lock, "url", None))), None)

    def finish(self) -> bool:
        """Delete A's originals and the transfer images of a moved tenant."""
        record = self.record()
        name = f"finish:{self.meta.project}"
        done = self.flow(record, Phase.FORWARD, FINISH, name) is Outcome.MOVED
        if done:
            record.save(finished=True)
            self._notice(FINISHED)
        return done
