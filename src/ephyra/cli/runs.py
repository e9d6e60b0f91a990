"""What every run command shares: metrics options, and the exit code a run ends with."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ephyra.cli import audit
from ephyra.cli.backend import backend
from ephyra.cli.output import emit
from ephyra.engine.states import RunState
from ephyra.progress import observer_for

if TYPE_CHECKING:  # pydantic, SQLAlchemy, prometheus_client: not for building the parser
    from ephyra.api.bodies import Body
    from ephyra.engine.journal import RunInfo
    from ephyra.metrics import Exports

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

    def action(verb: str, handler: Handler, helptext: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(
            verb,
            help=helptext,
            description=helptext,
            epilog=exit_codes,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=audit.recorded(name, verb, handler))  # writes: in the trail
        return p

    return action


def continuing(kind: str, action: str, status_command: str) -> Handler:
    """A handler for resume and rollback: they take a run and drive it (in this process,
    or in the server of --url, showing its progress here)."""

    def handler(args: argparse.Namespace) -> int:
        where = backend(args)
        operation = where.resume if action == "resume" else where.rollback
        run = operation(kind, args.run, observer_for(sys.stderr, args.verbose), exports(args))
        print(f"run {run.id} {run.state.value}")
        return exit_code(run, status_command)

    return handler


def starting(
    args: argparse.Namespace,
    kind: str,
    body: Body,
    question: Callable[[dict[str, Any]], str],
    status_command: str,
) -> int:
    """Plan and start a run, asking first on a terminal (unless --yes)."""
    where = backend(args)
    if sys.stdin.isatty() and not args.yes:
        shown = where.plan(kind, body)
        print(shown["text"])
        if input(question(shown["plan"])).strip().lower() not in ("y", "yes"):
            print("nothing done", file=sys.stderr)
            return 2
    run = where.start(kind, body, observer_for(sys.stderr, args.verbose), exports=exports(args))
    print(f"run {run.id} {run.state.value}")
    return exit_code(run, status_command)


def show_plan(args: argparse.Namespace, kind: str, body: Body) -> int:
    shown = backend(args).plan(kind, body)
    if args.format == "table":
        print(shown["text"], end="")
    else:
        emit(shown["plan"], args.format)
    return 0


def simple(action: str, kind: str) -> Handler:
    """A handler for pause and abort: they say what they did."""

    def handler(args: argparse.Namespace) -> int:
        where = backend(args)
        if action == "pause":
            print(where.pause(kind, args.run))
        elif action == "abort":
            print(where.abort(kind, args.run, observer_for(sys.stderr, args.verbose)))
        return 0

    return handler


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
    from ephyra.metrics import Exports

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
