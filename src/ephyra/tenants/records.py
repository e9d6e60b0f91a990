"""What a tenant maintenance run records: its metadata beside the engine's keys, its
project's outcome and the table of which may follow which, and its part of its status.

Imported by the kind's module when the command line is built: only the standard library
and the engine's light modules here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ephyra.engine.outcomes import Outcomes

#: The roles that write, by default, and the role their holders get instead.
DEFAULT_WRITING = ("member", "manager", "admin")
READER = "reader"


@dataclass(frozen=True)
class TenantMeta:
    """The cloud, the project (its id and name) and the roles of a freeze."""

    cloud: str
    project: str  # id
    project_name: str

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> TenantMeta:
        return cls(
            cloud=str(meta.get("cloud") or ""),
            project=str(meta.get("project") or ""),
            project_name=str(meta.get("project_name") or ""),
        )

    def to_meta(self) -> dict[str, Any]:
        return {"cloud": self.cloud, "project": self.project, "project_name": self.project_name}

    @property
    def keystone(self) -> str:
        """The cloud whose Keystone holds the project's freeze."""
        return self.cloud

    @property
    def record(self) -> str:
        """The name of the project's record in the journal."""
        return f"tenant:{self.project}"


class Outcome(StrEnum):
    """A project's outcome in a phase of a tenant run (each kind has its own table of
    which may follow which)."""

    PENDING = "pending"
    RUNNING = "running"
    FROZEN = "frozen"  # a freeze, forward
    MOVED = "moved"  # a migration, forward
    RESTORED = "restored"  # rollback
    FAILED = "failed"
    INTERRUPTED = "interrupted"


_O = Outcome
TRANSITIONS: dict[tuple[Outcome, Outcome], str] = {
    (_O.PENDING, _O.RUNNING): "its flow begins",
    (_O.RUNNING, _O.RUNNING): "its process died: a resume runs its flow again",
    (_O.RUNNING, _O.FROZEN): "forward: every writer holds the reader role instead",
    (_O.RUNNING, _O.RESTORED): "rollback: the writers given back, the freeze's grants gone",
    (_O.RUNNING, _O.FAILED): "a step failed",
    (_O.RUNNING, _O.INTERRUPTED): "a stop (pause, abort, Ctrl-C) reached it",
    (_O.INTERRUPTED, _O.RUNNING): "a resume or rollback goes on with it",
    (_O.FAILED, _O.RUNNING): "a resume or rollback tries it again",
}
OUTCOMES = Outcomes("project", Outcome.PENDING, TRANSITIONS)


@dataclass(frozen=True)
class TenantDetail:
    """A freeze's part of its status: the project, its outcomes, and each change."""

    cloud: str
    project: str
    project_name: str
    forward: str
    rollback: str
    error: str
    changes: tuple[dict[str, Any], ...]

    def where(self) -> dict[str, Any]:
        return {"cloud": self.cloud, "project": self.project, "project_name": self.project_name}

    def lists(self) -> dict[str, Any]:
        name = self.project_name or self.project
        return project_lists(name, self.forward, self.rollback, self.error, "changes", self.changes)


def project_lists(
    name: str, forward: str, rollback: str, error: str, key: str, rows: Iterable[dict[str, Any]]
) -> dict[str, Any]:
    """A tenant run's lists in its status: its rows under ``key`` (each with a ``state``)
    and their count by state, and its one project with its outcomes."""
    found = list(rows)
    return {
        "counts": dict(Counter(row["state"] for row in found)),
        "projects": [{"project": name, "forward": forward, "rollback": rollback, "error": error}],
        key: found,
    }
