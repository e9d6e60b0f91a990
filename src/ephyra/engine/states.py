"""Run states, the table of allowed transitions between them, and a run's phases."""

from __future__ import annotations

from enum import StrEnum

from ephyra.errors import IllegalTransition


class Phase(StrEnum):
    """Which way a run goes: forward, or back (rollback)."""

    FORWARD = "forward"
    ROLLBACK = "rollback"


class RunState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    FAILED = "failed"
    ABORTED = "aborted"
    SUCCEEDED = "succeeded"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"


S = RunState

# (old, new): why the transition exists.
TRANSITIONS: dict[tuple[RunState, RunState], str] = {
    (S.RUNNING, S.RUNNING): "resume of a run whose process died",
    (
        S.RUNNING,
        S.PAUSED,
    ): "pause asked, Ctrl-C, a health gate that stays red, a control plane gone",
    (S.RUNNING, S.FAILED): "more nodes failed than the run allows",
    (S.RUNNING, S.ABORTED): "abort: in-flight nodes returned, the rest left untouched",
    (S.RUNNING, S.SUCCEEDED): "every node moved",
    (S.RUNNING, S.ROLLING_BACK): "rollback of a run whose process died",
    (S.PAUSED, S.RUNNING): "resume",
    (S.PAUSED, S.ABORTED): "abort of a paused run",
    (S.PAUSED, S.ROLLING_BACK): "rollback of a paused run",
    (S.FAILED, S.RUNNING): "resume retries the failed nodes",
    (S.FAILED, S.ABORTED): "give up",
    (S.FAILED, S.ROLLING_BACK): "rollback after failure",
    (S.ABORTED, S.ROLLING_BACK): "move back what the aborted run had moved",
    (S.SUCCEEDED, S.ROLLING_BACK): "the new control plane is broken: go back",
    (S.ROLLING_BACK, S.ROLLING_BACK): "resume of an interrupted rollback",
    (S.ROLLING_BACK, S.ROLLED_BACK): "every moved node is back",
    (S.ROLLING_BACK, S.PAUSED): "rollback interrupted; resume or rollback continues it",
    (S.ROLLING_BACK, S.FAILED): "a node could not be moved back",
}

UNFINISHED = frozenset({S.RUNNING, S.PAUSED, S.FAILED, S.ROLLING_BACK})
ACTIVE = frozenset({S.RUNNING, S.ROLLING_BACK})
#: How a ``finish`` that made a run final ends (its ``run.finished`` event), beside the
#: states a run's drive ends in.
FINISHED = "finished"


def check_transition(old: RunState, new: RunState) -> None:
    if (old, new) not in TRANSITIONS:
        allowed = sorted(n.value for (o, n) in TRANSITIONS if o == old) or ["nothing"]
        raise IllegalTransition(
            f"a {old.value} run cannot become {new.value} (allowed: {', '.join(allowed)})"
        )
