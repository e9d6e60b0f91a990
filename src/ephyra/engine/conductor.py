"""Conductors: TaskFlow's BlockingConductor over a board, driving the runs posted on it.

A conductor claims one job at a time (a claim is an etcd lease of the board's ``ttl``)
and runs its flow, whose task resumes the run from the journal under the run's locks
(:mod:`ephyra.engine.jobflow`). While the run goes, a keeper thread extends the claim
every ttl/3, so a run longer than the ttl stays with its conductor; if the conductor
dies, the lease runs out and another conductor claims the job and resumes the run where
the journal says it is.

What becomes of a job:

- the run ends (succeeded, failed, paused by its policy or by an operator, aborted,
  rolled back), or there is nothing to resume: the job is consumed;
- the run's locks are held (the previous conductor's lock lease has not run out yet),
  or resuming it failed: the job is abandoned, and claimed again after ``retry_delay``;
- the conductor is asked to stop (SIGTERM, Ctrl-C): the run is asked to pause at its
  next step boundary, marked as handed over, and the job abandoned: another conductor
  resumes it at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from taskflow import engines
from taskflow.conductors.backends.impl_blocking import BlockingConductor

from ephyra.engine import jobflow
from ephyra.engine.board import Board
from ephyra.engine.control import Request
from ephyra.engine.flows import engine_for
from ephyra.engine.journal import Journal
from ephyra.engine.states import ACTIVE, RunState
from ephyra.errors import BoardError, EphyraError, LockHeld
from ephyra.progress import Observer
from ephyra.urls import redact

LOG = logging.getLogger(__name__)
#: The logger of TaskFlow's own lines about the jobs a conductor runs.
TASKFLOW_LOG = "ephyra.conductor.taskflow"
#: Seconds before a job given back for a lock held or an error is tried again.
RETRY_DELAY = 2.0
#: Seconds between looks at the board while no job can be claimed.
WAIT_TIMEOUT = 0.5
#: Seconds between pause requests while the conductor stops (a request the run's
#: process clears as it starts is made again).
STOP_INTERVAL = 0.5


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class RunConductor(BlockingConductor):  # type: ignore[misc]
    """Claims the board's jobs one at a time and drives their runs."""

    #: A run handed back leaves its job on the board, unclaimed (not consumed).
    NO_CONSUME_EXCEPTIONS = (*BlockingConductor.NO_CONSUME_EXCEPTIONS, jobflow.HandBack)

    def __init__(
        self,
        name: str,
        board: Board,
        journal: Journal,
        observer: Observer,
        out: TextIO,
        *,
        lock_url: str | None = None,
        retry_delay: float = RETRY_DELAY,
        wait_timeout: float = WAIT_TIMEOUT,
    ) -> None:
        super().__init__(
            name,
            board.jobboard,
            persistence=journal.backend,
            wait_timeout=wait_timeout,
            log=logging.getLogger(TASKFLOW_LOG),
        )
        self.name = name
        self.board = board
        self.journal = journal
        self.observer = observer
        self.lock_url = lock_url
        self.retry_delay = retry_delay
        self.handed_back = 0  # jobs given back because this conductor stopped
        self._out = out
        self._print = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()  # wakes the keeper
        self._run: tuple[str, str] | None = None  # (kind, run id) of the job in hand
        self._resumed = False  # the run's resume has returned (no more pause requests)
        self._lost = False  # the claim of the job in hand ran out under this conductor
        self._control = threading.Lock()  # orders pause requests and the hand-over mark
        self._why = ""
        self._retry = False

    # -- what an operator reads ----------------------------------------------------
    def say(self, text: str) -> None:
        with self._print:
            stamp = time.strftime("%H:%M:%S")
            print(f"{stamp} conductor {self.name}: {text}", file=self._out, flush=True)

    # -- the loop ------------------------------------------------------------------
    def serve(self) -> None:
        """Claim and drive jobs until stopped."""
        self.say(f"waiting for jobs on {self.board.url.url} (claims last {self.board.ttl}s)")
        try:
            with jobflow.serving(self):
                self.run()
        except EphyraError:
            raise
        except Exception as exc:
            what = f"{type(exc).__name__}: {exc}".rstrip(": ")
            raise BoardError(f"lost the board {redact(self.board.url.url)}: {what}") from exc
        self.say("stopped")

    def shutdown(self, why: str) -> None:
        """Stop claiming; pause the run in hand at its next step and give its job back."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.stop()
        self._wake.set()
        held = self._run
        if held is None:
            self.say(f"{why}: stopping")
        else:
            self.say(f"{why}: pausing {held[0]} run {held[1]} at its next step, to hand it back")

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- one job -------------------------------------------------------------------
    def _engine_from_job(self, job: Any) -> Any:
        """The job's engine, over its flow detail, rebuilt by the factory the detail names;
        a flow whose task failed under a stopped conductor (suspended, not reverted)
        starts over."""
        detail = self._flow_detail_from_job(job)
        flow = engines.flow_from_detail(detail)
        return engine_for(flow.name, list(flow), detail, self._persistence)

    def _dispatch_job(self, job: Any) -> bool:
        details = job.details or {}
        kind, run_id = str(details.get("kind", "?")), str(details.get("run", "?"))
        self._run, self._resumed, self._lost = (kind, run_id), False, False
        self._why, self._retry = "", False
        self.say(f"claimed {kind} run {run_id} (job {job.sequence})")
        try:
            with self._keeping(job, run_id):
                consume = bool(super()._dispatch_job(job))
        finally:
            self._run = None
        if not consume and not self._why:
            self._why = "stopped before the run began" if self.stopping else "its flow stopped"
        return consume

    def _try_finish_job(self, job: Any, consume: bool, trash: bool = False) -> None:
        super()._try_finish_job(job, consume, trash)
        details = job.details or {}
        what = f"{details.get('kind', '?')} run {details.get('run', '?')}"
        if consume:
            self.say(f"finished {what}: {self._why or 'done'}; job consumed")
        elif trash:
            self.say(f"trashed {what}: {self._why or 'its job could not be run'}")
        elif self._retry and not self.stopping:
            self.say(f"abandoned {what}: {self._why}; claimed again in {self.retry_delay:g}s")
            self._stopping.wait(self.retry_delay)
        else:
            self.handed_back += 1
            self.say(f"abandoned {what}: {self._why}; another conductor resumes it")

    def drive(self, kind: str, run_id: str) -> dict[str, Any]:
        """The job's task: resume the run unless it is to be left alone (jobflow.Worker)."""
        try:
            run = self.journal.run(run_id)
            handed = jobflow.handover(self.journal, run_id)
            why = jobflow.leave_alone(run, handed)
            if why:
                self._why = why
                return {"state": run.state.value, "resumed": False}
            if self.stopping:
                raise jobflow.HandBack("stopped before the run began")
            was = f"handed over: {handed}" if handed else f"{run.state.value} in the journal"
            self.say(f"resuming {kind} run {run_id} ({was})")
            done = jobflow.resume(self.journal, kind, run_id, self.observer, lock_url=self.lock_url)
        except jobflow.HandBack as exc:
            self._why = str(exc)
            raise
        except LockHeld as exc:
            self._why, self._retry = str(exc), True
            raise jobflow.HandBack(self._why) from exc
        except Exception as exc:
            LOG.debug("resuming %s run %s failed", kind, run_id, exc_info=True)
            self._why, self._retry = f"cannot resume it: {exc}", True
            raise jobflow.HandBack(self._why) from exc
        with self._control:
            self._resumed = True
        stopped = done.state is RunState.PAUSED and not done.meta.get("reason")
        if stopped and (self.stopping or self._lost):
            why = "stopped" if self.stopping else "lost its claim"
            jobflow.hand_over(self.journal, run_id, f"conductor {self.name} {why}")
            self._why = f"{why}; the run paused at a step boundary"
            raise jobflow.HandBack(self._why)
        reason = done.meta.get("reason")
        self._why = f"run {done.state.value}" + (f" ({reason})" if reason else "")
        return {"state": done.state.value, "resumed": True, "conductor": self.name}

    # -- the claim -----------------------------------------------------------------
    @contextlib.contextmanager
    def _keeping(self, job: Any, run_id: str) -> Iterator[None]:
        """Extend the claim of ``job`` every ttl/3 while inside; when stopping, ask the
        run to pause until it has."""
        done = threading.Event()
        # EtcdJob caches the lease of its first claim: a job claimed again by this process
        # (after a retry) has a new lease, read from its owner key.
        job._lease = None
        period = self.board.ttl / 3

        def keep() -> None:
            while not done.is_set():
                self._wake.wait(STOP_INTERVAL if self.stopping or self._lost else period)
                self._wake.clear()
                if done.is_set():
                    return
                if not self._lost and not self._extend(job):
                    self._lost = True
                    self.say(f"lost the claim of run {run_id}: pausing it")
                if self.stopping or self._lost:
                    self._ask_pause(run_id)

        keeper = threading.Thread(target=keep, name="ephyra-claim-keeper", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            done.set()
            self._wake.set()
            keeper.join()
            self._wake.clear()

    def _extend(self, job: Any) -> bool:
        try:
            owner = self.board.jobboard.find_owner(job)
            return owner == self.name and bool(job.extend_expiry(self.board.ttl))
        except Exception as exc:
            LOG.warning("extending the claim of job %s failed: %s", job, exc)
            return False

    def _ask_pause(self, run_id: str) -> None:
        with self._control:
            if self._resumed:
                return
            try:
                run = self.journal.run(run_id)
                if run.state in ACTIVE and self.journal.pending_request(run_id) is None:
                    self.journal.request(run_id, Request.PAUSE.value)
            except EphyraError as exc:
                LOG.warning("asking run %s to pause failed: %s", run_id, exc)
