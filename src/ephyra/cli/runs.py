"""The commands of every run kind, built from its registration (``ephyra.engine.kinds``),
and what they share: metrics options, and the exit code a run ends with."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ephyra.cli import audit
from ephyra.cli.backend import backend, in_process
from ephyra.cli.output import FORMATS, emit
from ephyra.engine.kinds import RunKind
from ephyra.engine.states import RunState
from ephyra.errors import UsageError
from ephyra.progress import observer_for
from ephyra.urls import redact

if TYPE_CHECKING:  # pydantic, SQLAlchemy, prometheus_client: not for building the parser
    from ephyra.engine.journal import RunInfo
    from ephyra.engine.metrics import Exports

Handler = Callable[[argparse.Namespace], int]
Action = Callable[[str, Handler, str], argparse.ArgumentParser]


def command_group(sub: Any, name: str, text: str, description: str, exit_codes: str) -> Action:
    """Add ``ephyra NAME ACTION``; returns a function adding one action with its handler."""
    parser = sub.add_parser(
        name,
        help=text,
        description=description,
        epilog=exit_codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    return verbs_of(actions, name, exit_codes)


def verbs_of(actions: Any, name: str, exit_codes: str) -> Action:
    """The function adding one action with its handler to ``actions`` (the subcommands of
    ``ephyra NAME``)."""

    def action(verb: str, handler: Handler, helptext: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(
            verb,
            help=helptext,
            description=helptext,
            epilog=exit_codes,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=audit.recorded(name, verb, handler))  # writes: in the trail
        format_option(p, default=argparse.SUPPRESS)  # after the command too, as `openstack`
        return p

    return action


def register_kind(action: Action, kind: RunKind[Any], parent: Action | None = None) -> None:
    """Add a run kind's commands to its command group: plan, its start verb, resume,
    rollback, pause, abort, status and list (and finish, for a kind that has it); and its
    start as ``kind.start_alias`` in ``parent`` (the group its nested group is in)."""
    verbs = kind.verbs
    status_command = f"ephyra {kind.command} status"

    def body(args: argparse.Namespace) -> Any:
        found = kind.body_of(args)
        told = getattr(args, "notify", None)
        if told is None:
            return found
        return type(found).build(**{**found.model_dump(), "notify": told})

    def do_plan(args: argparse.Namespace) -> int:
        shown = backend(args).plan(kind.name, body(args))
        if args.format == "table":
            print(shown["text"], end="")
        else:
            emit(shown["plan"], args.format)
        return 0

    def do_start(args: argparse.Namespace) -> int:
        found = body(args)
        if args.board:
            here = in_process(args)
            if not confirmed(args, here, found, "Queue"):
                return 2
            run = here.queue(kind.name, found, args.board)
            print(f"run {run.id} queued on {redact(args.board)}")
            return 0
        where = backend(args)
        if not confirmed(args, where, found, ""):
            return 2
        run = where.start(
            kind.name, found, observer_for(sys.stderr, args.verbose), exports=exports(args)
        )
        print(f"run {run.id} {run.state.value}")
        return exit_code(run, status_command)

    def confirmed(args: argparse.Namespace, where: Any, found: Any, verb: str) -> bool:
        """On a terminal (unless --yes), show the plan and ask."""
        if not sys.stdin.isatty() or args.yes:
            return True
        shown = where.plan(kind.name, found)
        print(shown["text"])
        question = kind.question(shown["plan"])
        if verb:
            question = f"{verb} this run? [y/N] "
        if input(question).strip().lower() in ("y", "yes"):
            return True
        print("nothing done", file=sys.stderr)
        return False

    def continuing(verb: str) -> Handler:
        def handler(args: argparse.Namespace) -> int:
            settings = {
                name: value
                for name in kind.resume_settings
                if (value := getattr(args, name, None)) is not None
            }
            if args.board:
                run = in_process(args).queue_resume(
                    kind.name,
                    args.run,
                    args.board,
                    rollback=verb == "rollback",
                    settings=settings or None,
                )
                print(f"run {run.id} queued on {redact(args.board)}")
                return 0
            where = backend(args)
            observer = observer_for(sys.stderr, args.verbose)
            if verb == "resume":
                run = where.resume(
                    kind.name, args.run, observer, exports(args), settings=settings or None
                )
            else:
                run = where.rollback(kind.name, args.run, observer, exports(args))
            print(f"run {run.id} {run.state.value}")
            return exit_code(run, status_command)

        return handler

    def do_pause(args: argparse.Namespace) -> int:
        print(backend(args).pause(kind.name, args.run))
        return 0

    def do_abort(args: argparse.Namespace) -> int:
        print(backend(args).abort(kind.name, args.run, observer_for(sys.stderr, args.verbose)))
        return 0

    def do_status(args: argparse.Namespace) -> int:
        status = backend(args).status(kind.name, args.run)
        if args.format != "table":
            emit(status, args.format)
            return 0
        view = kind.view(status)
        for line in view.lines:
            print(line)
        for key, columns in view.tables:
            emit(status[key], "table", columns)
        return 0

    def do_list(args: argparse.Namespace) -> int:
        emit(backend(args).kind_runs(kind.name), args.format, list(kind.list_columns))
        return 0

    def do_preflight(args: argparse.Namespace) -> int:
        if args.url:
            raise UsageError(
                "preflight runs from this process, against the cloud of --os-cloud; a "
                "server runs it as the first stage of every run it starts"
            )
        rows = in_process(args).preflight(kind.name, body(args))
        emit(rows, args.format, ["check", "level", "subject", "message", "todo"])
        blocked = [row for row in rows if row["level"] == "block"]
        if blocked:
            print(f"ephyra: preflight: {len(blocked)} check(s) block", file=sys.stderr)
        return 1 if blocked else 0

    def do_finish(args: argparse.Namespace) -> int:
        print(backend(args).finish(kind.name, args.run, observer_for(sys.stderr, args.verbose)))
        return 0

    kind.add_options(action("plan", do_plan, verbs.plan))
    if kind.preflight_help:
        kind.add_options(action("preflight", do_preflight, kind.preflight_help))
    for add, verb in ((action, kind.start_verb), (parent, kind.start_alias)):
        if add is None or not verb:
            continue
        start = add(verb, do_start, verbs.start)
        kind.add_options(start)
        add_metrics_options(start)
        start.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        notify_option(start)
        board_option(start, "create the run and queue it on this board for `ephyra conductor`")
    run_help = "run id or a unique prefix (default: the latest unfinished run)"
    for verb, text in (("resume", verbs.resume), ("rollback", verbs.rollback)):
        p = action(verb, continuing(verb), text)
        p.add_argument("run", nargs="?", help=run_help)
        if verb == "resume":
            for name, text in kind.resume_settings.items():
                p.add_argument(
                    f"--{name}",
                    type=int,
                    metavar="N",
                    help=f"{text}, kept with the run (default: as the run has it)",
                )
        add_metrics_options(p)
        board_option(p, f"queue the run on this board for `ephyra conductor` to {verb}")
    for verb, handler, text in (
        ("pause", do_pause, verbs.pause),
        ("abort", do_abort, verbs.abort),
        ("status", do_status, verbs.status),
    ):
        action(verb, handler, text).add_argument("run", nargs="?", help=run_help)
    action("list", do_list, verbs.list)
    if kind.finish_help:
        finish = action("finish", do_finish, f"after a run that succeeded: {kind.finish_help}")
        latest = "run id or a unique prefix (default: the latest run that succeeded)"
        finish.add_argument("run", nargs="?", help=latest)


def notify_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--notify",
        action="append",
        metavar="NAME",
        help="tell this configured notifier of the run (repeatable; default: the configured "
        "default list; see docs/notifications.md)",
    )


def board_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument(
        "--board",
        default=None,
        metavar="URL",
        help=f"{text} (etcd3+http://HOST:PORT[/PATH][?ttl=SECONDS], see docs/distributed.md; "
        "default: none, this process drives the run)",
    )


def format_option(parser: argparse.ArgumentParser, default: str = "table") -> None:
    parser.add_argument(
        "-f", "--format", choices=FORMATS, default=default, help="output format (table)"
    )


def add_metrics_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on 127.0.0.1:PORT while the run goes",
    )
    parser.add_argument(
        "--metrics-textfile",
        metavar="FILE",
        help="write Prometheus metrics to FILE (node_exporter textfile collector)",
    )


def exports(args: argparse.Namespace) -> Exports:
    from ephyra.engine.metrics import Exports

    textfile = Path(args.metrics_textfile) if args.metrics_textfile else None
    return Exports(port=args.metrics_port, textfile=textfile)


def exit_code(run: RunInfo, status_command: str) -> int:
    """0 done, 130 stopped on request (resumable), 1 otherwise, saying why."""
    state = run.state
    if state in (RunState.SUCCEEDED, RunState.ROLLED_BACK):
        return 0
    if state is RunState.ABORTED or (state is RunState.PAUSED and not run.meta.get("reason")):
        return 130
    why = run.meta.get("reason") or f"see {status_command}"
    print(f"ephyra: run {run.short} {state.value}: {why}", file=sys.stderr)
    return 1
