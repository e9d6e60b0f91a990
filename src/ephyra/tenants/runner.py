"""Running a tenant freeze: one project, one TaskFlow engine per phase over its flow
detail in the run's logbook (``forward:<project>``, ``rollback:<project>``)."""

from __future__ import annotations

from typing import Protocol

from ephyra.engine.driver import RunDriver
from ephyra.engine.flows import engine_for, succeeded
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.states import Phase, RunState
from ephyra.progress import Observer
from ephyra.tenants.keystone import Identity
from ephyra.tenants.records import OUTCOMES, Outcome, TenantMeta
from ephyra.tenants.steps import FORWARD, ROLLBACK, Record, TenantContext

START = "ephyra.tenant.maintenance.start"
END = "ephyra.tenant.maintenance.end"


class Project(Protocol):
    """What a tenant run's metadata names: its project and the record it keeps."""

    @property
    def project(self) -> str: ...
    @property
    def project_name(self) -> str: ...
    @property
    def record(self) -> str: ...


class TenantDriver(RunDriver):
    """What the drivers of the tenant kinds share: one project, its record in the journal,
    its steps shown under its name."""

    meta: Project

    @property
    def item(self) -> str:
        return self.meta.project_name or self.meta.project

    def record(self) -> Record:
        name = self.meta.record
        return Record(
            lambda: self.journal.record(self.run.id, name),
            lambda data: self.journal.save_record(self.run.id, name, data),
        )

    def _on_step(self, step: str, status: str, seconds: float) -> None:
        if status == "done":
            self.metrics.step(step, seconds)
        self.observer.step(self.item, step, status, seconds)


class TenantMaintenance(TenantDriver):
    meta: TenantMeta

    def __init__(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        identity: Identity | None = None,
    ) -> None:
        super().__init__(journal, run, observer, metrics)
        self.meta = TenantMeta.from_meta(run.meta)
        self.identity = identity or Identity.connect(self.meta.cloud)

    def run_phase(self, phase: Phase) -> RunState:
        record = self.record()
        forward = phase is Phase.FORWARD
        done = Outcome.FROZEN if forward else Outcome.RESTORED
        self.observer.started(
            f"{'freeze' if forward else 'unfreeze'} {self.item} {self.run.short}",
            1,
            int(OUTCOMES.of(record, phase) is done),
        )
        if OUTCOMES.of(record, phase) is not done:
            outcome = self._flow(record, phase)
            if outcome is Outcome.INTERRUPTED or self.control.request is not None:
                return RunState.PAUSED
            if outcome is Outcome.FAILED:
                return RunState.FAILED
        fields = {"project": self.meta.project, "name": self.meta.project_name}
        self.observer.notice(START if forward else END, cloud=self.meta.cloud, **fields)
        return RunState.SUCCEEDED if forward else RunState.ROLLED_BACK

    def _flow(self, record: Record, phase: Phase) -> Outcome:
        ctx = TenantContext(
            run_id=self.run.id,
            identity=self.identity,
            record=record,
            on_step=self._on_step,
            message=self.observer.message,
        )
        name = f"{phase.value}:{self.meta.project}"
        OUTCOMES.save(record, phase, Outcome.RUNNING)
        steps = FORWARD if phase is Phase.FORWARD else ROLLBACK
        engine = engine_for(
            name,
            [step(ctx) for step in steps],
            self.journal.detail(self.run.id, name),
            self.journal.backend,
        )
        text = ""
        with self._tracked(engine, self.control):
            try:
                engine.run()
                outcome = Outcome.INTERRUPTED
                if succeeded(engine):
                    outcome = Outcome.FROZEN if phase is Phase.FORWARD else Outcome.RESTORED
            except Exception as exc:
                first, text = self.failure(exc, f"project {self.item}")
                outcome = Outcome.INTERRUPTED if first is None else Outcome.FAILED
        OUTCOMES.save(record, phase, outcome, error=text or None)
        if outcome is not Outcome.INTERRUPTED:
            self.observer.node(self.item, outcome.value, text)
        return outcome
