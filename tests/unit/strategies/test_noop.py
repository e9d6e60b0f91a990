"""The noop strategy."""

from __future__ import annotations

import pytest

from ephyra.errors import UsageError
from ephyra.strategies.base import Target, build


def test_the_noop_strategy_remembers_what_it_was_asked() -> None:
    noop = build({"type": "noop", "start": "1.0"})
    target = Target("h1", "2.0", kind="host")
    assert noop.version(target) == "1.0"
    change = noop.upgrade(target, print)
    assert (change.before, change.after, noop.version(target)) == ("1.0", "2.0", "2.0")
    with pytest.raises(UsageError, match="noop"):
        build({"type": "noop", "bogus": 1})
