"""Running a tenant migration: one project, one TaskFlow engine per phase over its flow
detail in the run's logbook (``forward:<project>``, ``rollback:<project>``)."""

from __future__ import annotations

from typing import Any

from ephyra.clouds import connect, translated
from ephyra.engine.flows import engine_for, succeeded
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.slots import Slots
from ephyra.engine.states import Phase, RunState
from ephyra.progress import Observer
from ephyra.tenants.identity_copy import SEPARATE, IdentityCopy
from ephyra.tenants.keystone import Identity
from ephyra.tenants.mapping import Mapping
from ephyra.tenants.migrate_records import (
    DEFAULT_BYTES_IN_FLIGHT,
    DEFAULT_CONCURRENCY,
    DEFAULT_MIGRATOR_ROLE,
    OUTCOMES,
    MigrationMeta,
    Outcome,
)
from ephyra.tenants.migrate_steps import FINISH, FORWARD, ROLLBACK, MigrationContext
from ephyra.tenants.runner import TenantDriver
from ephyra.tenants.steps import Record, TenantContext
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

    def __init__(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        identity: Identity | None = None,
    ) -> None:
        super().__init__(journal, run, observer, metrics)
        self.meta = MigrationMeta.from_meta(run.meta)
        self.identity = identity or Identity.connect(self.meta.source)

    def run_phase(self, phase: Phase) -> RunState:
        record = self.record()
        forward = phase is Phase.FORWARD
        done = Outcome.MOVED if forward else Outcome.RESTORED
        what = "move" if forward else "take back"
        self.observer.started(
            f"{what} {self.item} {self.run.short}", 1, int(OUTCOMES.of(record, phase) is done)
        )
        if OUTCOMES.of(record, phase) is not done:
            if forward:
                self._notice(START)  # started or resumed
            outcome = self._flow(record, phase)
            if outcome is Outcome.INTERRUPTED or self.control.request is not None:
                return RunState.PAUSED
            if outcome is Outcome.FAILED:
                return RunState.FAILED
        self._notice(END if forward else ROLLED_BACK)
        return RunState.SUCCEEDED if forward else RunState.ROLLED_BACK

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
        tenant = TenantContext(
            run_id=self.run.id,
            identity=self.identity,
            record=record,
            on_step=self._on_step,
            message=self.observer.message,
        )
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

    def _flow(self, record: Record, phase: Phase, finish: bool = False) -> Outcome:
        ctx = self.context(record)
        name = f"{phase.value}:{self.meta.project}"
        OUTCOMES.save(record, phase, Outcome.RUNNING)
        steps = FORWARD if phase is Phase.FORWARD else ROLLBACK
        if finish:
            steps, name = FINISH, f"finish:{self.meta.project}"
        engine = engine_for(
            name,
            [step(ctx) for step in steps],
            self.journal.detail(self.run.id, name),
            self.journal.backend,
        )
        text = ""
        with self._tracked(engine, self.control), ctx.slots:
            try:
                engine.run()
                outcome = Outcome.INTERRUPTED
                if succeeded(engine):
                    outcome = Outcome.MOVED if phase is Phase.FORWARD else Outcome.RESTORED
            except Exception as exc:
                first, text = self.failure(exc, f"project {self.item}")
                outcome = Outcome.INTERRUPTED if first is None else Outcome.FAILED
        OUTCOMES.save(record, phase, outcome, error=text or None)
        if outcome is not Outcome.INTERRUPTED:
            self.observer.node(self.item, outcome.value, text)
        return outcome

    def finish(self) -> bool:
        """Delete A's originals and the transfer images of a moved tenant."""
        record = self.record()
        done = self._flow(record, Phase.FORWARD, finish=True) is Outcome.MOVED
        if done:
            record.save(finished=True)
            self._notice(FINISHED)
        return done
