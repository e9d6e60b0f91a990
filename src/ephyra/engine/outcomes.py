"""Item outcomes: what a run records of each of its items (a node, a host, a unit) in each
phase, and the table of which outcome may follow which.

A kind's items keep their outcome of a phase in their journal record, under the phase's
name (``forward``, ``rollback``); an item with none yet is ``pending``. Each kind has its
own outcomes (a :class:`~enum.StrEnum`) and its own table; saving an outcome that may not
follow the one recorded is :class:`~ephyra.errors.IllegalTransition`, as for run states.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from ephyra.engine.states import Phase
from ephyra.errors import IllegalTransition

E = TypeVar("E", bound=StrEnum)


class Record(Protocol):
    """An item's record in the journal, as the kinds hold it."""

    data: dict[str, Any]

    def save(self, **changes: Any) -> None: ...


class Outcomes(Generic[E]):
    """The outcomes of one kind's items and which may follow which: ``transitions`` maps
    (old, new) to why the transition exists; ``pending`` is the outcome of an item with
    none recorded."""

    def __init__(self, what: str, pending: E, transitions: Mapping[tuple[E, E], str]) -> None:
        self.what = what
        self.pending = pending
        self.transitions = dict(transitions)
        self._type = type(pending)

    def of(self, record: Record, phase: Phase) -> E:
        """The outcome ``record`` has in ``phase``."""
        return self.parse(record.data.get(phase.value))

    def both(self, data: Mapping[str, Any]) -> tuple[E, E | None]:
        """The outcomes a record's ``data`` has going forward and rolling back (None: not
        taken back, yet), as a status shows them."""
        back = data.get(Phase.ROLLBACK.value)
        return self.parse(data.get(Phase.FORWARD.value)), self.parse(back) if back else None

    def parse(self, value: str | None) -> E:
        """The outcome a record's value stands for (none: pending)."""
        if not value:
            return self.pending
        try:
            return self._type(value)
        except (ValueError, TypeError) as exc:
            known = ", ".join(o.value for o in self._type)
            raise IllegalTransition(f"{self.what} outcome {value!r} is not one of {known}") from exc

    def check(self, old: E, new: E) -> None:
        if (old, new) not in self.transitions:
            allowed = sorted(n.value for (o, n) in self.transitions if o == old) or ["nothing"]
            raise IllegalTransition(
                f"a {old.value} {self.what} cannot become {new.value} "
                f"(allowed: {', '.join(allowed)})"
            )

    def save(self, record: Record, phase: Phase, new: E, **changes: Any) -> None:
        """Record ``new`` as the outcome of ``record`` in ``phase`` (with ``changes``),
        if it may follow the one recorded."""
        self.check(self.of(record, phase), new)
        record.save(**{phase.value: new.value}, **changes)
