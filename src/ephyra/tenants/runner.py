"""Running a tenant run (a freeze here; a migration in :mod:`migrate_runner`): one
project, one TaskFlow engine per phase over its flow detail in the run's logbook
(``forward:<project>``, ``rollback:<project>``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from taskflow import task

from ephyra.engine.driver import RunDriver
from ephyra.engine.flows import engine_for, succeeded
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.outcomes import Outcomes
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
    @property
    def keystone(self) -> str: ...


class TenantDriver(RunDriver):
    """What the drivers of the tenant kinds share: one project, its record in the journal,
    one TaskFlow engine per phase over the kind's steps, its steps shown under its name."""

    meta: Project
    #: The kind's outcomes of its project, what each phase ends in when done, and the
    #: phase in a word for the progress line.
    outcomes: ClassVar[Outcomes[Outcome]]
    done: ClassVar[Mapping[Phase, Outcome]]
    doing: ClassVar[Mapping[Phase, str]]

    def __init__(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        identity: Identity | None = None,
    ) -> None:
        super().__init__(journal, run, observer, metrics)
        self.meta = self.read_meta(run.meta)
        self.identity = identity or Identity.connect(self.meta.keystone)

    @staticmethod
    def read_meta(meta: Mapping[str, Any]) -> Project:
        """The run's metadata, as the kind keeps it."""
        raise NotImplementedError

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

    def tenant_context(self, record: Record) -> TenantContext:
        """What the freeze's steps are made with (a migration's include them)."""
        return TenantContext(
            run_id=self.run.id,
            identity=self.identity,
            record=record,
            on_step=self._on_step,
            message=self.observer.message,
        )

    # -- what each kind says -------------------------------------------------------------
    def context(self, record: Record) -> Any:
        """What the kind's steps are made with."""
        raise NotImplementedError

    def steps(self, phase: Phase) -> Sequence[Callable[[Any], task.Task]]:
        raise NotImplementedError

    def beginning(self, phase: Phase) -> None:
        """Before a phase's flow runs (each time it starts or is resumed)."""

    def ended(self, phase: Phase) -> None:
        """Once a phase is done."""

    def holding(self, ctx: Any) -> contextlib.AbstractContextManager[Any]:
        """What the flow holds while it runs (and gives back after)."""
        return contextlib.nullcontext()

    # -- driving --------------------------------------------------------------------------
    def run_phase(self, phase: Phase) -> RunState:
        record = self.record()
        done = self.done[phase]
        already = self.outcomes.of(record, phase) is done
        self.observer.started(f"{self.doing[phase]} {self.item} {self.run.short}", 1, int(already))
        if not already:
            self.beginning(phase)
            name = f"{phase.value}:{self.meta.project}"
            outcome = self.flow(record, phase, self.steps(phase), name)
            if outcome is Outcome.INTERRUPTED or self.control.request is not None:
                return RunState.PAUSED
            if outcome is Outcome.FAILED:
                return RunState.FAILED
        self.ended(phase)
        return RunState.SUCCEEDED if phase is Phase.FORWARD else RunState.ROLLED_BACK

    def flow(
        self, record: Record, phase: Phase, steps: Sequence[Callable[[Any], task.Task]], name: str
    ) -> Outcome:
        """Run ``steps`` as the flow ``name`` of the run's logbook; the project's outcome
        of ``phase``, saved."""
        ctx = self.context(record)
        self.outcomes.save(record, phase, Outcome.RUNNING)
        engine = engine_for(
            name,
            [step(ctx) for step in steps],
            self.journal.detail(self.run.id, name),
            self.journal.backend,
        )
        text = ""
        with self._tracked(engine, self.control), self.holding(ctx):
            try:
                engine.run()
                outcome = self.done[phase] if succeeded(engine) else Outcome.INTERRUPTED
            except Exception as exc:
                first, text = self.failure(exc, f"project {self.item}")
                outcome = Outcome.INTERRUPTED if first is None else Outcome.FAILED
        self.outcomes.save(record, phase, outcome, error=text or None)
        if outcome is not Outcome.INTERRUPTED:
            self.observer.node(self.item, outcome.value, text)
        return outcome


class TenantMaintenance(TenantDriver):
    meta: TenantMeta
    outcomes = OUTCOMES
    done = {Phase.FORWARD: Outcome.FROZEN, Phase.ROLLBACK: Outcome.RESTORED}
    doing = {Phase.FORWARD: "freeze", Phase.ROLLBACK: "unfreeze"}
    read_meta = staticmethod(TenantMeta.from_meta)

    def context(self, record: Record) -> TenantContext:
        return self.tenant_context(record)

    def steps(self, phase: Phase) -> Sequence[Callable[[Any], task.Task]]:
        return FORWARD if phase is Phase.FORWARD else ROLLBACK

    def ended(self, phase: Phase) -> None:
        fields = {"project": self.meta.project, "name": self.meta.project_name}
        event = START if phase is Phase.FORWARD else END
        self.observer.notice(event, cloud=self.meta.cloud, **fields)
