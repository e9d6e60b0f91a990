"""What every run command shares: metrics options, and the exit code a run ends with."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ephyra.engine.journal import RunInfo
from ephyra.engine.states import RunState
from ephyra.metrics import Exports


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
