"""The management panel's ``/metrics``: every run in the journal (whichever process
drives it: the server, a command line, a conductor) and the API's own latency.

Runs are read from the journal at most every ``FRESH`` seconds, and step durations are
summed from the events as they come (each scrape reads only the new ones).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from ephyra.engine import events
from ephyra.engine.kinds import get, names
from ephyra.engine.states import RunState
from ephyra.operations.local import Local, progress
from ephyra.operations.protocol import Progress

#: A list of runs is at most this old (seconds).
FRESH = 0.5

REQUESTS = Histogram(
    "ephyra_api_request_duration_seconds",
    "Time the API took to answer, by route and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
    registry=None,
)


def observe(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).observe(seconds)


class JournalCollector(Collector):
    def __init__(self, local: Local) -> None:
        self.local = local
        self._lock = threading.Lock()
        self._runs: list[Progress] = []
        self._read_at = 0.0
        self._outcomes: dict[str, dict[str, str]] = {}
        self._seq = 0
        self._steps: dict[tuple[str, str, str], list[float]] = {}  # kind, step, status -> n, s
        self._events: dict[tuple[str, str], int] = {}

    def _catch_up(self) -> None:
        """Fold the events written since the last look (the caller holds the lock)."""
        engine = self.local.journal.engine
        while True:
            found = events.read(engine, after=self._seq, limit=5000)
            if not found:
                return
            for event in found:
                self._seq = event["seq"]
                key = (event["kind"], event["type"])
                self._events[key] = self._events.get(key, 0) + 1
                if event["type"] == "node":
                    self._outcomes.setdefault(event["run"], {})[event["node"]] = event["outcome"]
                elif event["type"] == "step" and event.get("status") in ("finished", "failed"):
                    sums = self._steps.setdefault(
                        (event["kind"], event["step"], event["status"]), [0.0, 0.0]
                    )
                    sums[0] += 1
                    sums[1] += float(event.get("seconds") or 0.0)

    def runs(self, kind: str | None = None) -> list[Progress]:
        """Every run with its progress, at most ``FRESH`` seconds old."""
        with self._lock:
            if time.monotonic() - self._read_at > FRESH:
                self._catch_up()
                infos = self.local.journal.runs()
                self._runs = [
                    progress(get(r.kind), r, self._outcomes.get(r.id, {}))
                    for r in infos
                    if r.kind in names()
                ]
                self._read_at = time.monotonic()
            found = self._runs
        return [r for r in found if kind is None or r["kind"] == kind]

    def collect(self) -> Iterator[Any]:
        found = self.runs()
        by_state = GaugeMetricFamily(
            "ephyra_runs", "Runs in the journal by kind and state.", labels=["kind", "state"]
        )
        counts: dict[tuple[str, str], int] = {}
        for run in found:
            counts[(run["kind"], run["state"])] = counts.get((run["kind"], run["state"]), 0) + 1
        for kind in names():
            for state in RunState:
                by_state.add_metric([kind, state.value], counts.get((kind, state.value), 0))
        yield by_state
        items = GaugeMetricFamily(
            "ephyra_run_items",
            "Nodes, hosts or units of each unfinished or recent run, by result "
            "(total, done, failed).",
            labels=["kind", "run", "title", "result"],
        )
        info = GaugeMetricFamily(
            "ephyra_run_info", "1 for each run, with its state.", labels=["kind", "run", "state"]
        )
        for run in found[-50:]:
            labels = [run["kind"], run["id"], run["title"]]
            for result in ("total", "done", "failed"):
                items.add_metric([*labels, result], run[result])
            info.add_metric([run["kind"], run["id"], run["state"]], 1)
        yield items
        yield info
        with self._lock:
            steps = dict(self._steps)
            counted = dict(self._events)
        summary = SummaryMetricFamily(
            "ephyra_step_seconds",
            "Steps of nodes, hosts and units by kind, step and status (finished, failed).",
            labels=["kind", "step", "status"],
        )
        for (kind, step, status), (n, seconds) in sorted(steps.items()):
            summary.add_metric([kind, step, status], count_value=int(n), sum_value=seconds)
        yield summary
        total = CounterMetricFamily(
            "ephyra_events", "Run events by kind and type.", labels=["kind", "type"]
        )
        for (kind, type_), n in sorted(counted.items()):
            total.add_metric([kind, type_], n)
        yield total


def registry(collector: JournalCollector) -> CollectorRegistry:
    made = CollectorRegistry()
    made.register(collector)
    made.register(REQUESTS)
    return made


def exposition(made: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(made), CONTENT_TYPE_LATEST
