"""Prometheus metrics of a run, in a registry of its own (no global state).

Forklift runs count nodes; evacuations count server moves and drain times.
Exported on a port (``--metrics-port``, bound to 127.0.0.1 unless told otherwise)
and/or to a text file for node_exporter's textfile collector (``--metrics-textfile``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    write_to_textfile,
)

from ephyra.engine.states import RunState


@dataclass(frozen=True)
class Exports:
    """Where a run's metrics go."""

    port: int | None = None
    textfile: Path | None = None


NO_EXPORTS = Exports()


class RunMetrics:
    def __init__(self, kind: str, run_id: str) -> None:
        self.registry = CollectorRegistry()
        self._labels = {"kind": kind, "run": run_id}
        self.textfile: Path | None = None
        self.nodes = Counter(
            "ephyra_nodes",
            "Nodes handled by a run, by result (moved, failed, deferred, returned).",
            ["kind", "run", "result"],
            registry=self.registry,
        )
        self.steps = Histogram(
            "ephyra_step_duration_seconds",
            "Time each step of a node's move took.",
            ["kind", "run", "step"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800),
            registry=self.registry,
        )
        self.state = Gauge(
            "ephyra_run_state",
            "1 for the state the run is in, 0 for the others.",
            ["kind", "run", "state"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "ephyra_nodes_in_flight",
            "Nodes being moved right now.",
            ["kind", "run"],
            registry=self.registry,
        )

        self.migrations = Counter(
            "ephyra_migrations",
            "Server moves by kind (live, cold, evacuate, stop) and event (started, finished, "
            "failed).",
            ["kind", "run", "how", "event"],
            registry=self.registry,
        )
        self.drain_seconds = Gauge(
            "ephyra_host_drain_seconds",
            "Time the drain of a compute host took.",
            ["kind", "run", "host"],
            registry=self.registry,
        )

    def serve(self, port: int, address: str = "127.0.0.1") -> None:
        start_http_server(port, addr=address, registry=self.registry)

    def node(self, result: str) -> None:
        self.nodes.labels(result=result, **self._labels).inc()
        self.flush()

    def step(self, step: str, seconds: float) -> None:
        self.steps.labels(step=step, **self._labels).observe(seconds)

    def migration(self, how: str, event: str) -> None:
        self.migrations.labels(how=how, event=event, **self._labels).inc()
        self.flush()

    def drained(self, host: str, seconds: float) -> None:
        self.drain_seconds.labels(host=host, **self._labels).set(seconds)
        self.flush()

    def flying(self, delta: int) -> None:
        self.in_flight.labels(**self._labels).inc(delta)

    def run_state(self, state: RunState) -> None:
        for s in RunState:
            self.state.labels(state=s.value, **self._labels).set(1 if s is state else 0)
        self.flush()

    def flush(self) -> None:
        if self.textfile is not None:
            write_to_textfile(str(self.textfile), self.registry)

    def export(self, exports: Exports) -> None:
        """Start exporting as asked (a port served in the background, a file on change)."""
        self.textfile = exports.textfile
        if exports.port is not None:
            self.serve(exports.port)
