"""What every kind of run shares while a process drives it: its state in the journal,
its stop requests (from signals or from other processes through the journal), and the
TaskFlow engines a stop must reach."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from taskflow import states as tf_states
from taskflow.types.failure import Failure

from ephyra.engine import commands, events
from ephyra.engine.control import Control, Request
from ephyra.engine.flows import first_failure
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.locks import RunLock
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.states import ACTIVE, Phase, RunState, check_transition
from ephyra.errors import ControlPlaneUnreachable, EphyraError, IllegalTransition, Interrupted
from ephyra.progress import Observer
from ephyra.signals import on_stop

LOG = logging.getLogger(__name__)
WATCH_INTERVAL = 0.25


class Held(Protocol):
    """A lock of the run, held by this process."""

    name: str

    def still_held(self) -> bool: ...


class Keeper(Protocol):
    """What keeps a run this process's besides its locks: a conductor's claim on the run's
    job. It is asked before each step; it may find the run lost between steps too, and
    then calls the ``lose`` of the driver it was given."""

    def still_ours(self) -> str:
        """'' while the run is this process's, else why it is not."""
        ...

    def driving(self, driver: RunDriver | None) -> None:
        """The driver of the run while it goes (None once it has stopped)."""
        ...


class RunDriver:
    def __init__(
        self, journal: Journal, run: RunInfo, observer: Observer, metrics: RunMetrics
    ) -> None:
        self.journal = journal
        self.run = run
        self.observer = events.Recorder(observer, journal.engine, run.id, run.kind)
        self.metrics = metrics
        self.control = Control()
        self._engines: dict[object, Any] = {}  # key -> engine a stop must reach
        self._held: set[object] = set()  # keys whose engine a stop leaves running for now
        self._lock = threading.Lock()
        #: The run's locks held by this process, and its keeper: checked before each step.
        self.locks: Sequence[Held] = ()
        self.keeper: Keeper | None = None
        self.lost = ""  # why the run is no longer this process's ('' while it is)

    def run_phase(self, phase: Phase) -> RunState:
        """Drive the run in ``phase`` until done or stopped; the state it should take."""
        raise NotImplementedError

    def finish(self) -> bool:
        """Make a run that succeeded final (:attr:`RunKind.finish_help`); whether it
        is, all of it (else what is left is done by the next ``finish``)."""
        raise NotImplementedError

    # -- state ---------------------------------------------------------------
    def set_state(self, state: RunState, **meta: Any) -> None:
        check_transition(self.run.state, state)
        self.run = self.journal.save_run(self.run, state=state, **meta)
        self.metrics.run_state(state)
        self.observer.state(state.value)

    def stop(self, request: Request) -> None:
        """Ask every node to stop at its next step boundary (and long waits to end)."""
        self.control.ask(request)
        with self._lock:
            for key, engine in self._engines.items():
                if key not in self._held:
                    engine.suspend()

    # -- ownership -----------------------------------------------------------
    def still_ours(self) -> str:
        """'' while this process holds the run (its locks, its keeper's claim); else why
        not."""
        if self.lost:
            return self.lost
        for lock in self.locks:
            if not lock.still_held():
                return f"lost the lock {lock.name}"
        return self.keeper.still_ours() if self.keeper is not None else ""

    def lose(self, why: str) -> None:
        """The run is no longer this process's: stop the step in flight (a pause) and
        end the commands it runs, so that none outlives the claim; the watcher goes on
        ending any command started after."""
        with self._lock:
            first, self.lost = not self.lost, self.lost or why
        if first:
            self.observer.message(f"{why}: stopping the step in flight and its commands")
            self.stop(Request.PAUSE)
        ended = commands.end_all(self.lost)
        if ended:
            LOG.warning("%s: ended commands %s", why, ", ".join(map(str, ended)))

    def _before_step(self, state: str, details: dict[str, Any]) -> None:
        """An atom of a tracked engine is about to run: is the run still ours?"""
        why = self.still_ours()
        if why:
            self.lose(why)

    def failure(self, exc: Exception, what: str) -> tuple[Failure | None, str]:
        """What an engine's run raised: its first failure and the text to record, or
        None when it only stopped the run (a stop request; a control plane gone, which
        pauses the run with it as the reason). An error that is not Ephyra's own is
        logged with its traceback."""
        first = first_failure(exc)
        text = str(first.exception_str)
        if first.check(Interrupted):
            return None, ""
        if first.check(ControlPlaneUnreachable):
            with self._lock:
                if self.control.request is None:
                    self.observer.message(f"{text}: pausing the run")
                    self.run = self.journal.save_run(self.run, reason=text)
            self.stop(Request.PAUSE)
            return None, text
        if not first.check(EphyraError):
            LOG.error("%s: unexpected error\n%s", what, first.pformat(traceback=True))
            text = f"unexpected {first.exception_type_names[0]}: {text}"
        return first, text

    @contextlib.contextmanager
    def _tracked(self, engine: Any, control: Control, key: object = None) -> Iterator[None]:
        """Let stop() reach this engine, if it obeys the run's control; ``key`` names it
        for hold() and release()."""
        if control is not self.control:  # an abort's return moves: not to be stopped
            yield
            return
        key = engine if key is None else key
        with self._lock:
            self._engines[key] = engine
            if self.control.request is not None:
                engine.suspend()
        engine.atom_notifier.register(tf_states.RUNNING, self._before_step)
        try:
            yield
        finally:
            engine.atom_notifier.deregister(tf_states.RUNNING, self._before_step)
            with self._lock:
                self._engines.pop(key, None)
                self._held.discard(key)

    def hold(self, key: object) -> None:
        """Let the engine of ``key`` run on through a stop until release(key): the steps
        in between leave the world as no stop may leave it. If a stop was asked already,
        raise it instead, so that those steps do not begin."""
        with self._lock:
            if key not in self._engines:
                return  # not a stoppable engine
            self.control.checkpoint()
            self._held.add(key)

    def release(self, key: object) -> None:
        with self._lock:
            if key in self._held:
                self._held.discard(key)
                if self.control.request is not None:
                    self._engines[key].suspend()

    def notifying(self) -> contextlib.AbstractContextManager[None]:
        """Deliver the run's notifications (:mod:`ephyra.engine.notify`) while the block
        runs, and for a bounded time after it; a kind emits its own notices with
        ``self.observer.notice(event_type, **payload)``."""
        from ephyra.engine import notify

        names = notify.of_run(self.run.meta)
        return notify.delivering(self.observer, self.journal.engine, self.run.id, names)

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Watch the journal for pause/abort requests from other processes; once the run
        is lost, end the commands started since."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(WATCH_INTERVAL):
                if self.lost:
                    commands.end_all(self.lost)
                try:
                    request = self.journal.pending_request(self.run.id)
                except EphyraError:
                    continue
                if request and self.control.request is None:
                    self.control.ask(Request(request))  # in effect once it is reported
                    self.observer.message(f"{request} requested")
                    self.stop(Request(request))  # may wait for the steps under way

        thread = threading.Thread(target=watch, name="ephyra-watch", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def signals(self) -> contextlib.AbstractContextManager[None]:
        """Ctrl-C and SIGTERM pause the run at the next step boundary."""

        def pause(sig: signal.Signals) -> None:
            self.observer.message(f"{sig.name}: pausing at the next step")
            self.stop(Request.PAUSE)

        return on_stop(pause)


def ask_to_stop(
    journal: Journal, run: RunInfo, what: Request, lock: str, lock_url: str | None
) -> str:
    """Ask the process driving ``run`` (the holder of ``lock``) to stop, through the
    journal; what was done, in words, or '' if no process drives it (an abort then
    marks the run itself). A pause of a run whose process died marks it paused."""
    if run.state not in ACTIVE:
        if what is Request.PAUSE:
            raise IllegalTransition(f"run {run.short} is {run.state.value}, not running")
        return ""
    probe = RunLock(lock, lock_url)
    try:
        alive = not probe.try_acquire()
        if not alive and what is Request.PAUSE:  # its process died: record the pause
            journal.save_run(run, state=RunState.PAUSED)
            return f"run {run.short} had no live process; marked paused"
    finally:
        probe.close()
    if not alive:
        return ""
    journal.request(run.id, what.value)
    return f"{what.value} of run {run.short} requested; its process stops at the next step"
