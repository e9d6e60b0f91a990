"""The diff of a settings document against a cloud: the changes that make the cloud's
objects the document's, in the order they can be made.

Creates and updates come first, kind by kind in :data:`~ephyra.settings.document.ORDER`
(domains before their projects, projects before their users' assignments, networks
before their subnets); deletes (only when pruning) come last, in the reverse order. A
kind whose section the document lacks is not compared (the source had no such service).

Imported by the run kind's module: only the standard library and the document here.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from ephyra.settings.document import ALWAYS, KEYS, ORDER, Objects

CREATE = "create"
UPDATE = "update"
DELETE = "delete"


@dataclass(frozen=True)
class Change:
    """One change: ``after`` the object as the document has it (None: deleted);
    ``before`` as the cloud had it when planned (None: absent); ``fields`` the fields an
    update changes."""

    kind: str
    key: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: tuple[str, ...] = field(default=())

    def said(self) -> str:
        """The change in words: ``update flavor m1.small: ram 512 -> 1024``."""
        head = f"{self.action} {self.kind.replace('_', ' ')} {self.key}"
        if self.action != UPDATE or self.before is None or self.after is None:
            return head
        parts = [
            f"{f} {_short(self.before.get(f))} -> {_short(self.after.get(f))}" for f in self.fields
        ]
        return f"{head}: {'; '.join(parts)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "action": self.action,
            "before": self.before,
            "after": self.after,
            "fields": list(self.fields),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        return cls(
            str(data["kind"]),
            str(data["key"]),
            str(data["action"]),
            data.get("before"),
            data.get("after"),
            tuple(data.get("fields") or ()),
        )


def _short(value: Any) -> str:
    if value is None or value == "":
        return "''"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, sort_keys=True)
    return str(value)


def changed(before: Mapping[str, Any], after: Mapping[str, Any], kind: str) -> tuple[str, ...]:
    """The fields (not keys) whose values differ, sorted."""
    keys = set(KEYS[kind])
    return tuple(
        sorted(
            f for f in set(before) | set(after) if f not in keys and before.get(f) != after.get(f)
        )
    )


def ordered(kind: str, objects: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The keys of ``objects`` in the order they can be made: by name, and a project
    after its parent (deleted in the reverse order)."""
    if kind != "project":
        return sorted(objects)

    def depth(key: str, seen: int = 0) -> int:
        obj = objects[key]
        parent = f"{obj['domain']} {obj['parent']}" if obj.get("parent") else ""
        if not parent or parent not in objects or seen > len(objects):
            return 0
        return 1 + depth(parent, seen + 1)

    return sorted(objects, key=lambda key: (depth(key), key))


def diff(wanted: Objects, have: Objects, kinds: Set[str], prune: bool = False) -> list[Change]:
    """The changes that make ``have`` (a cloud's objects) ``wanted`` (a document's), of
    the ``kinds`` the document has."""
    forward: list[Change] = []
    deletes: list[Change] = []
    for kind in ORDER:
        if kind not in kinds:
            continue
        want, got = wanted.get(kind) or {}, have.get(kind) or {}
        for key in ordered(kind, want):
            after, before = want[key], got.get(key)
            if before is None:
                forward.append(Change(kind, key, CREATE, None, after))
                continue
            fields = changed(before, after, kind)
            if fields:
                forward.append(Change(kind, key, UPDATE, before, after, fields))
        if prune and kind not in ALWAYS:
            gone = [key for key in reversed(ordered(kind, got)) if key not in want]
            deletes.extend(Change(kind, key, DELETE, got[key], None) for key in gone)
    order = {kind: i for i, kind in enumerate(ORDER)}
    deletes.sort(key=lambda c: -order[c.kind])
    return forward + deletes
