import pytest

from ephyra.engine.states import TRANSITIONS, RunState, check_transition
from ephyra.errors import IllegalTransition


@pytest.mark.parametrize(("old", "new"), sorted(TRANSITIONS))
def test_every_listed_transition_is_allowed(old: RunState, new: RunState) -> None:
    check_transition(old, new)


def test_a_rolled_back_run_goes_nowhere() -> None:
    for new in RunState:
        with pytest.raises(IllegalTransition, match="rolled-back run cannot become"):
            check_transition(RunState.ROLLED_BACK, new)


def test_a_succeeded_run_cannot_resume() -> None:
    with pytest.raises(IllegalTransition, match=r"allowed: rolling-back"):
        check_transition(RunState.SUCCEEDED, RunState.RUNNING)


def test_every_state_but_the_last_can_be_left() -> None:
    leavable = {old for old, _ in TRANSITIONS}
    assert leavable == set(RunState) - {RunState.ROLLED_BACK}
