"""Conductors: TaskFlow's BlockingConductor over a board, driving the runs posted on it.

A conductor claims one job at a time (a claim is an etcd lease of the board's ``ttl``)
and runs its flow, whose task resumes the run from the journal under the run's locks
(:mod:`ephyra.engine.jobflow`). While the run goes, a keeper thread extends the claim
every ttl/3, so a run longer than the ttl stays with its conductor; if the conductor
dies, the lease runs out and another conductor claims the job and resumes the run where
the journal says it is.

A conductor that loses its claim (its lease ran out or was revoked, its owner key gone
or another's) stops driving the run before another conductor can take it: the run's
driver asks the conductor before each step whether the claim is still its own (and
checks the run's locks), and the keeper, which finds the loss within ttl/3 between
steps, has the driver stop the step in flight and end the commands it runs (SIGTERM,
then SIGKILL after :data:`ephyra.engine.commands.END_GRACE`). The run pauses and is
handed over; the job goes back to the board.

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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, Counter, Gauge, write_to_textfile
from prometheus_client import start_http_server as serve_metrics
from prometheus_client.metrics_core import Metric
from taskflow import engines
from taskflow.conductors.backends.impl_blocking import BlockingConductor

from ephyra.engine import jobflow
from ephyra.engine.board import Board
from ephyra.engine.control import Request
from ephyra.engine.driver import RunDriver
from ephyra.engine.flows import engine_for
from ephyra.engine.journal import Journal
from ephyra.engine.metrics import NO_EXPORTS, Exports
from ephyra.engine.states import ACTIVE, RunState
from ephyra.errors import BoardError, EphyraError, LockHeld, UsageError
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


#: What becomes of the jobs a conductor claims, as its metrics count them.
JOB_EVENTS = ("claimed", "consumed", "abandoned", "handed_back", "claim_lost")


class ConductorMetrics:
    """A conductor's metrics, in a registry of its own: its jobs, and the metrics of the
    run it drives (of the last one once it has ended, until the next claim)."""

    def __init__(self, name: str) -> None:
        self.registry = CollectorRegistry()
        self.textfile: Path | None = None
        self._run: CollectorRegistry | None = None
        self._labels = {"conductor": name}
        self.jobs = Counter(
            "ephyra_conductor_jobs",
            "Jobs of the board by what this conductor did: claimed, consumed (the run "
            "ended or is left alone), abandoned (back on the board, tried again), "
            "handed_back (the conductor stopped), claim_lost.",
            ["conductor", "event"],
            registry=self.registry,
        )
        self.driving = Gauge(
            "ephyra_conductor_driving",
            "1 while the conductor drives a run, else 0.",
            ["conductor"],
            registry=self.registry,
        )
        for event in JOB_EVENTS:
            self.jobs.labels(event=event, **self._labels)
        self.driving.labels(**self._labels).set(0)
        self.registry.register(self)  # collect(): the run's metrics

    def collect(self) -> Iterable[Metric]:
        run = self._run
        return run.collect() if run is not None else ()

    def event(self, event: str) -> None:
        self.jobs.labels(event=event, **self._labels).inc()
        self.flush()

    def run(self, registry: CollectorRegistry | None) -> None:
        """The run in hand (its metrics' registry), or None when it has stopped."""
        if registry is not None:
            self._run = registry
        self.driving.labels(**self._labels).set(0 if registry is None else 1)
        self.flush()

    def flush(self) -> None:
        if self.textfile is not None:
            write_to_textfile(str(self.textfile), self.registry)

    def export(self, exports: Exports) -> None:
        """Serve on 127.0.0.1:port, and/or write to a file on each change (and every ttl/3
        while a run goes)."""
        self.textfile = exports.textfile
        if exports.port is not None:
            try:
                serve_metrics(exports.port, addr="127.0.0.1", registry=self.registry)
            except OSError as exc:
                where = f"127.0.0.1:{exports.port}"
                raise UsageError(f"cannot serve metrics on {where}: {exc}") from exc
        self.flush()


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
        exports: Exports = NO_EXPORTS,
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
        self._job: Any = None  # the job in hand
        self._driver: RunDriver | None = None  # the driver of its run, while it goes
        self._resumed = False  # the run's resume has returned (no more pause requests)
        self._lost = ""  # why the run in hand is no longer this conductor's ('' while it is)
        self._control = threading.Lock()  # orders pause requests and the hand-over mark
        self._why = ""
        self._retry = False
        self.exports = exports
        self.metrics = ConductorMetrics(name)

    # -- what an operator reads ----------------------------------------------------
    def say(self, text: str) -> None:
        with self._print:
            stamp = time.strftime("%H:%M:%S")
            print(f"{stamp} conductor {self.name}: {text}", file=self._out, flush=True)

    # -- the loop ------------------------------------------------------------------
    def serve(self) -> None:
        """Claim and drive jobs until stopped."""
        self.metrics.export(self.exports)
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
        self._run, self._job, self._resumed, self._lost = (kind, run_id), job, False, ""
        self._why, self._retry = "", False
        self.say(f"claimed {kind} run {run_id} (job {job.sequence})")
        self.metrics.event("claimed")
        try:
            with self._keeping(job, run_id):
                consume = bool(super()._dispatch_job(job))
        finally:
            self._run, self._job = None, None
        if not consume and not self._why:
            self._why = "stopped before the run began" if self.stopping else "its flow stopped"
        return consume

    def _try_finish_job(self, job: Any, consume: bool, trash: bool = False) -> None:
        super()._try_finish_job(job, consume, trash)
        details = job.details or {}
        what = f"{details.get('kind', '?')} run {details.get('run', '?')}"
        if consume:
            self.metrics.event("consumed")
            self.say(f"finished {what}: {self._why or 'done'}; job consumed")
        elif trash:
            self.metrics.event("abandoned")
            self.say(f"trashed {what}: {self._why or 'its job could not be run'}")
        elif (self._retry or self._lost) and not self.stopping:
            self.metrics.event("abandoned")
            self.say(f"abandoned {what}: {self._why}; claimed again in {self.retry_delay:g}s")
            self._stopping.wait(self.retry_delay)
        else:
            self.handed_back += 1
            self.metrics.event("handed_back")
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
            done = jobflow.resume(
                self.journal, kind, run_id, self.observer, lock_url=self.lock_url, keeper=self
            )
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
        if stopped and self._lost:
            jobflow.hand_over(self.journal, run_id, f"conductor {self.name}: {self._lost}")
            self._why = f"{self._lost}; the run's step stopped"
            raise jobflow.HandBack(self._why)
        if stopped and self.stopping:
            jobflow.hand_over(self.journal, run_id, f"conductor {self.name} stopped")
            self._why = "stopped; the run paused at a step boundary"
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
                if not self._lost:
                    why = self._extend(job)
                    if why:
                        self._lose(why)
                    self.metrics.flush()
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

    def _extend(self, job: Any) -> str:
        """Extend the claim of ``job``; '' if done, else why it is not this conductor's."""
        why = self._owned(job)
        if why:
            return why
        try:
            if job.extend_expiry(self.board.ttl):
                return ""
            return "lost the claim of its job: its lease ran out"
        except Exception as exc:
            LOG.warning("extending the claim of job %s failed: %s", job, exc)
            return f"cannot extend the claim of its job: {exc}"

    def _owned(self, job: Any) -> str:
        """'' if this conductor owns ``job`` on the board, else why not."""
        try:
            owner = self.board.jobboard.find_owner(job)
        except Exception as exc:
            return f"cannot read the claim of its job: {exc}"
        if owner != self.name:
            now = f"claimed by {owner}" if owner else "unclaimed"
            return f"lost the claim of its job (now {now})"
        return ""

    def _lose(self, why: str) -> None:
        """The run in hand is no longer this conductor's: stop its step and commands."""
        with self._control:
            if self._lost:
                return
            self._lost = why
            driver = self._driver
        held = self._run
        self.metrics.event("claim_lost")
        what = f"{held[0]} run {held[1]}" if held else "its run"
        self.say(f"{why}: stopping {what} and its commands")
        if driver is not None:
            driver.lose(why)

    # -- what keeps the run this conductor's (engine.driver.Keeper) ---------------
    def still_ours(self) -> str:
        """Asked by the run's driver before each step."""
        if not self._lost and self._job is not None:
            why = self._owned(self._job)
            if why:
                self._lose(why)
        return self._lost

    def driving(self, driver: RunDriver | None) -> None:
        with self._control:
            before, self._driver = self._driver, driver
        if driver is not None:
            self.metrics.run(driver.metrics.registry)
        else:
            self.metrics.run(None)
            if before is not None and before.lost and not self._lost:
                self._lose(before.lost)  # a lock lost: handed over too

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
