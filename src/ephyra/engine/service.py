"""The life cycle of a run, the same for every kind: start (here, or queued on a board for
``ephyra conductor``), resume, rollback, pause, abort, status, list.

The process that drives a run holds its locks (their names are kept with the run) and is
the only writer of its record; other processes ask it to stop through the journal. A run
keeps what was decided at its start: resume and rollback carry on with it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic

from ephyra.engine.control import Request
from ephyra.engine.journal import Created, Journal, RunInfo, no_hook
from ephyra.engine.kinds import NewRun, P, RunKind
from ephyra.engine.states import ACTIVE, UNFINISHED, Phase, RunState, check_transition
from ephyra.errors import IllegalTransition, UsageError
from ephyra.progress import Observer
from ephyra.urls import redact

if TYPE_CHECKING:  # TaskFlow's engines, tooz, prometheus: not for reading a status
    from ephyra.engine.driver import Keeper, RunDriver
    from ephyra.engine.locks import RunLock
    from ephyra.engine.metrics import Exports, RunMetrics


def _metrics(kind: str, run_id: str) -> RunMetrics:
    from ephyra.engine.metrics import RunMetrics

    return RunMetrics(kind, run_id)


def _here() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname()}


def holding_locks(
    journal: Journal, locks: Sequence[str], lock_url: str | None
) -> contextlib.AbstractContextManager[list[RunLock]]:
    """Hold every lock of ``locks`` or raise LockHeld naming the active run (of any kind)
    that keeps it with its record."""

    def holder(lock: str) -> str:
        for run in reversed(journal.runs()):
            if run.state in ACTIVE and lock in run.meta.get("locks", ()):
                where = f"pid {run.meta.get('pid')} on {run.meta.get('host')}"
                return f"{run.kind} run {run.id} ({run.state.value}, {where})"
        return "another process"

    from ephyra.engine.locks import holding

    return holding(list(locks), lock_url, holder)


def rollback_asked(run: RunInfo) -> bool:
    """A rollback was asked for the run and has not ended: resume goes on with it."""
    return run.meta.get("phase") == Phase.ROLLBACK.value and run.state is not RunState.ROLLED_BACK


class RunService(Generic[P]):
    """Every operation on the runs of one kind, over one journal and one lock backend."""

    def __init__(self, kind: RunKind[P], journal: Journal, lock_url: str | None = None) -> None:
        self.kind = kind
        self.journal = journal
        self.lock_url = lock_url

    # -- finding runs and their holders --------------------------------------------------
    def find(self, ident: str | None, states: frozenset[RunState] = frozenset(RunState)) -> RunInfo:
        """The run named (an id or a unique prefix), else the latest in one of ``states``."""
        return self.journal.find(self.kind.name, ident, states)

    def holding(self, locks: Sequence[str]) -> contextlib.AbstractContextManager[list[RunLock]]:
        """Hold every lock of ``locks`` or raise LockHeld naming the run that holds one."""
        return holding_locks(self.journal, locks, self.lock_url)

    def ensure_free(self, body: Any) -> None:
        """Refuse at once, before planning, if a lock the request needs is held."""
        with self.holding(self.kind.claims(body)):
            pass

    # -- starting ------------------------------------------------------------------------
    def _create(self, new: NewRun, **extra: Any) -> RunInfo:
        if not new.locks:
            raise UsageError(f"a {self.kind.name} run names no lock: two could drive it at once")
        meta = {
            "state": RunState.RUNNING.value,
            "phase": Phase.FORWARD.value,
            "created": time.time(),
            "locks": new.locks,
            **_here(),
            **new.meta,
            **extra,
        }
        return self.journal.create_run(self.kind.name, meta, new.records)

    def start(
        self,
        plan: P,
        observer: Observer,
        *,
        exports: Exports | None = None,
        created: Created = no_hook,
    ) -> RunInfo:
        """Create the run and drive it in this process."""
        new = self.kind.new_run(plan)
        with self.holding(new.locks) as held:
            run = self._create(new)
            created(run)
            driver = self.kind.driver(
                self.journal, run, observer, _metrics(self.kind.name, run.id), plan
            )
            driver.locks = held  # checked before each step
            return self._drive(driver, Phase.FORWARD, exports)

    def queue(self, plan: P, board: Any) -> RunInfo:
        """Create the run (its locks free, as for start) and post it on ``board`` for a
        conductor to drive; a run that could not be posted is left paused, with the reason."""
        from ephyra.errors import BoardError

        new = self.kind.new_run(plan)
        with self.holding(new.locks):
            run = self._create(new, board=board.url.url)
            try:
                flow = board.add_job_detail(run)
            except BoardError as exc:
                self.journal.save_run(run, state=RunState.PAUSED.value, reason=str(exc))
                raise
        try:
            board.post(run, flow)
        except BoardError as exc:
            self.journal.save_run(run, state=RunState.PAUSED.value, reason=str(exc))
            raise
        return run

    def queue_resume(self, ident: str | None, board: Any, *, rollback: bool = False) -> RunInfo:
        """Post a run on ``board``: a conductor resumes it (or rolls it back)."""
        from ephyra.engine.jobflow import hand_over

        run = self._continued(ident, rollback)
        posted = board.queued(run)
        if posted is not None:
            by = f", claimed by {posted.owner}" if posted.owner else ""
            raise UsageError(f"run {run.short} is queued on {redact(board.url.url)} already{by}")
        with self.holding(run.meta["locks"]):
            what = "rollback" if rollback else "resume"
            if rollback:
                run = self.journal.save_run(run, phase=Phase.ROLLBACK.value, reason="")
            hand_over(self.journal, run.id, f"{what} queued from {socket.gethostname()}")
            flow = board.add_job_detail(run)
        board.post(run, flow)
        return run

    # -- going on ------------------------------------------------------------------------
    def _continued(self, ident: str | None, rollback: bool) -> RunInfo:
        if rollback:
            return self.find(ident, frozenset(RunState) - {RunState.ROLLED_BACK})
        run = self.find(ident, UNFINISHED)
        if rollback_asked(run):
            return run
        if run.state not in UNFINISHED:
            raise IllegalTransition(f"run {run.short} is {run.state.value}: nothing to resume")
        return run

    @contextlib.contextmanager
    def _taken(
        self, run: RunInfo, observer: Observer, keeper: Keeper | None = None
    ) -> Iterator[RunDriver]:
        """Hold the run's locks, record this process as its runner, and clear old requests;
        the driver checks its locks and ``keeper`` before each step."""
        with self.holding(run.meta["locks"]) as held:
            run = self.journal.save_run(self.journal.run(run.id), **_here())
            self.journal.request(run.id, None)
            metrics = _metrics(self.kind.name, run.id)
            driver = self.kind.driver(self.journal, run, observer, metrics)
            driver.locks, driver.keeper = held, keeper
            if keeper is not None:
                keeper.driving(driver)
            try:
                yield driver
            finally:
                if keeper is not None:
                    keeper.driving(None)

    def resume(
        self,
        ident: str | None,
        observer: Observer,
        *,
        exports: Exports | None = None,
        keeper: Keeper | None = None,
    ) -> RunInfo:
        """Go on from where the run stopped, in the phase it was in (``keeper``: what
        keeps it this process's besides its locks, a conductor's claim)."""
        run = self._continued(ident, rollback=False)
        with self._taken(run, observer, keeper) as driver:
            if run.meta.get("phase") == Phase.ROLLBACK.value:
                driver.set_state(RunState.ROLLING_BACK, reason="")
                return self._drive(driver, Phase.ROLLBACK, exports)
            self.kind.on_resume(driver)
            driver.set_state(RunState.RUNNING, reason="")
            return self._drive(driver, Phase.FORWARD, exports)

    def rollback(
        self, ident: str | None, observer: Observer, *, exports: Exports | None = None
    ) -> RunInfo:
        """Take back, newest first, what the run did."""
        run = self._continued(ident, rollback=True)
        with self._taken(run, observer) as driver:
            driver.set_state(RunState.ROLLING_BACK, phase=Phase.ROLLBACK.value, reason="")
            return self._drive(driver, Phase.ROLLBACK, exports)

    def _drive(self, driver: RunDriver, phase: Phase, exports: Exports | None) -> RunInfo:
        from ephyra.engine.metrics import NO_EXPORTS

        driver.metrics.export(exports or NO_EXPORTS)
        driver.metrics.run_state(driver.run.state)
        with driver.signals(), driver.watching():
            state = driver.run_phase(phase)
        if driver.control.request is Request.ABORT and phase is Phase.FORWARD:
            if self.kind.abort_undoes:
                self.kind.on_abort(driver)
            state = RunState.ABORTED
        self.journal.request(driver.run.id, None)
        driver.set_state(state)
        driver.observer.finished(state.value)
        return driver.run

    # -- stopping ------------------------------------------------------------------------
    def pause(self, ident: str | None) -> str:
        """Ask the process driving the run to stop at its next step boundary."""
        return self._request(ident, Request.PAUSE)

    def abort(self, ident: str | None, observer: Observer) -> str:
        """Stop for good: through the process that drives the run, or here if none does."""
        run = self.find(ident, UNFINISHED)
        if run.state is RunState.ROLLING_BACK or run.meta.get("phase") == Phase.ROLLBACK.value:
            raise IllegalTransition(
                f"run {run.short} is rolling back: pause it instead of aborting"
            )
        message = self._request(run.id, Request.ABORT)
        if message:
            return message
        if self.kind.abort_undoes:
            with self._taken(run, observer) as driver:
                driver.control.ask(Request.ABORT)
                self.kind.on_abort(driver)
                driver.set_state(RunState.ABORTED)
        else:
            with self.holding(run.meta["locks"]):
                run = self.journal.run(run.id)
                check_transition(run.state, RunState.ABORTED)
                self.journal.save_run(run, state=RunState.ABORTED)
        after = self.kind.after_abort.format(run=run.short)
        return f"run {run.short} aborted" + (f"; {after}" if after else "")

    def _request(self, ident: str | None, what: Request) -> str:
        """Ask the process running the run to stop; '' if no process runs it."""
        run = self.find(ident, ACTIVE | {RunState.PAUSED, RunState.FAILED})
        from ephyra.engine.driver import ask_to_stop

        return ask_to_stop(self.journal, run, what, run.meta["locks"][0], self.lock_url)

    # -- reading -------------------------------------------------------------------------
    def status(self, ident: str | None) -> dict[str, Any]:
        return self.kind.status(self.journal, self.find(ident))

    def list(self) -> list[dict[str, Any]]:
        wanted = {self.kind.name, *self.kind.also_lists}
        return [self.kind.row(r) for r in self.journal.runs() if r.kind in wanted]
