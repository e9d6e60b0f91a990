"""``ephyra upgrade approve`` and ``ephyra upgrade step``: the upgrade run kind's own verbs
(:mod:`ephyra.upgrade.approvals`), beside the verbs every run kind has."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ephyra.cli import runs
from ephyra.cli.backend import backend
from ephyra.progress import observer_for
from ephyra.upgrade.approvals import STEPPED

if TYPE_CHECKING:
    from ephyra.engine.journal import RunInfo

STATUS = "ephyra upgrade status"
RUN_HELP = "run id or a unique prefix (default: the latest unfinished run)"


def do_approve(args: argparse.Namespace) -> int:
    from ephyra.cli.audit import os_user

    observer = observer_for(sys.stderr, args.verbose)
    run = backend(args).approve(
        args.run, observer, runs.exports(args), stage=args.stage, by=os_user()
    )
    print(f"run {run.id} {run.state.value}")
    return _exit(run)


def do_step(args: argparse.Namespace) -> int:
    observer = observer_for(sys.stderr, args.verbose)
    run = backend(args).step(args.run, observer, runs.exports(args))
    print(f"run {run.id} {run.state.value}")
    return _exit(run)


def _exit(run: RunInfo) -> int:
    """As any run's command; a run paused after the stage a step ran is done: 0."""
    if str(run.meta.get("reason") or "").startswith(STEPPED):
        print(f"ephyra: run {run.short}: {run.meta['reason']}", file=sys.stderr)
        return 0
    return runs.exit_code(run, STATUS)


def register(action: runs.Action) -> None:
    """Add approve and step to the ``ephyra upgrade`` group (``action``)."""
    approve = action(
        "approve",
        do_approve,
        "approve the stage the run waits at (or --stage NAME), then resume it, here or "
        "through --url; who approved is kept with the run and in the audit trail",
    )
    approve.add_argument("run", nargs="?", help=RUN_HELP)
    approve.add_argument(
        "--stage",
        metavar="NAME",
        help="the stage approved, as the plan names it (default: the first stage still "
        "to do that waits for an approval)",
    )
    runs.add_metrics_options(approve)
    step = action(
        "step",
        do_step,
        "run the next stage still to do of a paused run, alone, then pause it again "
        "(exit 0 when it did; a stage that waits for an approval still waits)",
    )
    step.add_argument("run", nargs="?", help=RUN_HELP)
    runs.add_metrics_options(step)
