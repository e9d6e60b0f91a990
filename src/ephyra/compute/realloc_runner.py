"""Running a host reallocation: an evacuation of A's hosts whose flows go on to hand each
host over to B (:mod:`ephyra.compute.realloc_steps`), under the same budget, and whose
rollback brings each back the same way."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ephyra.compute.budget import Budget
from ephyra.compute.drain import Drain, DrainResult, HostRecord
from ephyra.compute.nova import ComputeCloud, Service
from ephyra.compute.realloc_steps import FORWARD, ROLLBACK, ReallocContext
from ephyra.compute.records import OUTCOMES, Outcome, ReallocationMeta
from ephyra.compute.runner import Evacuation, RunEvents
from ephyra.compute.steps import HostContext, Step
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.states import Phase
from ephyra.progress import Observer
from ephyra.strategies import handover

#: The notices of a host's reallocation (docs/notifications.md), by the step that ends
#: with the transition; the first ones are told when a host's flow begins.
START = "ephyra.host.reallocation.start"
ROLLBACK_START = "ephyra.host.reallocation.rollback.start"
TRANSITIONS = {
    "release": "ephyra.host.reallocation.released",
    "remove": "ephyra.host.reallocation.removed",
    "register": "ephyra.host.reallocation.registered",
    "enable": "ephyra.host.reallocation.end",
    "release-b": "ephyra.host.reallocation.released",
    "remove-b": "ephyra.host.reallocation.removed",
    "register-a": "ephyra.host.reallocation.registered",
    "maintenance-off": "ephyra.host.reallocation.rollback.end",
}


class Reallocation(Evacuation):
    steps: ClassVar[dict[Phase, tuple[type[Step], ...]]] = {
        Phase.FORWARD: FORWARD,
        Phase.ROLLBACK: ROLLBACK,
    }
    done: ClassVar[dict[Phase, Outcome]] = {
        Phase.FORWARD: Outcome.HANDED_OVER,
        Phase.ROLLBACK: Outcome.HANDED_BACK,
    }
    verb = "reallocate"

    def __init__(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        cloud: ComputeCloud | None = None,
        target: ComputeCloud | None = None,
    ) -> None:
        super().__init__(journal, run, observer, metrics, cloud)
        self.meta: ReallocationMeta = ReallocationMeta.from_meta(run.meta)
        self.target = target or ComputeCloud.connect(self.meta.to)
        self.handover = handover.build(self.meta.handover)
        self._back_budget = Budget(self.settings)

    def back_record(self, host: str) -> HostRecord:
        """The record of the servers moved off ``host`` in B on the way back."""
        name = f"back:{host}"
        return HostRecord(
            lambda: self.journal.record(self.run.id, name),
            lambda data: self.journal.save_record(self.run.id, name, data),
        )

    def drainable(self, host: str) -> Service | None:
        """A host already removed from A (a resumed run) has nothing left to drain."""
        return self.cloud.find_service(host)

    def _context(self, host: str, drain: Drain | None) -> HostContext:
        base = super()._context(host, drain)

        def drain_back() -> DrainResult:
            cloud = self.target
            back = Drain(
                cloud,
                cloud.service(host),
                self.settings,
                self._back_budget,
                self.control,
                self.back_record(host),
                RunEvents(self, cloud.name),
                cloud.group_index(),
            )
            back.adopt()
            return self.drained(back)

        fields = {
            f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.name != "revert"
        }
        return ReallocContext(
            **fields,
            target=self.target,
            handover=self.handover,
            register_timeout=self.meta.register_timeout,
            revert=False,  # a failure leaves the host where it is, for resume or rollback
            drain_back=drain_back,
            output=lambda line: self.observer.message(f"{host}: {line}"),
        )

    def host_flow(self, host: str, phase: Phase, drain: Drain | None) -> Outcome:
        if OUTCOMES.of(self.record(host), phase) is Outcome.PENDING:
            self._tell(START if phase is Phase.FORWARD else ROLLBACK_START, host)
        return super().host_flow(host, phase, drain)

    def _tell(self, event_type: str, host: str) -> None:
        self.observer.notice(
            event_type, host=host, by=self.run.kind, **{"from": self.meta.cloud, "to": self.meta.to}
        )

    def _on_step(self, host: str, step: str, status: str, seconds: float) -> None:
        if status == "done" and step in TRANSITIONS:  # told before the step is said done
            self._tell(TRANSITIONS[step], host)
        super()._on_step(host, step, status, seconds)
