"""A run's downtime report: each probed target's outages set against the run's units.

The inputs are what a run keeps: each target's timeline (``started``, ``last``, outages
``{start, end, error}``, as :class:`ephyra.upgrade.availability.Timeline` writes it), the
run's events (a unit's steps name its host; its outcome, at its end, names the unit) and
its units with their host and stage. :func:`build` gives, per target, its downtime, its
outages and the stages and units each overlaps; per unit and stage when it ran.
:func:`lines` draws it as text: one row per target, stage and unit on a time axis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Seconds of one bin of a timeline (when a timeline kept no ``last``).
BIN_S = 10
WIDTH = 60
#: The widest label of a row of the timeline (a longer one is cut).
LABEL = 48
UNREACHABLE, ANSWERED, RUNNING = "X", ".", "="
#: The target the compute API's ``availability`` record is reported as.
COMPUTE = "compute-api"
#: The events a report reads.
EVENT_TYPES = ("step", "node", "run.finished")


@dataclass(frozen=True)
class Item:
    """A unit of a run: its name, the host its steps name, its stage ('' for none)."""

    name: str
    host: str
    stage: str = ""


def unit_spans(
    events: Iterable[Mapping[str, Any]], items: list[Item], now: float
) -> dict[str, list[list[float]]]:
    """When each unit ran, ``[start, end]`` per time it ran: from its host's first step
    to its outcome; a unit still running (or stopped with its run) ends then."""
    by_name = {i.name: i for i in items}
    hosts = {i.host for i in items}
    spans: dict[str, list[list[float]]] = {i.name: [] for i in items}
    open_: dict[str, float] = {}

    def close(host: str, at: float) -> None:
        begun = open_.pop(host)
        waiting = [i for i in items if i.host == host and not spans[i.name]]
        mine = waiting or [i for i in items if i.host == host]
        spans[mine[0].name].append([begun, at])

    for event in events:
        kind, at = event.get("type"), float(event.get("time") or 0.0)
        if kind == "step" and event.get("node") in hosts:
            open_.setdefault(str(event["node"]), at)
        elif kind == "node" and event.get("node") in by_name:
            item = by_name[str(event["node"])]
            if item.host in open_:
                spans[item.name].append([open_.pop(item.host), at])
        elif kind == "run.finished":
            for host in list(open_):
                close(host, at)
    for host in list(open_):
        close(host, max(now, open_[host]))
    return spans


def _overlaps(spans: Iterable[list[float]], start: float, end: float) -> bool:
    return any(s <= end and start <= e for s, e in spans)


def build(
    timelines: Mapping[str, Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    items: list[Item],
    now: float,
) -> dict[str, Any]:
    """The report of one run (see the module's doc)."""
    spans = unit_spans(events, items, now)
    stages: dict[str, list[list[float]]] = {}
    for item in items:
        if item.stage:
            stages.setdefault(item.stage, []).extend(spans[item.name])
    stage_rows: list[dict[str, Any]] = [
        {"stage": name, "start": min(s for s, _ in found), "end": max(e for _, e in found)}
        for name, found in stages.items()
        if found
    ]
    unit_rows: list[dict[str, Any]] = [
        {"unit": i.name, "host": i.host, "stage": i.stage, "spans": spans[i.name]}
        for i in items
        if spans[i.name]
    ]
    targets: list[dict[str, Any]] = []
    for name, timeline in timelines.items():
        started = float(timeline.get("started") or 0.0)
        if not started:
            continue
        bins = timeline.get("bins") or []
        last = float(timeline.get("last") or 0.0) or started + BIN_S * (
            max((b[0] for b in bins), default=0) + 1
        )
        outages: list[dict[str, Any]] = []
        for o in timeline.get("outages") or []:
            start, end = float(o["start"]), float(o["end"])
            outages.append(
                {
                    "start": start,
                    "end": end,
                    "seconds": round(end - start, 2),
                    "error": str(o.get("error") or ""),
                    "open": bool(o.get("open")),
                    "stages": [
                        s["stage"]
                        for s in stage_rows
                        if _overlaps([[s["start"], s["end"]]], start, end)
                    ],
                    "units": [u["unit"] for u in unit_rows if _overlaps(u["spans"], start, end)],
                }
            )
        targets.append(
            {
                "target": name,
                "started": started,
                "last": last,
                "probes": sum(int(b[1]) for b in bins),
                "failures": sum(int(b[2]) for b in bins),
                "downtime_seconds": round(sum(o["end"] - o["start"] for o in outages), 2),
                "longest_outage_seconds": max((o["seconds"] for o in outages), default=0.0),
                "outages": outages,
            }
        )
    starts = [t["started"] for t in targets] + [s["start"] for s in stage_rows]
    starts += [sp[0] for u in unit_rows for sp in u["spans"]]
    ends = [t["last"] for t in targets] + [sp[1] for u in unit_rows for sp in u["spans"]]
    return {
        "start": min(starts, default=0.0),
        "end": max(ends, default=0.0),
        "targets": targets,
        "stages": stage_rows,
        "units": unit_rows,
    }


def clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%SZ")


def _marks(spans: list[list[float]], columns: list[tuple[float, float]], mark: str) -> str:
    """``mark`` in each column ``[a, b)`` a span covers part of (an instant: its own)."""
    return "".join(
        mark if any(s < b and (a < e or a <= s == e) for s, e in spans) else " " for a, b in columns
    )


def lines(report: Mapping[str, Any], width: int = WIDTH) -> list[str]:
    """The report as text: each target's downtime and outages, then the timeline."""
    start, end = float(report["start"]), float(report["end"])
    if not report["targets"] and not report["units"]:
        return ["nothing probed and no unit ran yet"]
    out = []
    if report["targets"]:
        out.append("downtime by target:")
    for t in report["targets"]:
        if not t["outages"]:
            out.append(f"  {t['target']}: none ({t['probes']} probes answered)")
            continue
        out.append(
            f"  {t['target']}: {t['downtime_seconds']}s in {len(t['outages'])} outage(s), "
            f"longest {t['longest_outage_seconds']}s ({t['failures']} of {t['probes']} "
            "probes unanswered)"
        )
        for o in t["outages"]:
            during = [f"'{s}'" for s in o["stages"]] or [f"unit {u}" for u in o["units"]]
            out.append(
                f"    {clock(o['start'])}-{clock(o['end'])} {o['seconds']}s ({o['error']})"
                + (f" during {', '.join(during)}" if during else "")
                + (" (still unreachable)" if o["open"] else "")
            )
    step = max(end - start, 1e-6) / width
    columns = [(start + c * step, start + (c + 1) * step) for c in range(width)]
    out.append(
        f"timeline, {step:.2g}s per column ({UNREACHABLE} unreachable, {ANSWERED} answered, "
        f"{RUNNING} running):"
    )
    rows: list[tuple[str, str]] = []
    for t in report["targets"]:
        down = _marks([[o["start"], o["end"]] for o in t["outages"]], columns, UNREACHABLE)
        up = _marks([[t["started"], t["last"]]], columns, ANSWERED)
        rows.append(
            (
                f"target {t['target']}",
                "".join(d.strip() or u for d, u in zip(down, up, strict=True)),
            )
        )
    for row in report["stages"]:
        rows.append(
            (f"stage {row['stage']}", _marks([[row["start"], row["end"]]], columns, RUNNING))
        )
        rows += [
            (f"  unit {u['unit']}", _marks(u["spans"], columns, RUNNING))
            for u in report["units"]
            if u["stage"] == row["stage"]
        ]
    rows += [
        (f"unit {u['unit']}", _marks(u["spans"], columns, RUNNING))
        for u in report["units"]
        if not u["stage"]
    ]
    wide = min(LABEL, max(len(label) for label, _ in rows))
    out += [f"  {label[:wide]:<{wide}} |{marks}|" for label, marks in rows]
    left, right = clock(start), clock(end)
    out.append(f"  {'':<{wide}} {left}{right:>{width + 2 - len(left)}}")
    return out
