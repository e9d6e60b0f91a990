"""The run states' transition table, written out here as docs/forklift.md ("Run states")
documents it: every pair of states is either allowed or refused, and the table in the code is
exactly this one."""

from __future__ import annotations

import itertools

import pytest

from ephyra.engine.states import ACTIVE, TRANSITIONS, UNFINISHED, RunState, check_transition
from ephyra.errors import IllegalTransition

R = RunState

#: What each state may become, as documented; anything else is refused.
DOCUMENTED: dict[RunState, set[RunState]] = {
    # and, if its process died: running again on resume, rolling-back on rollback
    R.RUNNING: {R.SUCCEEDED, R.FAILED, R.PAUSED, R.ABORTED, R.RUNNING, R.ROLLING_BACK},
    R.PAUSED: {R.RUNNING, R.ABORTED, R.ROLLING_BACK},
    R.FAILED: {R.RUNNING, R.ABORTED, R.ROLLING_BACK},
    R.ABORTED: {R.ROLLING_BACK},
    R.SUCCEEDED: {R.ROLLING_BACK},
    # and rolling-back again: the resume of an interrupted rollback
    R.ROLLING_BACK: {R.ROLLED_BACK, R.PAUSED, R.FAILED, R.ROLLING_BACK},
    R.ROLLED_BACK: set(),
}

ALLOWED = sorted((old, new) for old, news in DOCUMENTED.items() for new in news)
REFUSED = sorted(
    (old, new) for old, new in itertools.product(RunState, repeat=2) if new not in DOCUMENTED[old]
)


def test_the_table_is_the_documented_one() -> None:
    assert set(TRANSITIONS) == set(ALLOWED)
    assert len(ALLOWED) + len(REFUSED) == len(RunState) ** 2
    assert all(TRANSITIONS[pair] for pair in ALLOWED)  # each says why it exists


@pytest.mark.parametrize(("old", "new"), ALLOWED)
def test_a_documented_transition_is_allowed(old: RunState, new: RunState) -> None:
    check_transition(old, new)


@pytest.mark.parametrize(("old", "new"), REFUSED)
def test_any_other_transition_is_refused_with_the_allowed_ones(
    old: RunState, new: RunState
) -> None:
    allowed = ", ".join(sorted(n.value for n in DOCUMENTED[old])) or "nothing"
    with pytest.raises(IllegalTransition) as refused:
        check_transition(old, new)
    assert str(refused.value) == (
        f"a {old.value} run cannot become {new.value} (allowed: {allowed})"
    )


def test_a_rolled_back_run_goes_nowhere() -> None:
    for new in RunState:
        with pytest.raises(
            IllegalTransition, match=r"rolled-back run cannot .* \(allowed: nothing\)"
        ):
            check_transition(RunState.ROLLED_BACK, new)


def test_a_succeeded_run_cannot_resume() -> None:
    with pytest.raises(IllegalTransition, match=r"\(allowed: rolling-back\)$"):
        check_transition(RunState.SUCCEEDED, RunState.RUNNING)


def test_unfinished_and_active_states() -> None:
    assert {R.RUNNING, R.PAUSED, R.FAILED, R.ROLLING_BACK} == UNFINISHED
    assert {R.RUNNING, R.ROLLING_BACK} == ACTIVE
    assert ACTIVE <= UNFINISHED
    # a finished run can only be rolled back, or nothing at all
    for old in set(RunState) - UNFINISHED:
        assert DOCUMENTED[old] <= {R.ROLLING_BACK}
