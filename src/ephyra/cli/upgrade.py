"""``ephyra upgrade``: rolling in-place upgrades planned from what the cloud runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ephyra.cli import runs
from ephyra.cli.backend import backend
from ephyra.cli.output import emit
from ephyra.errors import UsageError

if TYPE_CHECKING:  # pydantic: imported by the commands that send a body
    from ephyra.api.bodies import UpgradeBody

KIND = "upgrade"

DESCRIPTION = """\
Rolling in-place upgrades, planned from the inventory (--source) and a specification
(--spec FILE, see docs/upgrade.md).

The control plane goes first, service by service in the upgrade guides' order (identity,
image, placement, compute, network, block storage, ..., bare metal), one controller at a
time unless the role allows more; then the data plane, role by role, host by host: a
canary alone (and its soak), then batches of the role's max_at_once. Compute hosts are
drained by live migration first (the evacuation's budgets) and enabled after. Every
unit ends at a health gate: its services up again in the APIs, with the new version,
and the custom checks green. More failed units than failure_threshold pause the run.

plan        the tree of stages, batches and units, with an estimate (a dry run)
start       run it, showing progress; with --board, queue it for `ephyra conductor`
            workers instead (docs/distributed.md)
status, pause, resume, abort, rollback, list
            rollback takes back, newest first, what the run did, with each
            strategy's downgrade, and says which strategies have none.

inventory sources (--source, repeatable, merged in order): openstack[:CLOUD],
static:FILE, ansible:INVENTORY, puppetdb:URL (see docs/inventory.md); without
--source, the cloud of --os-cloud is discovered through its APIs. With --url, the
server reads only what its operator configured: openstack[:CLOUD] and the names of
its --config; a last static:FILE is read here and sent with the request.
"""


def _body(args: argparse.Namespace) -> UpgradeBody:
    import yaml

    from ephyra.api.bodies import UpgradeBody

    try:
        raw = yaml.safe_load(Path(args.spec).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read the specification {args.spec}: {exc}") from exc
    if not isinstance(raw, dict):
        raise UsageError(f"{args.spec}: a mapping (release, roles, ...), see docs/upgrade.md")
    sources, inline = _inline(args)
    return UpgradeBody.build(
        spec=raw, sources=sources, inventory=inline, cloud=args.os_cloud, width=args.width
    )


def _inline(args: argparse.Namespace) -> tuple[list[str], Any]:
    """The sources, and the inventory sent inline: with --url, a last static:FILE source
    is read here (it is this side's file) and sent in the body, merged last as here."""
    from ephyra.inventory import static

    sources = list(args.source)
    if getattr(args, "url", None) and sources and sources[-1].startswith("static:"):
        return sources[:-1], static.read(sources[-1].removeprefix("static:"))
    return sources, None


def do_plan(args: argparse.Namespace) -> int:
    return runs.show_plan(args, KIND, _body(args))


def do_start(args: argparse.Namespace) -> int:
    if not args.board:

        def question(plan: dict[str, Any]) -> str:
            units = sum(len(b["units"]) for s in plan["stages"] for b in s["batches"])
            return f"Upgrade {units} unit(s) to {plan['release']}? [y/N] "

        return runs.starting(args, KIND, _body(args), question, "ephyra upgrade status")
    from ephyra.api import local
    from ephyra.engine.board import Board
    from ephyra.engine.journal import Journal
    from ephyra.upgrade import service

    journal = Journal(args.journal)
    found = local.Local(args.journal, args.locks).planned(KIND, _body(args))
    if sys.stdin.isatty() and not args.yes:
        print(found.plan.render(width=args.width))
        answer = input(f"Queue {len(found.plan.units())} unit(s) to {found.plan.release}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing done", file=sys.stderr)
            return 2
    with Board(args.board, journal) as board:
        queued = service.queue(journal, found, board, lock_url=args.locks)
    print(f"run {queued.id} queued on {board.url.url}")
    return 0


def do_resume(args: argparse.Namespace) -> int:
    if not args.board:
        return runs.continuing(KIND, "resume", "ephyra upgrade status")(args)
    from ephyra.engine.board import Board
    from ephyra.engine.journal import Journal
    from ephyra.upgrade import service

    journal = Journal(args.journal)
    with Board(args.board, journal) as board:
        run = service.queue_resume(journal, args.run, board, lock_url=args.locks)
    print(f"run {run.id} queued on {board.url.url}")
    return 0


def do_status(args: argparse.Namespace) -> int:
    status = backend(args).status(KIND, args.run)
    if args.format != "table":
        emit(status, args.format)
        return 0
    counts = ", ".join(f"{v} {k}" for k, v in sorted(status["counts"].items()))
    print(
        f"run {status['id']}: {status['state']} ({status['phase']}), release "
        f"{status['release']}: {counts}"
    )
    if status["reason"]:
        print(f"reason: {status['reason']}")
    if status["frozen"]:
        print(f"frozen (left alone): {', '.join(status['frozen'])}")
    emit(
        status["units"],
        "table",
        ["unit", "batch", "forward", "rollback", "versions", "kept", "error"],
    )
    return 0


def do_list(args: argparse.Namespace) -> int:
    emit(
        backend(args).kind_runs(KIND),
        args.format,
        ["id", "state", "release", "cloud", "units", "created"],
    )
    return 0


def _plan_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--spec", required=True, metavar="FILE", help="the upgrade specification (YAML)")
    add(
        "--source",
        action="append",
        default=[],
        metavar="KIND[:ARG]",
        help="inventory source, repeatable: openstack[:CLOUD], static:FILE, ansible:FILE, "
        "puppetdb:URL (with --url: openstack[:CLOUD], a name the server configured, and a "
        "last static:FILE, sent inline)",
    )
    add(
        "--os-cloud",
        default=os.environ.get("OS_CLOUD"),
        metavar="NAME",
        help="the cloud whose APIs gate the upgrade and drain compute hosts (default: OS_CLOUD, "
        "else the cloud of an openstack:CLOUD source)",
    )
    add("--width", type=int, default=6, metavar="N", help="hosts named per batch in the tree (6)")


def _board_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument(
        "--board",
        metavar="URL",
        help=f"{text} (etcd3+http://HOST:PORT[/PATH][?ttl=SECONDS], see docs/distributed.md)",
    )


def register(sub: Any, exit_codes: str) -> None:
    action = runs.command_group(
        sub,
        "upgrade",
        "rolling in-place upgrades: plan, start, status, pause, resume, abort, rollback",
        DESCRIPTION,
        exit_codes,
    )

    _plan_options(action("plan", do_plan, "the upgrade's steps and an estimate (a dry run)"))
    start = action("start", do_start, "run the upgrade, showing progress")
    _plan_options(start)
    runs.add_metrics_options(start)
    start.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _board_option(start, "create the run and queue it on this board for `ephyra conductor`")
    run_help = "run id or a unique prefix (default: the latest unfinished upgrade)"
    for name, handler, text in (
        ("resume", do_resume, "continue a paused, failed or crashed run"),
        (
            "rollback",
            runs.continuing(KIND, "rollback", "ephyra upgrade status"),
            "take back what the run did, newest first, with each strategy's downgrade",
        ),
    ):
        p = action(name, handler, text)
        p.add_argument("run", nargs="?", help=run_help)
        runs.add_metrics_options(p)
        if name == "resume":
            _board_option(p, "queue the run on this board for `ephyra conductor` to resume")
    for name, handler, text in (
        ("pause", runs.simple("pause", KIND), "ask a running upgrade to stop at its next step"),
        (
            "abort",
            runs.simple("abort", KIND),
            "stop an upgrade for good (what was upgraded stays, for rollback)",
        ),
        ("status", do_status, "where a run and each of its units are"),
    ):
        action(name, handler, text).add_argument("run", nargs="?", help=run_help)
    action("list", do_list, "every upgrade run in the journal")
