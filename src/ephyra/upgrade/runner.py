"""Running an upgrade plan: stage after stage, batch after batch, a batch's units at once.

Each unit is a TaskFlow engine over its own flow detail in the run's logbook
(``forward:<unit>``, ``rollback:<unit>``); what it did is in ``unit:<unit>``. After every
batch the run counts its failed units: more than ``failure_threshold`` pauses it, with
the reason. A canary batch is soaked, then gated again; a canary that fails always
pauses the run. Rollback goes through the plan backwards, batch by batch, taking back
each unit that did something, with each strategy's downgrade where it has one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ephyra.compute import steps as compute_steps
from ephyra.compute.budget import Budget
from ephyra.compute.drain import Drain, DrainResult, HostRecord
from ephyra.compute.nova import ComputeCloud
from ephyra.compute.runner import RunEvents
from ephyra.compute.steps import HostContext
from ephyra.engine.driver import RunDriver
from ephyra.engine.flows import engine_for, succeeded
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.states import Phase, RunState
from ephyra.errors import EphyraError, Interrupted, SelfHealError
from ephyra.progress import Observer
from ephyra.strategies.base import Strategy, build
from ephyra.upgrade import (
    alarms,
    approvals,
    availability,
    preflight,
    probing,
    selfheal,
    steps,
    windows,
)
from ephyra.upgrade.plan import Batch, Plan, Stage, Unit
from ephyra.upgrade.records import OUTCOMES, Outcome, UpgradeMeta
from ephyra.upgrade.spec import Spec, parse
from ephyra.volumes.cinder import VolumeCloud

#: Lines of a unit's output kept in its journal record.
OUTPUT_LINES = 200
OUTPUT_SAVE_S = 0.5


DONE = {Phase.FORWARD: Outcome.UPGRADED, Phase.ROLLBACK: Outcome.RESTORED}


class _Output:
    """A unit's output lines: to the observer at once, to the journal every half second."""

    def __init__(self, runner: UpgradeRun, unit: Unit, record: HostRecord) -> None:
        self.runner, self.unit, self.record = runner, unit, record
        self.lines: list[str] = list(record.data.get("output") or [])
        self.saved = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, step: str, line: str) -> None:
        with self.lock:
            self.lines.append(f"{step}: {line}")
            del self.lines[:-OUTPUT_LINES]
            if time.monotonic() - self.saved >= OUTPUT_SAVE_S:
                self.flush()
        self.runner.observer.step(self.unit.host, f"{step}| {line}", "output", 0.0)

    def flush(self) -> None:
        self.record.save(output=list(self.lines))
        self.saved = time.monotonic()


class UpgradeRun(RunDriver):
    def __init__(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        cloud: ComputeCloud | None = None,
    ) -> None:
        super().__init__(journal, run, observer, metrics)
        self.meta = UpgradeMeta.from_meta(run.meta)
        self.plan = Plan.from_dict(self.meta.plan)
        self.spec: Spec = parse(self.meta.spec)
        self.strategies: Mapping[str, Strategy] = {
            name: build(options) for name, options in self.spec.strategies.items()
        }
        name = self.meta.cloud
        self.cloud = cloud or (ComputeCloud.connect(name) if name else None)
        moving = any(u.move_volumes for u in self.plan.units())
        self.volumes = VolumeCloud.connect(name) if name and moving else None
        self.told = selfheal.Told(
            [
                selfheal.build(options, f"selfheal[{i}]")
                for i, options in enumerate(self.spec.selfheal)
            ],
            self._kept(selfheal.RECORD) or {},
            lambda kept: self.journal.save_record(self.run.id, selfheal.RECORD, kept),
            run_id=self.run.id,
            cloud=name,
            release=self.spec.release,
            output=self.observer.message,
        )

    # -- records ---------------------------------------------------------------------
    def record(self, unit: Unit, prefix: str = "unit") -> HostRecord:
        name = f"{prefix}:{unit.id}"
        return HostRecord(
            lambda: self.journal.record(self.run.id, name),
            lambda data: self.journal.save_record(self.run.id, name, data),
        )

    def state_of(self, unit: Unit, phase: Phase) -> Outcome:
        return OUTCOMES.parse(self.journal.record(self.run.id, f"unit:{unit.id}").get(phase.value))

    # -- one unit --------------------------------------------------------------------
    def _host_context(self, unit: Unit, phase: Phase, drain: Drain | None) -> HostContext:
        assert self.cloud is not None and drain is not None

        def run_drain() -> DrainResult:
            result = drain.run()
            self.metrics.drained(unit.host, result.seconds)
            self.observer.message(
                f"{unit.host}: {result.moved} server(s) moved in {result.seconds:.1f}s"
            )
            return result

        return HostContext(
            run_id=self.run.id,
            cloud=self.cloud,
            host=unit.host,
            record=drain.record,
            control=self.control,
            drain=run_drain,
            on_step=self._on_step,
            message=self.observer.message,
            kind=steps.KIND,
            revert=False,
        )

    def _on_step(self, host: str, step: str, status: str, seconds: float) -> None:
        if status == "done":
            self.metrics.step(step, seconds)
        self.observer.step(host, step, status, seconds)

    def unit_flow(
        self, unit: Unit, phase: Phase, drain: Drain | None, batch: frozenset[str] = frozenset()
    ) -> Outcome:
        # forward, the drain keeps its servers in the unit's own record: one copy of it,
        # else each copy's save would drop what the other wrote (the unit's outcome, the
        # service as it was)
        shared = drain if phase is Phase.FORWARD else None
        record = shared.record if shared is not None else self.record(unit)
        output = _Output(self, unit, record)
        ctx = steps.UnitContext(
            run_id=self.run.id,
            unit=unit,
            spec=self.spec,
            strategies=self.strategies,
            record=record,
            control=self.control,
            cloud=self.cloud,
            output=output,
            on_step=self._on_step,
            message=self.observer.message,
            heal=self.meta.heal,
            volumes=self.volumes,
            batch=batch,
        )
        host_ctx = self._host_context(unit, phase, drain) if drain is not None else None
        make = steps.forward if phase is Phase.FORWARD else steps.backward
        name = f"{phase.value}:{unit.id}"
        OUTCOMES.save(record, phase, Outcome.RUNNING)
        engine = engine_for(
            name, make(ctx, host_ctx), self.journal.detail(self.run.id, name), self.journal.backend
        )
        text = ""
        with self._tracked(engine, self.control):
            try:
                engine.run()
                outcome = DONE[phase] if succeeded(engine) else Outcome.INTERRUPTED
            except Exception as exc:
                outcome, text = self._outcome_of(exc, unit)
        output.flush()
        OUTCOMES.save(record, phase, outcome, error=text or None)
        if outcome is not Outcome.INTERRUPTED:
            self.metrics.node(outcome.value)
            self.observer.node(unit.id, outcome.value, text)
        return outcome

    def _outcome_of(self, exc: Exception, unit: Unit) -> tuple[Outcome, str]:
        first, text = self.failure(exc, f"unit {unit.id}")
        return (Outcome.INTERRUPTED if first is None else Outcome.FAILED), text

    # -- one batch -------------------------------------------------------------------
    def _drains(self, units: list[Unit], phase: Phase) -> dict[str, Drain | None]:
        drains: dict[str, Drain | None] = {u.id: None for u in units}
        drained = [u for u in units if u.drain]
        if not drained:
            return drains
        if self.cloud is None:
            raise EphyraError("a drained unit needs a cloud (--os-cloud)")
        budget = Budget(self.spec.evacuation)
        groups = self.cloud.group_index()
        events = RunEvents(self, self.cloud.name, servers_are_nodes=False)
        for unit in drained:
            prefix = "unit" if phase is Phase.FORWARD else "unitback"
            drain = Drain(
                self.cloud,
                self.cloud.service(unit.host),
                self.spec.evacuation,
                budget,
                self.control,
                self.record(unit, prefix),
                events,
                groups,
            )
            drain.adopt()
            drains[unit.id] = drain
        return drains

    def run_batch(self, batch: Batch, phase: Phase, key: str) -> list[Outcome]:
        """The batch's units not done yet, at once; its hosts in maintenance for the
        self-healing services meanwhile (``key``: the batch's place in the plan), until
        every unit is done."""
        units = list(batch.units)
        if phase is Phase.ROLLBACK:  # only what the forward run touched
            units = [u for u in units if self.touched(u)]
        pending = [u for u in units if self.state_of(u, phase) is not DONE[phase]]
        outcomes: list[Outcome] = []
        if pending:
            self.told.enter(key, {u.host: u.role for u in pending})
            drains = self._drains(pending, phase)
            self._disable_first(pending, phase, drains)
            hosts = frozenset(u.host for u in batch.units)
            with ThreadPoolExecutor(len(pending), "ephyra-unit") as pool:
                outcomes = list(
                    pool.map(lambda u: self.unit_flow(u, phase, drains[u.id], hosts), pending)
                )
        if self.told.notices and all(self.state_of(u, phase) is DONE[phase] for u in units):
            self.told.leave(key)
        return outcomes

    def _disable_first(
        self, units: list[Unit], phase: Phase, drains: Mapping[str, Drain | None]
    ) -> None:
        """Every compute of the batch disabled before any server of the batch moves: none
        lands on a host about to be drained. A unit is running from then on (a rollback
        takes it back)."""
        drained = [(u, d) for u in units if (d := drains[u.id]) is not None]
        if len(drained) < 2:
            return  # a host alone: its flow disables it before it drains
        if phase is Phase.FORWARD:
            for _, drain in drained:
                OUTCOMES.save(drain.record, phase, Outcome.RUNNING)
        compute_steps.disable_first(
            (self._host_context(u, phase, d) for u, d in drained),
            record=phase is Phase.FORWARD,  # a rollback's record is the forward run's
        )

    def touched(self, unit: Unit) -> bool:
        """Whether the forward run began ``unit`` (then a rollback takes it back)."""
        return self.state_of(unit, Phase.FORWARD) is not Outcome.PENDING

    def _failed(self) -> list[str]:
        return [
            u.id for u in self.plan.units() if self.state_of(u, Phase.FORWARD) is Outcome.FAILED
        ]

    def _soak(self, batch: Batch) -> Outcome:
        """Wait the canary's soak time, then gate it again."""
        if not batch.soak:
            return Outcome.UPGRADED
        unit = batch.units[0]
        marker = self.record(unit)
        if marker.data.get("soaked"):
            return Outcome.UPGRADED
        self.observer.message(f"canary {unit.host}: soaking {batch.soak:.0f}s")
        try:
            self.control.sleep(batch.soak)
            ctx = steps.UnitContext(
                self.run.id,
                unit,
                self.spec,
                self.strategies,
                marker,
                self.control,
                self.cloud,
                output=lambda step, line: None,
            )
            steps.HealthGate(ctx).apply()
        except Interrupted:
            return Outcome.INTERRUPTED
        except EphyraError as exc:
            OUTCOMES.save(marker, Phase.FORWARD, Outcome.FAILED, error=f"after soak: {exc}")
            self.observer.node(unit.id, "failed", f"after soak: {exc}")
            return Outcome.FAILED
        marker.save(soaked=True)
        return Outcome.UPGRADED

    # -- a phase ---------------------------------------------------------------------
    def run_phase(self, phase: Phase) -> RunState:
        with self._probing():
            try:
                state = self._run_phase(phase)
                if state in (RunState.SUCCEEDED, RunState.ROLLED_BACK):
                    self.told.leave()  # whatever a batch left entered (killed before it)
                return state
            except SelfHealError as exc:
                return self._pause(f"self-healing: {exc}")

    def _kept(self, name: str) -> dict[str, Any] | None:
        """The run's record ``name``; None for a run made before it was kept."""
        return self.journal.records(self.run.id, name).get(name)

    def _probing(self) -> contextlib.AbstractContextManager[Any]:
        """The compute API probed while the phase runs (a cloud and an interval given),
        and the targets of ``probes:`` (a run made since they are kept)."""
        stack = contextlib.ExitStack()
        kept = self._kept(probing.RECORD)
        if kept is not None and self.spec.probes.targets:
            save = lambda data: self.journal.save_record(  # noqa: E731
                self.run.id, probing.RECORD, data
            )
            stack.enter_context(probing.probing(self.spec.probes, self.meta.cloud, kept, save))
        stack.enter_context(self._compute_probe())
        return stack

    def _compute_probe(self) -> contextlib.AbstractContextManager[Any]:
        interval = self.spec.availability_interval
        name = self.meta.cloud
        kept = self._kept(availability.RECORD)
        if kept is None or not name or not interval:
            return contextlib.nullcontext()
        probed = ComputeCloud.connect(name)  # a connection of its own
        return availability.Probe(
            probed.answers,
            availability.Timeline.from_dict(kept),
            lambda timeline: self.journal.save_record(
                self.run.id, availability.RECORD, timeline.to_dict()
            ),
            interval,
        )

    def _run_phase(self, phase: Phase) -> RunState:
        units = self.plan.units()
        done = sum(1 for u in units if self.state_of(u, phase) is DONE[phase])
        title = f"{'upgrade' if phase is Phase.FORWARD else 'rollback'} {self.run.short}"
        total = len(units)
        if phase is Phase.ROLLBACK:
            total = sum(1 for u in units if self.touched(u))
        self.observer.started(title, total, done)
        batches = list(enumerate((s, b) for s in self.plan.stages for b in s.batches))
        if phase is Phase.ROLLBACK:
            batches.reverse()
        starts = {id(s.batches[0]) for s in self.plan.stages if s.batches}
        gated = phase is Phase.FORWARD and bool(self.spec.alarms.url)
        threshold = self.spec.failure_threshold
        if phase is Phase.FORWARD and not any(self.touched(u) for u in units):
            blocked = self._preflight()
            if blocked:
                return self._pause(f"preflight: {blocked}")
        gate = approvals.Gate(self.journal, self.run)
        for index, (stage, batch) in batches:
            if phase is Phase.FORWARD and id(batch) in starts and self._pending(stage):
                why = gate.before(stage) if stage.approval else ""
                if why:
                    return self._pause(why)
                held = self._window(stage)
                if held is None and gated:
                    held = self._alarms(f"before {stage.name}")
                if held is not None:
                    return held
            outcomes = self.run_batch(batch, phase, str(index))
            if self.control.request is not None or Outcome.INTERRUPTED in outcomes:
                return RunState.PAUSED
            if phase is Phase.ROLLBACK:
                if Outcome.FAILED in outcomes:
                    return RunState.FAILED
                continue
            if batch.canary and Outcome.FAILED not in outcomes:
                soaked = self._soak(batch)
                if soaked is Outcome.INTERRUPTED:
                    return RunState.PAUSED
                outcomes.append(soaked)
            failed = self._failed()
            if batch.canary and Outcome.FAILED in outcomes:
                return self._pause(
                    f"canary {batch.units[0].host} failed ({stage.name}): {failed[0]}"
                )
            if len(failed) > threshold:
                first = self.journal.record(self.run.id, f"unit:{failed[0]}").get("error")
                return self._pause(
                    f"{len(failed)} unit(s) failed, more than the failure threshold "
                    f"({threshold}): {', '.join(failed)}"
                    + (f"; {failed[0]}: {first}" if first else "")
                )
            if batch is stage.batches[-1]:
                why = gate.after(stage, last=stage is self.plan.stages[-1])
                if why:
                    return self._pause(why)
        if phase is Phase.ROLLBACK:
            return RunState.ROLLED_BACK
        if gated and self.plan.stages:
            held = self._alarms(f"after {self.plan.stages[-1].name}")
            if held is not None:
                return held
        failed = self._failed()
        if failed:
            self.run = self.journal.save_run(
                self.run, reason=f"{len(failed)} unit(s) failed: {', '.join(failed)}"
            )
            return RunState.FAILED
        return RunState.SUCCEEDED

    def _pending(self, stage: Stage) -> bool:
        """Whether a unit of ``stage`` is still to be upgraded."""
        units = [u for b in stage.batches for u in b.units]
        return any(self.state_of(u, Phase.FORWARD) is not Outcome.UPGRADED for u in units)

    def _window(self, stage: Stage) -> RunState | None:
        """Held outside the maintenance windows until the next opens, saying so in the
        run's reason meanwhile: None once one is open, else the run paused (pause or
        abort asked, or no window opens again). A rollback is never held."""
        if not self.spec.windows:
            return None
        gate = windows.WindowGate(
            self.spec.windows,
            self.control,
            self.observer.message,
            lambda text: setattr(self, "run", self.journal.save_run(self.run, reason=text)),
        )
        try:
            why = gate.hold(stage.name)
        except Interrupted:
            return RunState.PAUSED
        return self._pause(why) if why else None

    def _alarms(self, gate: str) -> RunState | None:
        """The alarm gate ``gate`` (before a stage, after the last): None once nothing
        stops the run there, else the run paused, naming the alerts."""
        hold = alarms.AlarmGate(self.spec.alarms, self.control, self.observer.message)
        try:
            why = hold.hold(gate)
        except Interrupted:
            return RunState.PAUSED
        return self._pause(why) if why else None

    def _preflight(self) -> str:
        """The preflight checks, first: what blocks ('' when nothing does)."""
        self.observer.message("preflight")
        ctx = preflight.Context(self.spec, self.plan, self.cloud)
        verdicts = preflight.run(ctx)
        if self._kept(preflight.RECORD) is not None:
            self.journal.save_record(
                self.run.id,
                preflight.RECORD,
                {"at": time.time(), "verdicts": [v.to_dict() for v in verdicts]},
            )
        for verdict in verdicts:
            if verdict.level is not preflight.Level.OK:
                self.observer.message(f"preflight {verdict.level.value}: {verdict.describe()}")
        return "; ".join(v.describe() for v in preflight.blocking(verdicts))

    def _pause(self, reason: str) -> RunState:
        self.observer.message(f"pausing: {reason}")
        self.run = self.journal.save_run(self.run, reason=reason)
        return RunState.PAUSED


def unit_details(plan: Plan) -> dict[str, dict[str, Any]]:
    """The flow details a new run needs: one record and two flows per unit, and the
    records of the compute API's availability and of the probed targets."""
    return {
        availability.RECORD: {},
        approvals.RECORD: {},
        probing.RECORD: {},
        preflight.RECORD: {},
        selfheal.RECORD: {},
        **{
            f"{what}:{u.id}": {}
            for u in plan.units()
            for what in ("unit", "unitback", Phase.FORWARD.value, Phase.ROLLBACK.value)
        },
    }
