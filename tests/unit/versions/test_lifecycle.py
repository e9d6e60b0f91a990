"""The lifecycle table of a host's service states."""

from __future__ import annotations

from ephyra.versions.keys import SERVICE_STATES
from ephyra.versions.lifecycle import MOVES


def test_the_lifecycle_table_starts_with_configuration_and_validates_only_a_success() -> None:
    assert {new for old, new in MOVES if old is None} == {
        "configured/success",
        "configured/failure",
    }
    assert ("configured/failure", "validated/success") not in MOVES
    assert all((old, "configured/success") in MOVES for old in SERVICE_STATES)
