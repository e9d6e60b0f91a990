"""Checks shared by the tests of each kind's item outcomes: the table in the code is the
documented one, every documented transition is allowed and every other one refused."""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Any

import pytest

from ephyra.engine.outcomes import Outcomes
from ephyra.errors import IllegalTransition


def check_documented(outcomes: Outcomes[Any], documented: dict[Any, set[Any]]) -> None:
    members = list(type(outcomes.pending))
    assert set(documented) == set(members)  # every outcome is documented, even a last one
    allowed = {(old, new) for old, news in documented.items() for new in news}
    assert set(outcomes.transitions) == allowed
    assert all(outcomes.transitions[pair] for pair in allowed)  # each says why it exists
    for old, new in itertools.product(members, repeat=2):
        if (old, new) in allowed:
            outcomes.check(old, new)
        else:
            with pytest.raises(IllegalTransition, match=f"cannot become {new.value}"):
                outcomes.check(old, new)


def check_values(enum: type[StrEnum], values: set[str]) -> None:
    """The strings a journal holds are exactly the enum's values."""
    assert {member.value for member in enum} == values
