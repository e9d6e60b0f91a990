"""What a settings apply records: its metadata beside the engine's keys, the names of its
changes' records, and its part of its status.

Imported by the kind's module when the command line is built: only the standard library
here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: A change's state in a phase: begun (what the cloud had is recorded), then done.
DOING = "doing"
DONE = "done"
PREFIX = "change:"


def record_name(i: int) -> str:
    """The journal record of the run's ``i``-th change."""
    return f"{PREFIX}{i:04d}"


def settings_lock(cloud: str) -> str:
    """The lock of a cloud's settings: one apply at a time changes them."""
    return f"settings {cloud}"


@dataclass(frozen=True)
class SettingsMeta:
    """The cloud an apply changes, the document's source, pruning, how many changes."""

    cloud: str
    source: str
    prune: bool
    changes: int

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> SettingsMeta:
        return cls(
            cloud=str(meta.get("cloud") or ""),
            source=str(meta.get("source") or ""),
            prune=bool(meta.get("prune")),
            changes=int(meta.get("changes") or 0),
        )

    def to_meta(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "source": self.source,
            "prune": self.prune,
            "changes": self.changes,
        }


@dataclass(frozen=True)
class SettingsDetail:
    """An apply's part of its status: the cloud, and each change with its states."""

    cloud: str
    source: str
    prune: bool
    changes: tuple[dict[str, Any], ...]

    def where(self) -> dict[str, Any]:
        return {"cloud": self.cloud, "source": self.source, "prune": self.prune}

    def lists(self) -> dict[str, Any]:
        found: dict[str, int] = {}
        for row in self.changes:
            found[row["forward"]] = found.get(row["forward"], 0) + 1
        return {"counts": found, "changes": list(self.changes)}
