"""What a tenant migration run records: its metadata, its project's outcome, and its part
of its status. Imported when the command line is built: the standard library and the
engine's light modules only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ephyra.engine.outcomes import Outcomes
from ephyra.tenants.records import Outcome, project_lists

#: Servers moved at once, and bytes of images in flight (read from A, not yet sent to B).
DEFAULT_CONCURRENCY = 2
DEFAULT_BYTES_IN_FLIGHT = 64 * 1024**2
#: The role the run's own user holds on the project while it creates its things on B.
DEFAULT_MIGRATOR_ROLE = "member"


@dataclass(frozen=True)
class MigrationMeta:
    source: str  # cloud A
    target: str  # cloud B
    project: str  # id
    project_name: str

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> MigrationMeta:
        return cls(
            source=str(meta.get("source") or ""),
            target=str(meta.get("target") or ""),
            project=str(meta.get("project") or ""),
            project_name=str(meta.get("project_name") or ""),
        )

    def to_meta(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "project": self.project,
            "project_name": self.project_name,
        }

    @property
    def keystone(self) -> str:
        """The cloud whose Keystone holds the project's freeze."""
        return self.source

    @property
    def record(self) -> str:
        return f"migration:{self.project}"


_O = Outcome
TRANSITIONS: dict[tuple[Outcome, Outcome], str] = {
    (_O.PENDING, _O.RUNNING): "its flow begins",
    (_O.RUNNING, _O.RUNNING): "its process died: a resume runs its flow again",
    (_O.RUNNING, _O.MOVED): "forward: on B, originals stopped on A, unfrozen",
    (_O.RUNNING, _O.RESTORED): "rollback: B without the run's things, A as before",
    (_O.RUNNING, _O.FAILED): "a step failed",
    (_O.RUNNING, _O.INTERRUPTED): "a stop (pause, abort, Ctrl-C) reached it",
    (_O.INTERRUPTED, _O.RUNNING): "a resume or rollback goes on with it",
    (_O.FAILED, _O.RUNNING): "a resume or rollback tries it again",
    (_O.MOVED, _O.RUNNING): "finish: A's originals deleted",
}
OUTCOMES = Outcomes("tenant", Outcome.PENDING, TRANSITIONS)


@dataclass(frozen=True)
class MigrationDetail:
    meta: MigrationMeta
    forward: str
    rollback: str
    error: str
    finished: bool
    resources: tuple[dict[str, Any], ...]

    def where(self) -> dict[str, Any]:
        return {**self.meta.to_meta(), "finished": self.finished}

    def lists(self) -> dict[str, Any]:
        meta = self.meta
        name = meta.project_name or meta.project
        return project_lists(
            name, self.forward, self.rollback, self.error, "resources", self.resources
        )
