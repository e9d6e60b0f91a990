"""The compute API's availability while an upgrade runs.

A thread of the run asks the API for one server every ``interval`` seconds (the spec's
``availability.interval``, default 1; 0 turns it off) through a connection of its own,
and keeps what it saw in the run's journal record ``availability``: per bin of
:data:`BIN_S` seconds, the probes, how many failed and the slowest answer; and every
outage (probes failing one after the other), with when it began and ended and why.
``ephyra upgrade status`` shows the share answered, the outages and a timeline of the
bins; ``--format json`` gives all of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ephyra.errors import EphyraError

#: Seconds of one bin of the timeline; bins per line of the shown timeline.
BIN_S = 10
BINS_PER_LINE = 60
SAVE_S = 5.0
RECORD = "availability"
#: A bin where every probe was answered, some were not, none was.
ALL_OK, SOME_FAILED, ALL_FAILED = ".", ":", "X"


@dataclass
class Timeline:
    """What the probes saw: bins ``[index, probes, failures, slowest ms]`` counted from
    ``started`` (Unix time), outages ``{start, end, error}``, and when the last probe
    ended (``last``, 0 in a record kept before it was)."""

    started: float = 0.0
    bins: list[list[Any]] = field(default_factory=list)
    outages: list[dict[str, Any]] = field(default_factory=list)
    last: float = 0.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Timeline:
        return cls(
            float(data.get("started") or 0.0),
            [list(b) for b in data.get("bins") or []],
            [dict(o) for o in data.get("outages") or []],
            float(data.get("last") or 0.0),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "bins": [list(b) for b in self.bins],
            "outages": [dict(o) for o in self.outages],
            **({"last": self.last} if self.last else {}),
            **self.summary(),
        }

    def add(self, at: float, seconds: float, error: str | None) -> None:
        """One probe sent at ``at`` that took ``seconds``; ``error`` None if answered."""
        if not self.started:
            self.started = at
        index = int((at - self.started) // BIN_S)
        if not self.bins or self.bins[-1][0] != index:
            self.bins.append([index, 0, 0, 0])
        current = self.bins[-1]
        current[1] += 1
        current[3] = max(current[3], round(seconds * 1000))
        self.last = max(self.last, at + seconds)
        ongoing = self.outages[-1] if self.outages and self.outages[-1].get("open") else None
        if error is None:
            if ongoing is not None:
                ongoing["end"] = at
                del ongoing["open"]
            return
        current[2] += 1
        if ongoing is None:
            self.outages.append({"start": at, "end": at + seconds, "error": error, "open": True})
        else:
            ongoing["end"] = at + seconds

    def summary(self) -> dict[str, Any]:
        probes = sum(b[1] for b in self.bins)
        failures = sum(b[2] for b in self.bins)
        longest = max((o["end"] - o["start"] for o in self.outages), default=0.0)
        return {
            "probes": probes,
            "failures": failures,
            "answered_percent": round(100.0 * (probes - failures) / probes, 2) if probes else None,
            "longest_outage_seconds": round(longest, 1),
            "slowest_answer_seconds": round(max((b[3] for b in self.bins), default=0) / 1000, 2),
        }

    def lines(self) -> list[str]:
        """The summary and the timeline, as ``status`` shows them."""
        s = self.summary()
        if not s["probes"]:
            return []
        head = (
            f"compute API during the run: {s['answered_percent']}% of {s['probes']} probes "
            f"answered, slowest {s['slowest_answer_seconds']}s"
        )
        if self.outages:
            worst = max(self.outages, key=lambda o: o["end"] - o["start"])
            head += (
                f"; {len(self.outages)} outage(s), longest {s['longest_outage_seconds']}s "
                f"from {_clock(worst['start'])} ({worst['error']})"
            )
        out = [
            head,
            f"timeline ({BIN_S}s per mark; {ALL_OK} answered, {SOME_FAILED} some "
            f"failed, {ALL_FAILED} none answered):",
        ]
        marks = {
            b[0]: ALL_OK if not b[2] else ALL_FAILED if b[2] == b[1] else SOME_FAILED
            for b in self.bins
        }
        last = max(marks)
        for first in range(0, last + 1, BINS_PER_LINE):
            row = "".join(
                marks.get(i, " ") for i in range(first, min(first + BINS_PER_LINE, last + 1))
            )
            if row.strip():
                out.append(f"  {_clock(self.started + first * BIN_S)} {row.rstrip()}")
        return out


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%SZ")


def why(exc: Exception) -> str:
    """What a failed probe says: Ephyra's own words, else only the kind of error."""
    return str(exc) if isinstance(exc, EphyraError) else type(exc).__name__


class Probe:
    """Probes ``ask`` every ``interval`` seconds in a thread until stopped, adding to
    ``timeline`` and handing it to ``save`` every few seconds and at the end."""

    def __init__(
        self,
        ask: Callable[[], None],
        timeline: Timeline,
        save: Callable[[Timeline], None],
        interval: float,
    ) -> None:
        self.ask, self.timeline, self.save, self.interval = ask, timeline, save, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ephyra-probe", daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.save(self.timeline)

    def _loop(self) -> None:
        saved = time.monotonic()
        while not self._stop.is_set():
            at, began = time.time(), time.monotonic()
            error: str | None = None
            try:
                self.ask()
            except Exception as exc:  # every failure is an outage, whatever it is
                error = why(exc)
            self.timeline.add(at, time.monotonic() - began, error)
            if time.monotonic() - saved >= SAVE_S:
                self.save(self.timeline)
                saved = time.monotonic()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))
