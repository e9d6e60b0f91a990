"""Running an evacuation: its hosts drained batch after batch (the plan's: all at once
unless its topology or a limit cuts them), one budget for all; every host disabled before
any server moves, so none lands on another host of the run. Rollback takes every host back
at once.

Each host's evacuation is its own TaskFlow engine over its own flow detail in the
run's logbook (``forward:<host>``, ``rollback:<host>``). The drains share one budget;
before any of them starts a migration, every host's moves already under way (left by
a crash or a pause) are counted, so a resumed run never exceeds its limits.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from ephyra.compute.budget import Budget, Settings
from ephyra.compute.drain import LEFT, Drain, DrainResult, Events, HostRecord
from ephyra.compute.maintenance import ENABLED, HOST_END, HOST_START, SERVER_LEFT
from ephyra.compute.nova import ComputeCloud, Server, Service
from ephyra.compute.records import OUTCOMES, EvacuationMeta, Outcome
from ephyra.compute.steps import FORWARD, ROLLBACK, HostContext, Step, disable_first
from ephyra.engine.driver import RunDriver
from ephyra.engine.flows import engine_for, succeeded
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.states import Phase, RunState
from ephyra.errors import DrainHalted
from ephyra.progress import Observer

LOG = logging.getLogger(__name__)


class RunEvents(Events):
    """A drain's events to the run's metrics and observer; a server left running as its
    owner asked (``notify``) a notice to the run's notifiers too."""

    def __init__(self, driver: RunDriver, cloud: str, servers_are_nodes: bool = True) -> None:
        """``cloud``: the name of the cloud drained; ``servers_are_nodes``: each server
        moved advances the run's progress (an evacuation); else it is a line of its own
        (the drains of an upgrade's hosts)."""
        self._e, self.cloud = driver, cloud
        self._nodes = servers_are_nodes

    def started(self, host: str, server: Server, how: str) -> None:
        self._e.metrics.migration(how, "started")
        self._e.metrics.flying(+1)
        self._e.observer.step(server.label, f"{how} from {host}", "started", 0.0)

    def finished(self, host: str, server: Server, how: str, outcome: str, detail: str) -> None:
        if how != "-":
            ok = outcome in ("moved", "stopped", "gone")
            self._e.metrics.migration(how, "finished" if ok else "failed")
            self._e.metrics.flying(-1)
        if outcome == LEFT:
            self._e.observer.notice(
                SERVER_LEFT,
                cloud=self.cloud,
                host=host,
                server=server.id,
                name=server.name,
                project=server.project,
                by=self._e.run.kind,
            )
        if self._nodes:
            self._e.observer.node(server.label, outcome, detail)
        else:
            self._e.observer.message(
                f"{server.label} {outcome}" + (f": {detail}" if detail else "")
            )

    def message(self, text: str) -> None:
        self._e.observer.message(text)


class Evacuation(RunDriver):
    #: The steps of a host in each phase, and a host's outcome when they are done.
    steps: ClassVar[dict[Phase, tuple[type[Step], ...]]] = {
        Phase.FORWARD: FORWARD,
        Phase.ROLLBACK: ROLLBACK,
    }
    done: ClassVar[dict[Phase, Outcome]] = {
        Phase.FORWARD: Outcome.DRAINED,
        Phase.ROLLBACK: Outcome.RESTORED,
    }
    verb: ClassVar[str] = "evacuate"

    def __init__(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        cloud: ComputeCloud | None = None,
    ) -> None:
        super().__init__(journal, run, observer, metrics)
        self.meta = EvacuationMeta.from_meta(run.meta)
        self.settings = Settings.from_meta(self.meta.settings or {})
        self.cloud = cloud or ComputeCloud.connect(self.meta.cloud)
        self.hosts: list[str] = list(self.meta.hosts)

    def record(self, host: str) -> HostRecord:
        name = f"host:{host}"
        return HostRecord(
            lambda: self.journal.record(self.run.id, name),
            lambda data: self.journal.save_record(self.run.id, name, data),
        )

    def drained(self, drain: Drain) -> DrainResult:
        """Run ``drain``, telling its result."""
        result = drain.run()
        self.metrics.drained(drain.host, result.seconds)
        self.observer.message(
            f"{drain.host}: {result.moved} server(s) moved in {result.seconds:.1f}s"
            + (f", {len(result.left)} left" if result.left else "")
        )
        return result

    def _context(self, host: str, drain: Drain | None) -> HostContext:
        def run_drain() -> DrainResult:
            assert drain is not None  # only the forward flow drains
            return self.drained(drain)

        return HostContext(
            run_id=self.run.id,
            cloud=self.cloud,
            host=host,
            record=drain.record if drain else self.record(host),
            control=self.control,
            drain=run_drain,
            on_step=lambda h, step, status, secs: self._on_step(h, step, status, secs),
            message=lambda text: self._said(host, text),
            kind=self.run.kind,
        )

    def _notice(self, event_type: str, host: str) -> None:
        self.observer.notice(event_type, cloud=self.meta.cloud, host=host, by=self.run.kind)

    def _said(self, host: str, text: str) -> None:
        if text.endswith(ENABLED):  # this run switched the host's nova-compute on again
            self._notice(HOST_END, host)
        self.observer.message(text)

    def _on_step(self, host: str, step: str, status: str, seconds: float) -> None:
        if status == "done":
            self.metrics.step(step, seconds)
        if (step, status) == ("maintenance-on", "done"):
            before = self.record(host).data.get("service") or {}
            if before.get("enabled"):  # in maintenance by this run (not someone else's)
                self._notice(HOST_START, host)
        if status == "reverting" or step != "drain":
            self.observer.step(host, step, status, seconds)

    def drainable(self, host: str) -> Service | None:
        """The service of a host to drain in this phase (None: nothing to drain)."""
        return self.cloud.service(host)

    # -- one host --------------------------------------------------------------------
    def host_flow(self, host: str, phase: Phase, drain: Drain | None) -> Outcome:
        ctx = self._context(host, drain)
        steps = self.steps[phase]
        name = f"{phase.value}:{host}"
        OUTCOMES.save(ctx.record, phase, Outcome.RUNNING)
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
                outcome = self.done[phase] if succeeded(engine) else Outcome.INTERRUPTED
            except Exception as exc:
                outcome, text = self._outcome_of(exc, host)
        OUTCOMES.save(ctx.record, phase, outcome, error=text or None)
        if outcome is not Outcome.INTERRUPTED:  # the host's own event: the run's progress
            self.observer.node(host, outcome.value, text)
        return outcome

    def _outcome_of(self, exc: Exception, host: str) -> tuple[Outcome, str]:
        first, text = self.failure(exc, f"host {host}")
        if first is None:
            return Outcome.INTERRUPTED, text
        if first.check(DrainHalted):
            return Outcome.HALTED, text
        return Outcome.FAILED, text

    # -- a phase ---------------------------------------------------------------------
    def run_phase(self, phase: Phase) -> RunState:
        hosts = self.hosts if phase is Phase.FORWARD else list(reversed(self.hosts))
        done = self.done[phase]
        pending = [h for h in hosts if OUTCOMES.of(self.record(h), phase) is not done]
        drains: dict[str, Drain | None] = {h: None for h in pending}
        title = f"{self.verb if phase is Phase.FORWARD else 'rollback'} {self.run.short}"
        if phase is Phase.FORWARD:
            budget = Budget(self.settings)
            groups = self.cloud.group_index()
            events = RunEvents(self, self.cloud.name)
            for host in pending:
                service = self.drainable(host)
                if service is None:
                    continue
                drain = Drain(
                    self.cloud,
                    service,
                    self.settings,
                    budget,
                    self.control,
                    self.record(host),
                    events,
                    groups,
                )
                drain.adopt()  # every host's moves under way, before any new one
                drains[host] = drain
            disable_first(self._context(h, d) for h, d in drains.items() if d is not None)
            servers = {sid for h in hosts for sid in self.record(h).servers}
            servers |= {s.id for h in pending for s in self.cloud.servers_on(h)}
            moved = sum(
                1
                for h in hosts
                for e in self.record(h).servers.values()
                if e.get("outcome") == "moved"
            )
            self.observer.started(title, len(servers), moved)
        else:
            self.observer.started(title, len(hosts), len(hosts) - len(pending))
        started = time.monotonic()
        batches = self.meta.in_batches() if phase is Phase.FORWARD else [hosts]
        outcomes: list[Outcome] = []
        for batch in batches:
            todo = [h for h in batch if h in pending]
            with ThreadPoolExecutor(max(1, len(todo)), "ephyra-host") as pool:
                outcomes += pool.map(lambda h: self.host_flow(h, phase, drains[h]), todo)
            if self.control.request is not None or Outcome.INTERRUPTED in outcomes:
                return RunState.PAUSED
        LOG.debug("%s phase took %.1fs", phase.value, time.monotonic() - started)
        if any(o in (Outcome.FAILED, Outcome.HALTED) for o in outcomes):
            return RunState.FAILED
        return RunState.SUCCEEDED if phase is Phase.FORWARD else RunState.ROLLED_BACK
