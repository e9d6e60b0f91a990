"""What an evacuation records: its metadata beside the engine's keys, its hosts' outcomes
and the table of which may follow which, and its own part of its status.

Imported by the kind's module when the command line is built: only the standard library
and the engine's light modules here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ephyra.engine.kinds import counts
from ephyra.engine.outcomes import Outcomes


@dataclass(frozen=True)
class EvacuationMeta:
    """What an evacuation records of itself, beside the engine's keys: its cloud, its hosts,
    the hosts planned to be down as well, its settings
    (:class:`ephyra.compute.budget.Settings`, as kept) and its batches. A maintenance
    record (listed with the evacuations) has only a cloud and hosts."""

    cloud: str
    hosts: tuple[str, ...]
    also_down: tuple[str, ...] = ()
    settings: dict[str, Any] | None = None
    #: The hosts drained together, batch after batch (none kept: all at once).
    batches: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> EvacuationMeta:
        settings = meta.get("settings")
        return cls(
            cloud=str(meta.get("cloud") or ""),
            hosts=tuple(meta.get("hosts") or ()),
            also_down=tuple(meta.get("also_down") or ()),
            settings=None if settings is None else dict(settings),
            batches=tuple(tuple(b) for b in meta.get("batches") or ()),
        )

    def to_meta(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "hosts": list(self.hosts),
            "also_down": list(self.also_down),
            "settings": dict(self.settings or {}),
            "batches": [list(b) for b in self.batches],
        }

    def in_batches(self) -> list[list[str]]:
        """The hosts, batch after batch (a run kept before batches: one batch)."""
        return [list(b) for b in self.batches] or [list(self.hosts)]


@dataclass(frozen=True)
class ReallocationMeta(EvacuationMeta):
    """A reallocation's metadata: an evacuation's (its ``cloud`` is the one the hosts
    leave), the cloud they join and the hand-over that moves them."""

    to: str = ""
    handover: str = ""
    register_timeout: float = 600.0

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> ReallocationMeta:
        base = EvacuationMeta.from_meta(meta)
        return cls(
            base.cloud,
            base.hosts,
            base.also_down,
            base.settings,
            base.batches,
            to=str(meta.get("to") or ""),
            handover=str(meta.get("handover") or ""),
            register_timeout=float(meta.get("register_timeout") or 600.0),
        )

    def to_meta(self) -> dict[str, Any]:
        return {
            **super().to_meta(),
            "to": self.to,
            "handover": self.handover,
            "register_timeout": self.register_timeout,
        }


class Outcome(StrEnum):
    """A host's outcome in a phase (its record's ``forward`` and ``rollback``)."""

    PENDING = "pending"  # not begun (nothing recorded)
    RUNNING = "running"
    DRAINED = "drained"  # forward
    RESTORED = "restored"  # rollback
    HANDED_OVER = "handed-over"  # a reallocation's forward: the host is the other cloud's
    HANDED_BACK = "handed-back"  # a reallocation's rollback: the host is its first cloud's
    HALTED = "halted"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


_O = Outcome
#: (old, new): why a host's outcome in a phase may change so.
TRANSITIONS: dict[tuple[Outcome, Outcome], str] = {
    (_O.PENDING, _O.RUNNING): "its flow begins",
    (_O.RUNNING, _O.RUNNING): "its process died: a resume runs its flow again",
    (_O.RUNNING, _O.DRAINED): "forward: every server it had to lose is gone from it",
    (_O.RUNNING, _O.RESTORED): "rollback: maintenance off, stopped servers started again",
    (_O.RUNNING, _O.HANDED_OVER): "reallocation: the host serves the cloud it was given to",
    (_O.RUNNING, _O.HANDED_BACK): "reallocation's rollback: the host serves its first cloud",
    (_O.RUNNING, _O.HALTED): "the drain stopped: a server could not be moved as asked",
    (_O.RUNNING, _O.FAILED): "a step failed",
    (_O.RUNNING, _O.INTERRUPTED): "a stop (pause, abort, Ctrl-C) reached it",
    (_O.INTERRUPTED, _O.RUNNING): "a resume or rollback goes on with it",
    (_O.HALTED, _O.RUNNING): "a resume drains it again",
    (_O.FAILED, _O.RUNNING): "a resume tries it again",
}
OUTCOMES = Outcomes("host", Outcome.PENDING, TRANSITIONS)


@dataclass(frozen=True)
class HostStatus:
    host: str
    forward: Outcome
    rollback: Outcome | None  # None: not taken back (yet)
    drain_seconds: float | None
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "forward": self.forward.value,
            "rollback": self.rollback.value if self.rollback else "",
            "drain_seconds": self.drain_seconds,
            "error": self.error,
        }


@dataclass(frozen=True)
class ServerStatus:
    id: str
    name: str | None
    project: str | None
    source: str  # the host it was on
    how: str
    outcome: str
    to: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "project": self.project,
            "from": self.source,
            "how": self.how,
            "outcome": self.outcome,
            "to": self.to,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class EvacuationDetail:
    """An evacuation's own part of its status: its cloud, each host and each server."""

    cloud: str
    hosts: tuple[HostStatus, ...]
    servers: tuple[ServerStatus, ...]

    def where(self) -> dict[str, Any]:
        return {"cloud": self.cloud}

    def lists(self) -> dict[str, Any]:
        servers = [server.to_dict() for server in self.servers]
        return {
            "counts": counts(servers, "outcome"),
            "hosts": [host.to_dict() for host in self.hosts],
            "servers": servers,
        }
