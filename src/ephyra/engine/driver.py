"""What every kind of run shares while a process drives it: its state in the journal,
its stop requests (from signals or from other processes through the journal), and the
TaskFlow engines a stop must reach."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from ephyra.engine.control import Control, Request
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.states import RunState, check_transition
from ephyra.errors import EphyraError
from ephyra.metrics import RunMetrics
from ephyra.progress import Observer

WATCH_INTERVAL = 0.25


class RunDriver:
    def __init__(
        self, journal: Journal, run: RunInfo, observer: Observer, metrics: RunMetrics
    ) -> None:
        self.journal = journal
        self.run = run
        self.observer = observer
        self.metrics = metrics
        self.control = Control()
        self._engines: set[Any] = set()
        self._lock = threading.Lock()

    # -- state ---------------------------------------------------------------
    def set_state(self, state: RunState, **meta: Any) -> None:
        check_transition(self.run.state, state)
        self.run = self.journal.save_run(self.run, state=state, **meta)
        self.metrics.run_state(state)

    def stop(self, request: Request) -> None:
        """Ask every node to stop at its next step boundary (and long waits to end)."""
        self.control.ask(request)
        with self._lock:
            for engine in self._engines:
                engine.suspend()

    @contextlib.contextmanager
    def _tracked(self, engine: Any, control: Control) -> Iterator[None]:
        """Let stop() reach this engine, if it obeys the run's control."""
        if control is not self.control:  # an abort's return moves: not to be stopped
            yield
            return
        with self._lock:
            self._engines.add(engine)
            if self.control.request is not None:
                engine.suspend()
        try:
            yield
        finally:
            with self._lock:
                self._engines.discard(engine)

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Watch the journal for pause/abort requests from other processes."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(WATCH_INTERVAL):
                try:
                    request = self.journal.pending_request(self.run.id)
                except EphyraError:
                    continue
                if request and self.control.request is None:
                    self.observer.message(f"{request} requested")
                    self.stop(Request(request))

        thread = threading.Thread(target=watch, name="ephyra-watch", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM pause the run at the next step boundary (when the run is
        driven from the main thread; a server driving runs in threads keeps its own)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, _frame: Any) -> None:
            self.observer.message(f"{signal.Signals(signum).name}: pausing at the next step")
            self.stop(Request.PAUSE)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
