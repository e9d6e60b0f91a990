"""Runs the server drives: each in a thread of its own, answered as soon as the run is
in the journal. Its progress goes to the journal's events; pause and abort reach it
through the journal, as they reach a run driven by any other process. When the server
stops, it asks its runs to pause and waits for them to reach a step boundary."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ephyra.engine import events
from ephyra.engine.journal import RunInfo
from ephyra.errors import EphyraError
from ephyra.operations.local import Local
from ephyra.progress import QuietObserver

LOG = logging.getLogger(__name__)
#: How long an action waits for an early refusal (a lock held, a state that forbids it).
EARLY = 1.0


class Driven:
    def __init__(self, local: Local) -> None:
        self.local = local
        self._threads: dict[str, tuple[str, threading.Thread]] = {}  # run id -> kind, thread
        self._lock = threading.Lock()

    def _launch(self, name: str, work: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
        box: list[Any] = []

        def target() -> None:
            try:
                work()
            except EphyraError as exc:
                box.append(exc)
            except Exception as exc:  # the thread's end must not go unseen
                LOG.exception("%s failed", name)
                box.append(exc)

        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread, box

    def _track(self, run_id: str, kind: str, thread: threading.Thread) -> None:
        with self._lock:
            self._threads = {k: v for k, v in self._threads.items() if v[1].is_alive()}
            self._threads[run_id] = (kind, thread)

    def start(self, kind: str, body: Any) -> dict[str, Any]:
        """Plan and start a run here; its id once it is in the journal."""
        made = threading.Event()
        runs: list[RunInfo] = []

        def created(run: RunInfo) -> None:
            runs.append(run)
            made.set()

        thread, box = self._launch(
            f"ephyra-{kind}-start",
            lambda: self.local.start(kind, body, QuietObserver(), created=created),
        )
        while not made.wait(0.05):
            if not thread.is_alive():
                break
        if not runs:
            thread.join()
            raise box[0] if box else EphyraError(f"the {kind} run ended before it began")
        run = runs[0]
        self._track(run.id, kind, thread)
        return {"id": run.id, "kind": kind, "state": run.state.value, "seq": 0}

    def act(
        self, kind: str, ident: str | None, action: str, settings: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume (with ``settings`` changed from now on), roll back, abort or finish a run
        here (they may take long)."""
        run = self.local.target(kind, ident, action)
        self.local.service(kind).resumed(run, settings)  # refused now, not in the thread
        seq = events.last_seq(self.local.journal.engine)
        messages: list[str] = []

        def work() -> None:
            if action == "abort":
                messages.append(self.local.abort(kind, run.id, QuietObserver()))
            elif action == "finish":
                messages.append(self.local.finish(kind, run.id, QuietObserver()))
            elif action == "resume":
                self.local.resume(kind, run.id, QuietObserver(), settings=settings)
            else:
                self.local.rollback(kind, run.id, QuietObserver())

        thread, box = self._launch(f"ephyra-{kind}-{action}", work)
        thread.join(EARLY)
        if box:
            raise box[0]
        if thread.is_alive():
            self._track(run.id, kind, thread)
        now = self.local.journal.run(run.id)
        text = messages[0] if messages else f"{action} of run {run.short} under way"
        return {"id": run.id, "kind": kind, "state": now.state.value, "message": text, "seq": seq}

    def stop(self, timeout: float) -> None:
        """Ask every run driven here to pause, and wait for them (at most ``timeout``)."""
        with self._lock:
            driven = [(r, k, t) for r, (k, t) in self._threads.items() if t.is_alive()]
        for run_id, kind, _ in driven:
            try:
                self.local.pause(kind, run_id)
            except EphyraError as exc:
                LOG.warning("cannot pause run %s: %s", run_id, exc)
        for _, _, thread in driven:
            thread.join(timeout)
