"""Item outcomes: a record's outcome is read as an enum member, and only an outcome that may
follow the recorded one is saved."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest

from ephyra.engine.outcomes import Outcomes
from ephyra.engine.states import Phase
from ephyra.errors import IllegalTransition


class Light(StrEnum):
    OFF = "off"
    ON = "on"
    BROKEN = "broken"


TABLE = Outcomes(
    "lamp",
    Light.OFF,
    {(Light.OFF, Light.ON): "switched on", (Light.ON, Light.BROKEN): "burnt out"},
)


class FakeRecord:
    def __init__(self, **data: Any) -> None:
        self.data: dict[str, Any] = dict(data)
        self.saved: list[dict[str, Any]] = []

    def save(self, **changes: Any) -> None:
        self.data.update(changes)
        self.saved.append(dict(self.data))


def test_a_record_without_an_outcome_is_pending() -> None:
    assert TABLE.of(FakeRecord(), Phase.FORWARD) is Light.OFF
    assert TABLE.parse("") is Light.OFF
    assert TABLE.of(FakeRecord(rollback="on"), Phase.ROLLBACK) is Light.ON


def test_an_allowed_outcome_is_saved_with_its_changes_as_a_string() -> None:
    record = FakeRecord(name="desk")
    TABLE.save(record, Phase.FORWARD, Light.ON, error=None)
    assert record.saved == [{"name": "desk", "forward": "on", "error": None}]
    assert type(record.data["forward"]) is str  # the journal's JSON holds plain strings


def test_an_illegal_outcome_is_refused_and_nothing_saved() -> None:
    record = FakeRecord(forward="on")
    with pytest.raises(IllegalTransition, match=r"a on lamp cannot become off \(allowed: broken\)"):
        TABLE.save(record, Phase.FORWARD, Light.OFF)
    assert record.saved == []
    assert record.data == {"forward": "on"}


def test_a_last_outcome_allows_nothing() -> None:
    with pytest.raises(IllegalTransition, match=r"\(allowed: nothing\)"):
        TABLE.check(Light.BROKEN, Light.ON)


def test_a_recorded_value_that_is_no_outcome_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="lamp outcome 'dim' is not one of off, on, broken"):
        TABLE.of(FakeRecord(forward="dim"), Phase.FORWARD)


def test_phases_are_recorded_apart() -> None:
    record = FakeRecord(forward="broken")
    TABLE.save(record, Phase.ROLLBACK, Light.ON)
    assert record.data == {"forward": "broken", "rollback": "on"}
