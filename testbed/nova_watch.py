"""Watching Nova from the side, as an operator would: the migrations API, sampled."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping
from types import TracebackType
from typing import Any

FINAL = frozenset({"completed", "confirmed", "error", "failed", "cancelled", "done", "reverted"})


class MigrationWatch:
    """Samples GET /os-migrations every ``interval`` seconds in a thread; keeps the highest
    number of moves under way at once, in total, per project and per server group."""

    def __init__(
        self,
        conn: Any,
        projects: Mapping[str, str],
        groups: Mapping[str, str] | None = None,
        interval: float = 0.1,
    ) -> None:
        self._conn = conn
        self._projects = projects  # server id -> project
        self._groups = groups or {}  # server id -> group
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.peak: Counter[str] = Counter()
        self.samples = 0
        self.errors = 0

    def busy(self) -> list[dict[str, Any]]:
        response = self._conn.compute.get("/os-migrations", microversion="2.80")
        migrations = response.json()["migrations"]
        return [
            m
            for m in migrations
            if m["status"] not in FINAL and m["instance_uuid"] in self._projects
        ]

    def _loop(self) -> None:
        while not self._done.is_set():
            try:
                busy = self.busy()
            except Exception:  # a sample lost is not a budget exceeded
                self.errors += 1
                continue
            self.samples += 1
            counts: Counter[str] = Counter()
            for m in busy:
                counts["total"] += 1
                counts[f"project:{self._projects[m['instance_uuid']]}"] += 1
                group = self._groups.get(m["instance_uuid"])
                if group:
                    counts[f"group:{group}"] += 1
            for key, value in counts.items():
                self.peak[key] = max(self.peak[key], value)
            self._done.wait(self._interval)

    def max_of(self, prefix: str) -> int:
        return max((v for k, v in self.peak.items() if k.startswith(prefix)), default=0)

    def __enter__(self) -> MigrationWatch:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join(10)


def migrations_of(conn: Any, server: str) -> list[tuple[str, str]]:
    """(type, status) of every migration of ``server``, oldest first."""
    response = conn.compute.get(f"/os-migrations?instance_uuid={server}", microversion="2.80")
    found = sorted(response.json()["migrations"], key=lambda m: m["id"])
    return [(m["migration_type"], m["status"]) for m in found]


def wait_until(predicate: Any, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
