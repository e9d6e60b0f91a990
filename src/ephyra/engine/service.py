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
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic

from ephyra.engine.control import Request
from ephyra.engine.journal import Created, Journal, RunInfo, no_hook
from ephyra.engine.kinds import NewRun, P, RunKind, RunStatus, get, names
from ephyra.engine.states import (
    ACTIVE,
    FINISHED,
    UNFINISHED,
    Phase,
    RunState,
    check_transition,
)
from ephyra.errors import EphyraError, IllegalTransition, StepFailed, UsageError
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


def _told(notify: Sequence[str] | None) -> dict[str, list[str]]:
    """What a new run records of the notifiers it tells (checked: each configured)."""
    from ephyra.engine import notify as notifications

    return {notifications.META: notifications.chosen(notify)}


class Action(StrEnum):
    """What can be done to a run once it is made."""

    RESUME = "resume"
    ROLLBACK = "rollback"
    PAUSE = "pause"
    ABORT = "abort"
    FINISH = "finish"


def locks_of(run: RunInfo, kind: RunKind[Any] | None = None) -> list[str]:
    """The names of the locks of ``run``: kept with it; for a run made before they were,
    what its kind (``kind``, else the registered kind of its name) reads from its records;
    none for a record of no kind of run (a host's maintenance)."""
    kept = run.meta.get("locks")
    if kept:
        return [str(name) for name in kept]
    if kind is None:
        if run.kind not in names():
            return []
        kind = get(run.kind)
    return kind.locks_of(run)


def holding_locks(
    journal: Journal, locks: Sequence[str], lock_url: str | None
) -> contextlib.AbstractContextManager[list[RunLock]]:
    """Hold every lock of ``locks`` or raise LockHeld naming the active run (of any kind)
    whose locks are these."""

    def holder(lock: str) -> str:
        for run in reversed(journal.runs()):
            if run.state in ACTIVE and lock in locks_of(run):
                where = f"pid {run.meta.get('pid')} on {run.meta.get('host')}"
                return f"{run.kind} run {run.id} ({run.state.value}, {where})"
        return "another process"

    from ephyra.engine.locks import holding

    return holding(list(locks), lock_url, holder)


def rollback_asked(run: RunInfo) -> bool:
    """A rollback was asked for the run and has not ended: resume goes on with it."""
    return run.phase == Phase.ROLLBACK and run.state is not RunState.ROLLED_BACK


class RunService(Generic[P]):
    """Every operation on the runs of one kind, over one journal and one lock backend."""

    def __init__(self, kind: RunKind[P], journal: Journal, lock_url: str | None = None) -> None:
        self.kind = kind
        self.journal = journal
        self.lock_url = lock_url

    # -- finding runs and their holders --------------------------------------------------
    def find(self, ident: str | None, states: frozenset[RunState] = frozenset(RunState)) -> RunInfo:
        """The run named (an id or a unique prefix), else the latest in one of ``states``."""
        start = f"ephyra {self.kind.command} {self.kind.start_verb}"
        return self.journal.find(self.kind.name, ident, states, f" (start one with: {start} ...)")

    def target(self, ident: str | None, action: Action) -> RunInfo:
        """The run ``action`` acts on: the one named, else the latest it may act on (the
        latest unfinished run; for a rollback, the latest not rolled back; for a finish, the
        latest that succeeded). Refused at once: a resume of a finished run, an abort of a
        run rolling back, a rollback of a run made final by ``finish`` or past a point of
        no return (:meth:`RunKind.no_rollback`)."""
        if action is Action.ROLLBACK:
            run = self.find(ident, frozenset(RunState) - {RunState.ROLLED_BACK})
            if run.meta.get("finished"):
                raise IllegalTransition(
                    f"run {run.short} is finished ({self.kind.finish_help}): "
                    "it cannot be rolled back"
                )
            why = self.kind.no_rollback(self.journal, run)
            if why:
                raise IllegalTransition(f"run {run.short} cannot be rolled back: {why}")
            return run
        if action is Action.FINISH:
            if not self.kind.finish_help:
                raise UsageError(f"{self.kind.name} runs have no finish")
            run = self.find(ident, frozenset({RunState.SUCCEEDED}))
            if run.state is not RunState.SUCCEEDED:
                raise IllegalTransition(
                    f"run {run.short} is {run.state.value}: only a run that succeeded finishes"
                )
            return run
        run = self.find(ident, UNFINISHED)
        if action is Action.RESUME and run.state not in UNFINISHED and not rollback_asked(run):
            raise IllegalTransition(f"run {run.short} is {run.state.value}: nothing to resume")
        rolling_back = run.state is RunState.ROLLING_BACK or run.phase == Phase.ROLLBACK
        if action is Action.ABORT and rolling_back:
            raise IllegalTransition(
                f"run {run.short} is rolling back: pause it instead of aborting"
            )
        return run

    def locks(self, run: RunInfo) -> list[str]:
        """The names of the locks of ``run`` (kept with it, else read from its records)."""
        return locks_of(run, self.kind)

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
        notify: Sequence[str] | None = None,
    ) -> RunInfo:
        """Create the run and drive it in this process; it tells the notifiers ``notify``
        (None: the configured default), kept with it."""
        told = _told(notify)
        new = self.kind.new_run(plan)
        with self.holding(new.locks) as held:
            run = self._create(new, **told)
            created(run)
            try:
                driver = self.kind.driver(
                    self.journal, run, observer, _metrics(self.kind.name, run.id), plan
                )
            except EphyraError as exc:  # e.g. the plan cannot be run on this machine
                self.journal.save_run(run, state=RunState.PAUSED.value, reason=str(exc))
                raise
            driver.locks = held  # checked before each step
            return self._drive(driver, Phase.FORWARD, exports)

    def queue(self, plan: P, board: Any, notify: Sequence[str] | None = None) -> RunInfo:
        """Create the run (its locks free, as for start) and post it on ``board`` for a
        conductor to drive; a run that could not be posted is left paused, with the reason."""
        from ephyra.errors import BoardError

        told = _told(notify)
        new = self.kind.new_run(plan)
        with self.holding(new.locks):
            run = self._create(new, board=board.url.url, **told)
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

    def queue_resume(
        self,
        ident: str | None,
        board: Any,
        *,
        rollback: bool = False,
        settings: Mapping[str, Any] | None = None,
    ) -> RunInfo:
        """Post a run on ``board``: a conductor resumes it (or rolls it back), with
        ``settings`` changed (:attr:`RunKind.resume_settings`)."""
        from ephyra.engine.jobflow import hand_over

        run = self.target(ident, Action.ROLLBACK if rollback else Action.RESUME)
        posted = board.queued(run)
        if posted is not None:
            by = f", claimed by {posted.owner}" if posted.owner else ""
            raise UsageError(f"run {run.short} is queued on {redact(board.url.url)} already{by}")
        with self.holding(self.locks(run)):
            if settings:
                fresh = self.journal.run(run.id)
                run = self.journal.save_run(fresh, **self.resumed(fresh, settings))
            what = "rollback" if rollback else "resume"
            if rollback:
                run = self.journal.save_run(run, phase=Phase.ROLLBACK.value, reason="")
            hand_over(self.journal, run.id, f"{what} queued from {socket.gethostname()}")
            flow = board.add_job_detail(run)
        board.post(run, flow)
        return run

    # -- going on ------------------------------------------------------------------------
    def resumed(self, run: RunInfo, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        """The changes to the run's record that a resume with ``settings`` makes (none
        without); refused if one is not of :attr:`RunKind.resume_settings`."""
        if not settings:
            return {}
        others = sorted(set(settings) - set(self.kind.resume_settings))
        if others:
            raise UsageError(f"{self.kind.name} runs take no {', '.join(others)} on resume")
        return self.kind.resumed(run, settings)

    @contextlib.contextmanager
    def _taken(
        self,
        run: RunInfo,
        observer: Observer,
        keeper: Keeper | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Iterator[RunDriver]:
        """Hold the run's locks, record this process as its runner (and the locks with the
        run, if it was made before they were kept, and the ``settings`` a resume changed),
        and clear old requests; the driver checks its locks and ``keeper`` before each step."""
        locks = self.locks(run)
        with self.holding(locks) as held:
            run = self.journal.run(run.id)
            changes = self.resumed(run, settings)
            run = self.journal.save_run(run, locks=locks, **_here(), **changes)
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
        settings: Mapping[str, Any] | None = None,
    ) -> RunInfo:
        """Go on from where the run stopped, in the phase it was in (``keeper``: what
        keeps it this process's besides its locks, a conductor's claim), with ``settings``
        changed from now on (:attr:`RunKind.resume_settings`, kept with the run)."""
        run = self.target(ident, Action.RESUME)
        with self._taken(run, observer, keeper, settings) as driver:
            if run.phase == Phase.ROLLBACK:
                driver.set_state(RunState.ROLLING_BACK, reason="")
                return self._drive(driver, Phase.ROLLBACK, exports)
            self.kind.on_resume(driver)
            driver.set_state(RunState.RUNNING, reason="")
            return self._drive(driver, Phase.FORWARD, exports)

    def rollback(
        self, ident: str | None, observer: Observer, *, exports: Exports | None = None
    ) -> RunInfo:
        """Take back, newest first, what the run did."""
        run = self.target(ident, Action.ROLLBACK)
        with self._taken(run, observer) as driver:
            driver.set_state(RunState.ROLLING_BACK, phase=Phase.ROLLBACK.value, reason="")
            return self._drive(driver, Phase.ROLLBACK, exports)

    def finish(self, ident: str | None, observer: Observer) -> str:
        """Make a run that succeeded final (:attr:`RunKind.finish_help`), once. Its drive
        is told as any other (``run.started``, ``run.finished`` with ``finished`` or
        ``failed``)."""
        run = self.target(ident, Action.FINISH)
        if run.meta.get("finished"):
            return f"run {run.short} finished already"
        done = False
        with self._taken(run, observer) as driver, driver.notifying():
            driver.observer.started(f"finish {self.kind.title(run)} {run.short}", 1, 0)
            try:
                done = driver.finish()
                if done:
                    self.journal.save_run(driver.run, finished=True)
            finally:
                driver.observer.finished(FINISHED if done else "failed")
        if not done:
            raise StepFailed(f"run {run.short}: its finish is not done: run finish again")
        return f"run {run.short} finished"

    def _drive(self, driver: RunDriver, phase: Phase, exports: Exports | None) -> RunInfo:
        from ephyra.engine.metrics import NO_EXPORTS

        driver.metrics.export(exports or NO_EXPORTS)
        driver.metrics.run_state(driver.run.state)
        with driver.notifying():
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
        return self._request(self.target(ident, Action.PAUSE), Request.PAUSE)

    def abort(self, ident: str | None, observer: Observer) -> str:
        """Stop for good: through the process that drives the run, or here if none does."""
        run = self.target(ident, Action.ABORT)
        message = self._request(run, Request.ABORT)
        if message:
            return message
        if self.kind.abort_undoes:
            with self._taken(run, observer) as driver, driver.notifying():
                driver.control.ask(Request.ABORT)
                self.kind.on_abort(driver)
                driver.set_state(RunState.ABORTED)
        else:
            with self.holding(self.locks(run)):
                run = self.journal.run(run.id)
                check_transition(run.state, RunState.ABORTED)
                self.journal.save_run(run, state=RunState.ABORTED)
        after = self.kind.after_abort.format(run=run.short)
        return f"run {run.short} aborted" + (f"; {after}" if after else "")

    def _request(self, run: RunInfo, what: Request) -> str:
        """Ask the process running the run to stop; '' if no process runs it."""
        from ephyra.engine.driver import ask_to_stop

        return ask_to_stop(self.journal, run, what, self.locks(run)[0], self.lock_url)

    # -- reading -------------------------------------------------------------------------
    def status(self, ident: str | None) -> RunStatus[Any]:
        return self.kind.status(self.journal, self.find(ident))

    def list(self) -> list[dict[str, Any]]:
        wanted = {self.kind.name, *self.kind.also_lists}
        return [self.kind.row(r) for r in self.journal.runs() if r.kind in wanted]
