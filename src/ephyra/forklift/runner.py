"""Running a forklift phase: nodes in batches, N at once, each node's move a TaskFlow flow.

Each node's move is its own TaskFlow engine over its own flow detail in the run's
logbook, so one node's failure reverts that node only. A stop request (pause,
abort, Ctrl-C) suspends every engine at its next step boundary, and interrupts
long waits; a process killed at any point leaves atoms that TaskFlow runs again
on resume, which the steps allow by checking the world first.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ephyra.clouds import ControlPlane
from ephyra.engine.control import Control
from ephyra.engine.driver import RunDriver
from ephyra.engine.flows import engine_for, succeeded
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.states import Phase, RunState
from ephyra.errors import Interrupted, NodeDeferred
from ephyra.forklift.context import MoveContext, NodeRecord
from ephyra.forklift.records import OUTCOMES, ForkliftMeta, Outcome
from ephyra.forklift.secrets import load_credentials
from ephyra.forklift.servers import Servers
from ephyra.forklift.settings import Settings
from ephyra.forklift.steps import steps_for
from ephyra.progress import Observer
from ephyra.workloads import load_workload

STALE_RETRIES = 3


class Forklift(RunDriver):
    """Moves the nodes of one run, in one phase, until done or stopped."""

    def __init__(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        planes: tuple[ControlPlane, ControlPlane] | None = None,
    ) -> None:
        super().__init__(journal, run, observer, metrics)
        self.meta = ForkliftMeta.from_meta(run.meta)
        self.settings = Settings.from_meta(self.meta.settings)
        self.cp_from, self.cp_to = planes or (
            ControlPlane.connect(self.meta.source),
            ControlPlane.connect(self.meta.target),
        )
        self.workload = load_workload(self.settings.workload, self.settings.workload_options)
        self.credentials = load_credentials(self.settings.credentials)
        self.servers: dict[str, Servers] = {}
        if self.settings.nova:
            self.servers = {
                p.name: Servers(p.name, p.connection) for p in (self.cp_from, self.cp_to)
            }

    # -- one node ------------------------------------------------------------
    def planes(self, phase: Phase) -> tuple[ControlPlane, ControlPlane]:
        if phase is Phase.FORWARD:
            return self.cp_from, self.cp_to
        return self.cp_to, self.cp_from

    def _on_step(self, ctx: MoveContext, step: str, status: str, seconds: float) -> None:
        # From enrolling in the target to deleting from the source the node is in both
        # control planes: a stop waits until it is in one again.
        if (step, status) == ("enroll-target", "started"):
            self.hold(id(ctx))
        if status == "done":
            self.metrics.step(step, seconds)
            if step == "delete-source":
                self.release(id(ctx))
        self.observer.step(ctx.record.label, step, status, seconds)

    def move_node(self, uuid: str, phase: Phase, control: Control | None = None) -> Outcome:
        record = NodeRecord(self.journal, self.run.id, uuid)
        source, target = self.planes(phase)
        ctx = MoveContext(
            run_id=self.run.id,
            phase=phase,
            record=record,
            source=source,
            target=target,
            credentials=self.credentials,
            workload=self.workload,
            control=control or self.control,
            step_timeout=self.settings.step_timeout,
            health_timeout=self.settings.health_timeout,
            on_step=self._on_step,
            source_servers=self.servers.get(source.name),
            target_servers=self.servers.get(target.name),
        )
        OUTCOMES.save(record, phase, Outcome.MOVING)
        self.metrics.flying(+1)
        started = time.monotonic()
        # A flow that stopped on an old interruption (found in the journal) finishes
        # reverting first, then starts over; only a stop asked now ends the node here.
        for _ in range(STALE_RETRIES):
            outcome, text = self._attempt(ctx, f"{phase.value}:{uuid}")
            if outcome is not Outcome.INTERRUPTED or ctx.control.request is not None:
                break
        else:
            outcome, text = Outcome.FAILED, "its flow keeps stopping with no stop asked"
        self.metrics.flying(-1)
        self._finish_node(record, phase, outcome, text, time.monotonic() - started)
        return outcome

    def _attempt(self, ctx: MoveContext, name: str) -> tuple[Outcome, str]:
        engine = engine_for(
            name,
            [step(ctx) for step in steps_for(self.settings.nova)],
            self.journal.detail(self.run.id, name),
            self.journal.backend,
        )
        with self._tracked(engine, ctx.control, key=id(ctx)):
            try:
                engine.run()
            except Exception as exc:
                return self._outcome_of(exc, ctx)
        if not succeeded(engine):
            return Outcome.INTERRUPTED, ""  # suspended between two steps, or reverted
        return Outcome.MOVED, ""

    def _outcome_of(self, exc: Exception, ctx: MoveContext) -> tuple[Outcome, str]:
        first, text = self.failure(exc, f"node {ctx.uuid}")
        if first is None:
            return Outcome.INTERRUPTED, text
        if first.check(NodeDeferred):
            return Outcome.DEFERRED, text
        return Outcome.FAILED, text

    def _finish_node(
        self, record: NodeRecord, phase: Phase, outcome: Outcome, text: str, seconds: float
    ) -> None:
        changes: dict[str, Any] = {"error": text or None}
        if outcome is Outcome.DEFERRED:
            changes["deferrals"] = int(record.data.get("deferrals", 0)) + 1
        OUTCOMES.save(record, phase, outcome, **changes)
        if outcome is not Outcome.INTERRUPTED:
            self.metrics.node(outcome.value)
        shown = "moved back" if phase is Phase.ROLLBACK and outcome is Outcome.MOVED else outcome
        timing = f"{seconds:.1f}s" if outcome is Outcome.MOVED else ""
        self.observer.node(record.label, str(shown), text or timing)

    # -- a phase -------------------------------------------------------------
    def run_phase(self, phase: Phase) -> RunState:
        """Move the run's nodes in batches (back, in a rollback: those not home, last moved
        first); the state the run should take when this returns."""
        order = self._order(phase)
        pending = deque(
            u
            for u in order
            if OUTCOMES.of(NodeRecord(self.journal, self.run.id, u), phase) is not Outcome.MOVED
        )
        done = len(order) - len(pending)
        title = f"{'rollback' if phase is Phase.ROLLBACK else 'forklift'} {self.run.short}"
        self.observer.started(title, len(order), done)
        failed = 0
        with ThreadPoolExecutor(self.settings.concurrency, "ephyra-node") as pool:
            while pending:
                if self.control.request is not None:
                    return RunState.PAUSED
                batch = [pending.popleft() for _ in range(min(self.settings.batch, len(pending)))]
                outcomes = list(pool.map(lambda u: self.move_node(u, phase), batch))
                requeue, failed_now = self._tally(phase, batch, outcomes)
                failed += failed_now
                pending.extend(requeue)
                verdict = self._after_batch(phase, outcomes, failed, bool(pending))
                if verdict is not None:
                    return verdict
        if failed:
            return RunState.FAILED
        return RunState.SUCCEEDED if phase is Phase.FORWARD else RunState.ROLLED_BACK

    def _order(self, phase: Phase) -> list[str]:
        if phase is Phase.FORWARD:
            return list(self.meta.order)
        if self.meta.rollback_order is None:  # decided once: a resume goes on with it
            self.meta = self.meta.going_back(self._not_home())
            self.run = self.journal.save_run(self.run, **self.meta.to_meta())
        return list(self.meta.rollback_order or ())

    def _not_home(self) -> list[str]:
        """Every node the run touched that is not back home, last moved first."""
        in_target = {n.id for n in self.cp_to.nodes()}
        order = []
        for uuid in reversed(self.meta.order):
            if uuid in in_target or self._in_flight(uuid):
                order.append(uuid)
        return order

    def _in_flight(self, uuid: str) -> bool:
        """Whether the node was caught mid-move (stopped, or its process died)."""
        record = NodeRecord(self.journal, self.run.id, uuid)
        return OUTCOMES.of(record, Phase.FORWARD) in (Outcome.INTERRUPTED, Outcome.MOVING)

    def return_in_flight(self) -> None:
        """Abort: every node caught mid-move goes back where it came from."""
        for uuid in self.meta.order:
            if not self._in_flight(uuid):
                continue
            record = NodeRecord(self.journal, self.run.id, uuid)
            # moved back already by an abort whose process died before it said so
            back = OUTCOMES.of(record, Phase.ROLLBACK) is Outcome.MOVED
            if not back:
                self.observer.message(f"abort: returning {record.label} to {self.cp_from.name}")
                back = self.move_node(uuid, Phase.ROLLBACK, control=Control()) is Outcome.MOVED
            if back:
                record = NodeRecord(self.journal, self.run.id, uuid)
                OUTCOMES.save(record, Phase.FORWARD, Outcome.RETURNED)

    def _tally(
        self, phase: Phase, batch: list[str], outcomes: list[Outcome]
    ) -> tuple[list[str], int]:
        requeue: list[str] = []
        failed = 0
        for uuid, outcome in zip(batch, outcomes, strict=True):
            if outcome is Outcome.FAILED:
                failed += 1
            elif outcome is Outcome.DEFERRED:
                record = NodeRecord(self.journal, self.run.id, uuid)
                if int(record.data.get("deferrals", 0)) > self.settings.max_deferrals:
                    OUTCOMES.save(record, phase, Outcome.FAILED, error="deferred too many times")
                    self.observer.node(record.label, "failed", "deferred too many times")
                    failed += 1
                else:
                    requeue.append(uuid)
        return requeue, failed

    def _after_batch(
        self, phase: Phase, outcomes: list[Outcome], failed: int, more: bool
    ) -> RunState | None:
        if self.control.request is not None:
            return RunState.PAUSED
        if failed > self.settings.max_failures:
            self.observer.message(
                f"{failed} node(s) failed, more than --max-failures {self.settings.max_failures}"
            )
            return RunState.FAILED
        if not more:
            return None
        try:
            if phase is Phase.FORWARD and Outcome.MOVED in outcomes and not self._gate():
                return RunState.PAUSED
            if all(o is Outcome.DEFERRED for o in outcomes):
                self.observer.message(
                    f"every node deferred; waiting {self.settings.defer_wait:.0f}s"
                )
                self.control.sleep(self.settings.defer_wait)
        except Interrupted:
            return RunState.PAUSED
        return None

    def _gate(self) -> bool:
        """The application health gate between batches."""
        deadline = time.monotonic() + self.settings.gate_timeout
        while not (health := self.workload.app_health()).ok:
            if time.monotonic() > deadline:
                self.observer.message(f"application health gate failed: {health.detail}")
                self.run = self.journal.save_run(self.run, reason=f"health gate: {health.detail}")
                return False
            self.observer.message(f"waiting for application health: {health.detail}")
            self.control.sleep(min(5.0, self.settings.gate_timeout))
        return True
