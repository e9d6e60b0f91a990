"""``ephyra forklift``: move Ironic nodes from one control plane to another, and back."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ephyra.cli import runs
from ephyra.cli.backend import backend
from ephyra.cli.output import emit
from ephyra.errors import UsageError

if TYPE_CHECKING:  # pydantic: imported by the commands that send a body
    from ephyra.api.bodies import ForkliftBody

KIND = "forklift"

DESCRIPTION = """\
Move bare-metal nodes from the control plane they are enrolled in (--from) to
another (--to), one node after another or N at once, and back again.

Each node: record it -> workload prepare -> maintenance on the source -> undeploy
-> enroll in the target (in maintenance, same UUID, fields and port MACs) -> delete
from the source -> manage -> provide -> maintenance off -> deploy the recorded
instance -> workload return and node health. A node is never enrolled nowhere.

Clouds are names from clouds.yaml. A run is journaled: it can be paused, resumed
from another process, aborted (in-flight nodes go back) and rolled back.
"""


def _body(args: argparse.Namespace) -> ForkliftBody:
    from ephyra.api.bodies import ForkliftBody

    options: dict[str, str] = {}
    for item in args.workload_opt:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--workload-opt wants KEY=VALUE, not {item!r}")
        options[key] = value
    return ForkliftBody.build(
        source=args.source,
        target=args.target,
        nodes=[n for item in args.nodes for n in item.split(",") if n] or None,
        concurrency=args.concurrency,
        batch_size=args.batch_size,
        max_failures=args.max_failures,
        step_timeout=args.step_timeout,
        health_timeout=args.health_timeout,
        gate_timeout=args.gate_timeout,
        max_deferrals=args.max_deferrals,
        defer_wait=args.defer_wait,
        workload=args.workload,
        workload_options=options,
        credentials=args.credentials,
    )


def do_plan(args: argparse.Namespace) -> int:
    return runs.show_plan(args, KIND, _body(args))


def do_start(args: argparse.Namespace) -> int:
    def question(plan: dict[str, Any]) -> str:
        count = sum(len(batch) for batch in plan["batches"])
        return f"Move {count} node(s) from {plan['from']} to {plan['to']}? [y/N] "

    return runs.starting(args, KIND, _body(args), question, "status")


def do_status(args: argparse.Namespace) -> int:
    status = backend(args).status(KIND, args.run)
    if args.format != "table":
        emit(status, args.format)
        return 0
    counts = ", ".join(f"{v} {k}" for k, v in sorted(status["counts"].items()))
    print(
        f"run {status['id']}: {status['state']} ({status['phase']}) "
        f"{status['from']} -> {status['to']}: {counts}"
    )
    if status["reason"]:
        print(f"reason: {status['reason']}")
    emit(status["nodes"], "table", ["name", "uuid", "forward", "rollback", "error"])
    return 0


def do_list(args: argparse.Namespace) -> int:
    emit(
        backend(args).kind_runs(KIND),
        args.format,
        ["id", "state", "from", "to", "nodes", "created"],
    )
    return 0


def _plan_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--from", dest="source", required=True, metavar="CLOUD", help="cloud the nodes leave")
    add("--to", dest="target", required=True, metavar="CLOUD", help="cloud the nodes join")
    add(
        "--nodes",
        action="append",
        default=[],
        metavar="NAME[,NAME...]",
        help="only these nodes (names or UUIDs); default: every node of --from",
    )
    add("--concurrency", type=int, default=1, metavar="N", help="nodes moved at once (1)")
    add(
        "--batch-size",
        type=int,
        default=0,
        metavar="N",
        help="nodes between two application health gates (default: --concurrency)",
    )
    add(
        "--max-failures",
        type=int,
        default=0,
        metavar="N",
        help="failed nodes tolerated before the run stops (0)",
    )
    add("--workload", default="noop", help="workload plugin: noop, command, hadoop (noop)")
    add(
        "--workload-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the workload plugin (repeatable)",
    )
    add(
        "--credentials",
        metavar="SOURCE",
        help="where masked BMC secrets come from: file:PATH, or 'source' (the source "
        "control plane shows them by policy); with --url: 'source' or a NAME the server's "
        "operator configured (ephyra serve --config)",
    )
    add(
        "--step-timeout",
        type=float,
        default=1800.0,
        metavar="S",
        help="longest wait for one provision-state change (1800)",
    )
    add(
        "--health-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="longest wait for a returned node to be healthy (600)",
    )
    add(
        "--gate-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="longest wait for application health between batches before pausing (600)",
    )
    add(
        "--max-deferrals",
        type=int,
        default=20,
        metavar="N",
        help="times the workload may defer one node before it counts as failed (20)",
    )
    add(
        "--defer-wait",
        type=float,
        default=30.0,
        metavar="S",
        help="pause before retrying when every node of a batch was deferred (30)",
    )


def register(sub: Any, exit_codes: str) -> None:
    action = runs.command_group(
        sub,
        "forklift",
        "move Ironic nodes between control planes (blue/green)",
        DESCRIPTION,
        exit_codes,
    )

    _plan_options(action("plan", do_plan, "print what a start would do (a dry run)"))
    start = action("start", do_start, "plan and move the nodes, showing progress")
    _plan_options(start)
    runs.add_metrics_options(start)
    start.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    run_help = "run id or a unique prefix (default: the latest unfinished run)"
    for name, handler, text in (
        (
            "resume",
            runs.continuing(KIND, "resume", "status"),
            "continue a paused, failed or crashed run",
        ),
        (
            "rollback",
            runs.continuing(KIND, "rollback", "status"),
            "move every node the run moved back where it was",
        ),
    ):
        p = action(name, handler, text)
        p.add_argument("run", nargs="?", help=run_help)
        runs.add_metrics_options(p)
    for name, handler, text in (
        (
            "pause",
            runs.simple("pause", KIND),
            "ask a running run to stop at the next step boundary",
        ),
        ("abort", runs.simple("abort", KIND), "stop a run for good: nodes caught mid-move go back"),
        ("status", do_status, "where a run and each of its nodes are"),
    ):
        action(name, handler, text).add_argument("run", nargs="?", help=run_help)
    action("list", do_list, "every forklift run in the journal")
