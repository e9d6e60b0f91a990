"""What a forklift run records: its metadata beside the engine's keys, its nodes' outcomes
and the table of which may follow which, and its own part of its status.

Imported by the kind's module when the command line is built: only the standard library
and the engine's light modules here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from ephyra.engine.kinds import counts
from ephyra.engine.outcomes import Outcomes


@dataclass(frozen=True)
class ForkliftMeta:
    """What a forklift run records of itself, beside the engine's keys: the two control
    planes, its settings (:class:`ephyra.forklift.settings.Settings`, as kept), the nodes
    in the order they move, and the order they go back in (decided at the first rollback)."""

    source: str
    target: str
    settings: dict[str, Any]
    order: tuple[str, ...]
    rollback_order: tuple[str, ...] | None = None

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> ForkliftMeta:
        back = meta.get("rollback_order")
        return cls(
            source=str(meta["from"]),
            target=str(meta["to"]),
            settings=dict(meta.get("settings") or {}),
            order=tuple(meta.get("order") or ()),
            rollback_order=None if back is None else tuple(back),
        )

    def to_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "from": self.source,
            "to": self.target,
            "settings": dict(self.settings),
            "order": list(self.order),
        }
        if self.rollback_order is not None:
            meta["rollback_order"] = list(self.rollback_order)
        return meta

    def going_back(self, order: list[str]) -> ForkliftMeta:
        return replace(self, rollback_order=tuple(order))


class Outcome(StrEnum):
    """A node's outcome in a phase (its record's ``forward`` and ``rollback``)."""

    PENDING = "pending"  # not begun (nothing recorded)
    MOVING = "moving"
    MOVED = "moved"
    FAILED = "failed"
    DEFERRED = "deferred"
    INTERRUPTED = "interrupted"
    RETURNED = "returned"  # forward only: an abort took it back where it came from


_O = Outcome
#: (old, new): why a node's outcome in a phase may change so.
TRANSITIONS: dict[tuple[Outcome, Outcome], str] = {
    (_O.PENDING, _O.MOVING): "its move begins",
    (_O.MOVING, _O.MOVING): "its process died mid-move: a resume moves it again",
    (_O.MOVING, _O.MOVED): "its move ended with the node in service on the other side",
    (_O.MOVING, _O.FAILED): "a step failed; the node's flow reverted what it could",
    (_O.MOVING, _O.DEFERRED): "the workload asked to wait: the node is tried again later",
    (_O.MOVING, _O.INTERRUPTED): "a stop (pause, abort, Ctrl-C) reached it between two steps",
    (_O.MOVING, _O.RETURNED): "abort: caught mid-move by a process that died, taken back",
    (_O.INTERRUPTED, _O.MOVING): "resume or rollback goes on with it",
    (_O.INTERRUPTED, _O.RETURNED): "abort: caught mid-move, taken back",
    (_O.FAILED, _O.MOVING): "a resume (or a resumed rollback) tries it again",
    (_O.DEFERRED, _O.MOVING): "tried again after the others of its batch",
    (_O.DEFERRED, _O.FAILED): "deferred more than --max-deferrals times",
}
OUTCOMES = Outcomes("node", Outcome.PENDING, TRANSITIONS)


@dataclass(frozen=True)
class NodeStatus:
    uuid: str
    name: str | None
    forward: Outcome
    rollback: Outcome | None  # None: not taken back (yet)
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "forward": self.forward.value,
            "rollback": self.rollback.value if self.rollback else "",
            "error": self.error,
        }


@dataclass(frozen=True)
class ForkliftDetail:
    """A forklift run's own part of its status: the two control planes and each node."""

    source: str
    target: str
    nodes: tuple[NodeStatus, ...]

    def where(self) -> dict[str, Any]:
        return {"from": self.source, "to": self.target}

    def lists(self) -> dict[str, Any]:
        nodes = [node.to_dict() for node in self.nodes]
        return {"counts": counts(nodes), "nodes": nodes}
