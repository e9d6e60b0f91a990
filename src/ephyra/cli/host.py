"""``ephyra host``: compute hosts in maintenance, and emptied by live migration."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from ephyra.cli import runs
from ephyra.cli.backend import backend
from ephyra.cli.output import emit
from ephyra.compute.budget import Fallback, OnTimeout
from ephyra.errors import UsageError
from ephyra.names import check_name

if TYPE_CHECKING:  # pydantic: imported by the commands that send a body
    from ephyra.api.bodies import EvacuateBody

KIND = "evacuate"

DESCRIPTION = """\
Compute hosts (Nova): put them in maintenance, and empty them.

show                      the compute hosts: nova-compute enabled or not, up or down,
                          and whether Ephyra put them in maintenance.
maintenance on|off HOST   disable or enable nova-compute. The reason names Ephyra and
                          a run; `off` never enables a service someone else disabled.
plan HOST...              what `evacuate` would do, with the capacity check (dry run).
evacuate HOST...          disable each host, then live-migrate every server off it
                          within the limits; a host that is down and forced down is
                          evacuated (servers rebuilt elsewhere) instead.

Servers that cannot be live-migrated get the fallback (--fallback cold: migrate and
confirm; stop: stop in place; skip: leave and report). A live migration that outlives
--migration-timeout is force-completed or aborted (--on-timeout), then gets the
fallback; a move still stuck after that is left and reported: nothing waits forever.

An evacuation is a run: status, pause, resume, abort and rollback (maintenance off where
the run put it on, stopped servers started again; servers stay where they were moved).
"""


def _cloud(args: argparse.Namespace) -> str:
    if not args.os_cloud:
        raise UsageError("name the cloud: --os-cloud NAME or OS_CLOUD")
    return str(args.os_cloud)


def _body(args: argparse.Namespace) -> EvacuateBody:
    from ephyra.api.bodies import EvacuateBody

    return EvacuateBody.build(
        cloud=_cloud(args),
        hosts=[check_name(host, "HOST") for host in args.hosts],
        target=check_name(args.target, "--target") if args.target else args.target,
        concurrency=args.concurrency,
        per_host=args.per_host,
        max_per_project=args.max_per_project,
        max_per_group=args.max_per_group,
        fallback=args.fallback,
        on_timeout=args.on_timeout,
        migration_timeout=args.migration_timeout,
        also_down=args.also_down,
    )


def do_maintenance(args: argparse.Namespace) -> int:
    host = check_name(args.hostname, "HOST")
    print(backend(args).maintenance(_cloud(args), host, args.switch == "on"))
    return 0


def do_plan(args: argparse.Namespace) -> int:
    return runs.show_plan(args, KIND, _body(args))


def do_evacuate(args: argparse.Namespace) -> int:
    def question(plan: dict[str, Any]) -> str:
        servers = sum(len(h["servers"]) for h in plan["hosts"])
        return f"Empty {len(plan['hosts'])} host(s), {servers} server(s)? [y/N] "

    return runs.starting(args, KIND, _body(args), question, "ephyra host status")


def do_status(args: argparse.Namespace) -> int:
    status = backend(args).status(KIND, args.run)
    if args.format != "table":
        emit(status, args.format)
        return 0
    counts = ", ".join(f"{v} {k}" for k, v in sorted(status["counts"].items()))
    print(
        f"run {status['id']}: {status['state']} ({status['phase']}) on {status['cloud']}: {counts}"
    )
    if status["reason"]:
        print(f"reason: {status['reason']}")
    emit(status["hosts"], "table", ["host", "forward", "rollback", "drain_seconds", "error"])
    emit(status["servers"], "table", ["name", "project", "from", "how", "outcome", "to", "detail"])
    return 0


def do_list(args: argparse.Namespace) -> int:
    emit(
        backend(args).kind_runs(KIND),
        args.format,
        ["id", "kind", "state", "cloud", "hosts", "created"],
    )
    return 0


def do_hosts(args: argparse.Namespace) -> int:
    emit(
        backend(args).hosts(_cloud(args)),
        args.format,
        ["host", "status", "state", "maintenance", "disabled_reason"],
    )
    return 0


def _cloud_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--os-cloud",
        default=os.environ.get("OS_CLOUD"),
        metavar="NAME",
        help="cloud from clouds.yaml (default: OS_CLOUD)",
    )


def _limit(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _plan_options(parser: argparse.ArgumentParser) -> None:
    _cloud_option(parser)
    add = parser.add_argument
    add("hosts", nargs="+", metavar="HOST", help="compute host(s) to empty")
    add("--target", metavar="HOST", help="move every server to this host (default: scheduler)")
    add("--concurrency", type=int, default=4, metavar="N", help="moves at once in total (4)")
    add("--per-host", type=int, default=2, metavar="N", help="moves at once per source host (2)")
    add(
        "--max-per-project",
        type=int,
        metavar="K",
        help="disruption budget: servers of one project moving at once (no limit)",
    )
    add(
        "--max-per-group",
        type=_limit,
        default=1,
        metavar="K",
        help="disruption budget: servers of one server group moving at once (1; 0: no limit)",
    )
    add(
        "--fallback",
        choices=[f.value for f in Fallback],
        default=Fallback.COLD.value,
        help="for servers that cannot be live-migrated (cold)",
    )
    add(
        "--on-timeout",
        choices=[o.value for o in OnTimeout],
        default=OnTimeout.ABORT.value,
        help="first answer to a live migration over --migration-timeout (abort)",
    )
    add(
        "--migration-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="longest wait for one move, and for each escalation after it (600)",
    )
    add(
        "--also-down",
        action="append",
        default=[],
        metavar="HOST",
        help="another host planned to be in maintenance: not counted as room (repeatable)",
    )


def register(sub: Any, exit_codes: str) -> None:
    action = runs.command_group(
        sub, "host", "compute hosts: maintenance and evacuation", DESCRIPTION, exit_codes
    )

    maintenance = action(
        "maintenance", do_maintenance, "disable (on) or enable (off) a host's nova-compute"
    )
    _cloud_option(action("show", do_hosts, "the compute hosts, with their maintenance state"))
    maintenance.add_argument("switch", choices=["on", "off"])
    maintenance.add_argument("hostname", metavar="HOST")
    _cloud_option(maintenance)
    _plan_options(action("plan", do_plan, "what an evacuation would do (a dry run)"))
    evacuate = action("evacuate", do_evacuate, "empty compute hosts, showing progress")
    _plan_options(evacuate)
    runs.add_metrics_options(evacuate)
    evacuate.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    run_help = "run id or a unique prefix (default: the latest unfinished evacuation)"
    for name, handler, text in (
        (
            "resume",
            runs.continuing(KIND, "resume", "ephyra host status"),
            "continue a paused, failed or crashed run",
        ),
        (
            "rollback",
            runs.continuing(KIND, "rollback", "ephyra host status"),
            "maintenance off where the run put it on; servers stay where they are",
        ),
    ):
        p = action(name, handler, text)
        p.add_argument("run", nargs="?", help=run_help)
        runs.add_metrics_options(p)
    for name, handler, text in (
        ("pause", runs.simple("pause", KIND), "ask a running evacuation to stop at its next poll"),
        (
            "abort",
            runs.simple("abort", KIND),
            "stop an evacuation for good (moves under way finish in Nova)",
        ),
        ("status", do_status, "where a run, its hosts and their servers are"),
    ):
        action(name, handler, text).add_argument("run", nargs="?", help=run_help)
    action("list", do_list, "every evacuation and maintenance run in the journal")
