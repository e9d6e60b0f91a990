"""``ephyra run``: every run of every kind, with its progress and its events."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ephyra.cli import runs
from ephyra.cli.backend import backend
from ephyra.cli.output import emit

DESCRIPTION = """\
Every run in the journal, whatever its kind (forklift, upgrade, evacuate), and
whichever process drives it.

list                  each run: kind, state, what it moves, how far it got
show RUN              a run: its summary and each of its nodes, hosts or units
events RUN [--follow] what happened, step by step (--follow: until the run ends)
report RUN            downtime measured: each probed target's outages against the
                      stages and units, and a timeline of them
"""
#: Event types that end a follow.
ENDS = ("run.finished",)


def when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def do_list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = [dict(r) for r in backend(args).runs(args.kind)]
    if args.format == "table":
        rows = [
            {**r, "progress": f"{r['done']}/{r['total']}", "created": when(r["created"])}
            for r in rows
        ]
    emit(rows, args.format, ["id", "kind", "state", "title", "progress", "failed", "created"])
    return 0


def do_show(args: argparse.Namespace) -> int:
    found = backend(args).run(args.run)
    if args.format != "table":
        emit(found, args.format)
        return 0
    run = found["run"]
    print(
        f"{run['kind']} run {run['id']}: {run['state']} ({run['phase']}) {run['title']}: "
        f"{run['done']}/{run['total']} done, {run['failed']} failed"
    )
    if run["reason"]:
        print(f"reason: {run['reason']}")
    emit(found["items"], "table", ["name", "state", "rollback", "error"])
    return 0


def line(event: dict[str, Any]) -> str:
    body = {k: v for k, v in event.items() if k not in ("seq", "run", "kind", "time", "type")}
    text = " ".join(f"{k}={v}" for k, v in body.items() if v not in ("", None))
    return f"{when(event['time'])} #{event['seq']} {event['type']} {text}"


def do_events(args: argparse.Namespace) -> int:
    where = backend(args)
    after = args.after
    while True:
        found = where.events(args.run, after)
        if args.format == "table":
            for event in found:
                print(line(event), flush=True)
        elif found or not args.follow:
            emit(found, args.format)
        after = found[-1]["seq"] if found else after
        if not args.follow or any(e["type"] in ENDS for e in found):
            return 0
        if not found:
            time.sleep(args.poll)


def do_report(args: argparse.Namespace) -> int:
    found = backend(args).report(args.run)
    if args.format != "table":
        emit(found, args.format)
        return 0
    from ephyra.probes.report import lines

    print(f"{found['kind']} run {found['run']}")
    for text in lines(found):
        print(text)
    return 0


def register(sub: Any, exit_codes: str) -> None:
    action = runs.command_group(
        sub, "run", "every run of every kind: list, show, events, report", DESCRIPTION, exit_codes
    )
    listed = action("list", do_list, "every run, oldest first, with its progress")
    listed.add_argument("--kind", choices=["forklift", "upgrade", "evacuate"])
    action("show", do_show, "a run and each of its nodes, hosts or units").add_argument(
        "run", help="run id, a unique prefix, or latest"
    )
    events = action("events", do_events, "a run's events, oldest first")
    events.add_argument("run", help="run id, a unique prefix, or latest")
    events.add_argument("--after", type=int, default=0, metavar="SEQ", help="only after this one")
    events.add_argument("--follow", action="store_true", help="go on until the run ends")
    events.add_argument(
        "--poll", type=float, default=0.5, metavar="S", help="with --follow: look every S (0.5)"
    )
    action(
        "report", do_report, "a run's downtime: each probed target's outages against its units"
    ).add_argument("run", help="run id, a unique prefix, or latest")
