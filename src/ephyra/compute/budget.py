"""An evacuation's settings, and the budget that decides which server may move now.

The budget is the one place the limits are enforced: migrations at once in total and
per source host, and the disruption budgets, at most K servers of one project or of
one server group moving at once. Every migration, live or cold or evacuation, takes a
slot before its API call and gives it back once Nova reports it finished.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ephyra.compute.fate import Fate
from ephyra.errors import UsageError

if TYPE_CHECKING:  # openstacksdk: not for `ephyra host --help`, which shows Fallback, OnTimeout
    from ephyra.compute.nova import Server


class Fallback(StrEnum):
    """What to do with a server that cannot be live-migrated."""

    COLD = "cold"  # cold-migrate it and confirm
    STOP = "stop"  # stop it where it is (started again by rollback)
    SKIP = "skip"  # leave it and report it


class OnTimeout(StrEnum):
    """First answer to a live migration that outlives --migration-timeout."""

    ABORT = "abort"
    FORCE_COMPLETE = "force-complete"


@dataclass(frozen=True)
class Settings:
    concurrency: int = 4
    per_host: int = 2
    max_per_project: int | None = None
    max_per_group: int | None = 1
    fallback: Fallback = Fallback.COLD
    on_timeout: OnTimeout = OnTimeout.ABORT
    migration_timeout: float = 600.0
    target: str | None = None
    poll: float = 0.25
    #: The operator's default fate of a server (each may ask its own: ephyra.compute.fate).
    fate: Fate = Fate.LIVE
    #: False: no server stays on the host (a host handed over): stop and notify become cold.
    keep: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.per_host < 1:
            raise UsageError("--concurrency and --per-host must be at least 1")
        for name in ("max_per_project", "max_per_group"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1 (or unset)")
        if self.migration_timeout <= 0 or self.poll <= 0:
            raise UsageError("--migration-timeout must be positive")

    def to_meta(self) -> dict[str, Any]:
        return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Settings:
        data = dict(meta)
        data["fallback"] = Fallback(data["fallback"])
        data["on_timeout"] = OnTimeout(data["on_timeout"])
        data["fate"] = Fate(data.get("fate", Fate.LIVE))  # a run saved before fates: live
        return cls(**data)

    def describe(self) -> str:
        def limit(value: int | None) -> str:
            return "no limit" if value is None else str(value)

        return (
            f"{self.concurrency} at once, {self.per_host} per source host, "
            f"{limit(self.max_per_project)} per project, {limit(self.max_per_group)} per "
            f"server group; {self.fate.value} by default, fallback {self.fallback.value}; after "
            f"{self.migration_timeout:.0f}s {self.on_timeout.value}"
        )


class Budget:
    """Slots for migrations under way; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._moving: dict[str, tuple[str, Server]] = {}  # server id -> (source, server)
        self._stuck: set[str] = set()  # slots held by moves that will not end by themselves
        self.peak: Counter[str] = Counter()  # highest count seen per limit key

    def _counts(self) -> tuple[Counter[str], Counter[str], Counter[str]]:
        hosts: Counter[str] = Counter()
        projects: Counter[str] = Counter()
        groups: Counter[str] = Counter()
        for source, server in self._moving.values():
            hosts[source] += 1
            projects[server.project] += 1
            groups.update(server.groups)
        return hosts, projects, groups

    def blocker(self, source: str, server: Server) -> str | None:
        """Which limit keeps ``server`` from moving now, or None."""
        with self._lock:
            return self._blocker(source, server)

    def _blocker(self, source: str, server: Server) -> str | None:
        s = self.settings
        hosts, projects, groups = self._counts()
        if len(self._moving) >= s.concurrency:
            return f"{s.concurrency} migrations at once"
        if hosts[source] >= s.per_host:
            return f"{s.per_host} per host on {source}"
        if s.max_per_project is not None and projects[server.project] >= s.max_per_project:
            return f"{s.max_per_project} per project in {server.project}"
        for group in server.groups:
            if s.max_per_group is not None and groups[group] >= s.max_per_group:
                return f"{s.max_per_group} per server group in {group}"
        return None

    def take(self, source: str, server: Server, *, force: bool = False) -> bool:
        """A slot for ``server`` if every limit allows (``force``: count it anyway,
        for a migration already under way when a run resumes)."""
        with self._lock:
            if server.id in self._moving:
                return True
            if not force and self._blocker(source, server) is not None:
                return False
            self._moving[server.id] = (source, server)
            hosts, projects, groups = self._counts()
            self.peak["total"] = max(self.peak["total"], len(self._moving))
            for key, count in (
                *((f"host:{k}", v) for k, v in hosts.items()),
                *((f"project:{k}", v) for k, v in projects.items()),
                *((f"group:{k}", v) for k, v in groups.items()),
            ):
                self.peak[key] = max(self.peak[key], count)
            return True

    def give_back(self, server_id: str) -> None:
        with self._lock:
            self._moving.pop(server_id, None)
            self._stuck.discard(server_id)

    def stuck(self, server_id: str) -> None:
        """The move keeps its slot (it is still under way in Nova) but will not end."""
        with self._lock:
            self._stuck.add(server_id)

    def active(self) -> int:
        """Moves under way that will end by themselves."""
        with self._lock:
            return len(self._moving) - len(self._stuck & set(self._moving))
