"""Rollout rules: limits per role and dependencies between roles."""

from __future__ import annotations

import pytest

from ephyra.errors import UsageError
from ephyra.versions.desired import Rules


def test_rules_parse_limits_and_dependencies() -> None:
    rules = Rules.parse(["compute=3", "db=all", "*=2", "frozen=0"], ["compute=controller,db"])
    assert [rules.limit(r) for r in ("compute", "db", "other", "frozen")] == [3, None, 2, 0]
    assert rules.after == {"compute": ("controller", "db")}
    assert Rules().limit("anything") == 1  # one at a time unless told otherwise
    assert Rules.from_dict(rules.to_dict()) == rules
    with pytest.raises(UsageError, match="circle: a -> b -> c -> a"):
        Rules.parse([], ["a=b", "b=c", "c=a"])
