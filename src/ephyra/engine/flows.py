"""TaskFlow engines over a run's journal, ready to go on from where they stopped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskflow import states as tf_states
from taskflow.engines.action_engine.engine import SerialActionEngine
from taskflow.exceptions import WrappedFailure
from taskflow.patterns import linear_flow
from taskflow.types.failure import Failure


def engine_for(name: str, tasks: Sequence[Any], detail: Any, backend: Any) -> Any:
    """A serial engine running ``tasks`` in order over the flow detail ``detail``.

    A flow that stopped on a failure (a pause inside a wait, a crash while reverting)
    starts over: every step checks the world first, so it redoes only what is missing.
    """
    flow = linear_flow.Flow(name).add(*tasks)
    engine = SerialActionEngine(flow, detail, backend, {})
    engine.compile()
    engine.prepare()  # resets a reverted flow
    states = engine.storage.get_atoms_states([task.name for task in tasks])
    if any(state in (tf_states.FAILURE, tf_states.REVERT_FAILURE) for state, _ in states.values()):
        for atom in states:  # a pending atom keeps its intention to revert unless told
            engine.storage.reset(atom)
            engine.storage.set_atom_intention(atom, tf_states.EXECUTE)
    return engine


def succeeded(engine: Any) -> bool:
    return bool(engine.storage.get_flow_state() == tf_states.SUCCESS)


def first_failure(exc: Exception) -> Failure:
    """The first failure an engine's run raised (TaskFlow wraps several into one)."""
    failures = list(exc) if isinstance(exc, WrappedFailure) else [Failure.from_exception(exc)]
    return failures[0]
