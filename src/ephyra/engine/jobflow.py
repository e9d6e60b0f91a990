"""What a run's job on the board runs: a one-task TaskFlow flow that drives the run with
:class:`ephyra.engine.service.RunService`, whatever its kind.

:func:`run_flow` is the flow factory a job's flow detail names (TaskFlow's
``flow_from_detail`` convention). Its task hands the run to the conductor serving jobs in
this process (:func:`serving`), which decides whether to resume it and what becomes of the
job; a task that raises :class:`~ephyra.errors.HandBack` leaves the job on the board for
another try (the conductor counts it among the failures after which TaskFlow abandons, not
consumes, a job).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

from taskflow import task
from taskflow.patterns import linear_flow

from ephyra.engine.driver import Keeper
from ephyra.engine.journal import CONTROL, Journal, RunInfo
from ephyra.engine.metrics import NO_EXPORTS, Exports
from ephyra.engine.service import rollback_asked
from ephyra.engine.states import ACTIVE, UNFINISHED, RunState
from ephyra.errors import EphyraError
from ephyra.errors import HandBack as HandBack  # conductors raise jobflow.HandBack
from ephyra.progress import Observer


def resume(
    journal: Journal,
    kind: str,
    run_id: str,
    observer: Observer,
    *,
    lock_url: str | None = None,
    exports: Exports = NO_EXPORTS,
    keeper: Keeper | None = None,
) -> RunInfo:
    """Go on with a run of any registered kind (``keeper``: the claim on its job)."""
    from ephyra.engine.kinds import get
    from ephyra.engine.service import RunService

    service = RunService(get(kind), journal, lock_url)
    return service.resume(run_id, observer, exports=exports, keeper=keeper)


#: The key of a run's control record that says a conductor is to resume it though it is
#: not running: written by a conductor that stopped (SIGTERM) after pausing the run, and
#: by ``resume --board``; cleared by the run's next resume.
HANDOVER = "handover"


def hand_over(journal: Journal, run_id: str, why: str) -> None:
    """Mark the run as to be resumed by the next conductor that claims its job."""
    journal.save_record(run_id, CONTROL, {HANDOVER: why})


def handover(journal: Journal, run_id: str) -> str | None:
    """Why the run was handed over to the board, if it was."""
    why = journal.record(run_id, CONTROL).get(HANDOVER)
    return str(why) if why else None


def leave_alone(run: RunInfo, handover: str | None) -> str:
    """Why a conductor leaves ``run`` as it is and consumes its job ('' to resume it).

    A running run (just queued, or its process died) is resumed; a paused or failed one
    only when it was handed over: a pause by an operator or by the run's policy stands.
    A finished run whose rollback was queued (``rollback --board``) is rolled back.
    """
    if run.state in ACTIVE:
        return ""
    if handover and (run.state in UNFINISHED or rollback_asked(run)):
        return ""
    if run.state is RunState.PAUSED:
        reason = run.meta.get("reason") or "by request"
        return f"run {run.state.value} ({reason}): not resumed (resume --board queues it again)"
    if run.state is RunState.FAILED:
        return "run failed: not resumed (resume --board queues it again)"
    return f"run {run.state.value}: nothing to resume"


class Worker(Protocol):
    def drive(self, kind: str, run_id: str) -> dict[str, Any]: ...


_worker: Worker | None = None


@contextlib.contextmanager
def serving(worker: Worker) -> Iterator[None]:
    """While inside, the jobs' tasks of this process hand their runs to ``worker``."""
    global _worker
    _worker = worker
    try:
        yield
    finally:
        _worker = None


class DriveRun(task.Task):  # type: ignore[misc]
    """Drive one run of the journal to its end, or to a stop."""

    def __init__(self, kind: str, run_id: str) -> None:
        super().__init__(name=f"drive {kind} run")
        self.kind = kind
        self.run_id = run_id

    def execute(self) -> dict[str, Any]:
        if _worker is None:
            raise EphyraError(
                f"the job of {self.kind} run {self.run_id} runs only in `ephyra conductor`"
            )
        return _worker.drive(self.kind, self.run_id)


def run_flow(kind: str, run_id: str) -> Any:
    """The flow of a run's job (the factory its flow detail names)."""
    return linear_flow.Flow(f"{kind} {run_id}").add(DriveRun(kind, run_id))
