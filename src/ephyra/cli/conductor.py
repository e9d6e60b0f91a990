"""``ephyra conductor``: a worker that claims runs posted on a board and drives them."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from ephyra.cli.output import emit
from ephyra.cli.runs import add_metrics_options, exports
from ephyra.errors import UsageError
from ephyra.progress import PlainObserver
from ephyra.signals import on_stop

if TYPE_CHECKING:  # TaskFlow, SQLAlchemy, etcd: imported when a conductor starts
    from ephyra.engine.board import Board
    from ephyra.engine.journal import Journal

#: ``ephyra.engine.conductor.RETRY_DELAY``, said in --help without importing the engine
#: (TaskFlow); a test checks that the two agree.
RETRY_DELAY_SHOWN = 2.0

DESCRIPTION = """\
Claim the runs posted on a board (`ephyra upgrade|forklift start --board URL`, `ephyra
host evacuate --board URL`, `... resume|rollback --board URL`) one at a time, and drive
each from the journal as `resume` would, here. Start one on each of several
machines, with the same --board, --journal and --locks: a run goes on wherever a
conductor is alive.

board     etcd3+https://[USER@]HOST:PORT[/PATH]?ca_cert=FILE&cert_cert=FILE&cert_key=FILE
          [&ttl=SECONDS] (etcd3+http://HOST:PORT[/PATH] without TLS): TaskFlow's etcd
          jobboard, its jobs under /taskflow/jobs/PATH (default ephyra). A claim is an
          etcd lease of ttl seconds (default 10), extended every ttl/3 while the run goes.
          USER's password: EPHYRA_ETCD_PASSWORD or &password_file=FILE.
journal   --journal: the runs' journal, shared by every conductor and by the commands
          that post and watch runs: a PostgreSQL URL, postgresql+psycopg2://USER@HOST/DB.
locks     --locks: the runs' locks, shared too: the same etcd URL with &lock_timeout=S.

One line per job on standard output: claimed, resuming, finished (the job consumed:
the run ended, or paused by its policy or an operator), abandoned (the job left on the
board: the run's locks are still held, e.g. by a conductor that died and whose lock
lease has not run out, or resuming failed; claimed again after --retry-delay). The
run's progress goes to standard error.

A conductor that dies (kill -9, a machine lost) stops extending its claim: after at
most ttl seconds another conductor claims the job and resumes the run where the
journal says it is (steps recorded as done are not done again; a step cut in the
middle is done again). SIGTERM or Ctrl-C asks the run to pause at its next step
boundary, then gives its job back: another conductor resumes it at once. A conductor
that loses its claim (or a lock of the run) stops the step in flight within ttl/3 and
ends its commands (SIGTERM, then SIGKILL 1s later); the run is handed over.

metrics   --metrics-port / --metrics-textfile: the conductor's jobs
          (ephyra_conductor_jobs_total{event=claimed|consumed|abandoned|handed_back|
          claim_lost}, ephyra_conductor_driving) and the metrics of the run it drives.
"""

#: Tries at opening the journal before giving up.


def _warn_local(args: argparse.Namespace, journal: Journal) -> None:
    """Say so when the journal or the locks cannot be shared with other machines."""
    if journal.url.startswith("sqlite"):
        print(
            f"ephyra: warning: the journal {journal.url} is a file: only conductors on "
            "this machine share it (--journal postgresql+psycopg2://...)",
            file=sys.stderr,
        )
    if not (args.locks or "").startswith("etcd3"):
        print(
            "ephyra: warning: locks are files: only conductors on this machine exclude "
            "each other (--locks etcd3+https://[USER@]HOST:PORT?...&lock_timeout=S)",
            file=sys.stderr,
        )


def do_list(board: Board, fmt: str) -> int:
    rows = [
        {"job": j.sequence, "kind": j.kind, "run": j.run, "claimed by": j.owner or ""}
        for j in board.jobs()
    ]
    emit(rows, fmt, ["job", "kind", "run", "claimed by"])
    return 0


def do_conductor(args: argparse.Namespace) -> int:
    from ephyra.engine.board import Board
    from ephyra.engine.conductor import RETRY_DELAY, TASKFLOW_LOG, RunConductor, default_name
    from ephyra.engine.journal import Journal

    if not args.board:
        raise UsageError("name the board: --board etcd3+https://HOST:PORT?... (or EPHYRA_BOARD)")
    journal = Journal(args.journal)
    board = Board(args.board, journal)
    if args.list:
        with board:
            return do_list(board, args.format)
    _warn_local(args, journal)
    if not args.debug:  # TaskFlow's own warnings repeat, with tracebacks, the lines below
        logging.getLogger(TASKFLOW_LOG).setLevel(logging.ERROR)
    conductor = RunConductor(
        args.name or default_name(),
        board,
        journal,
        PlainObserver(sys.stderr, args.verbose),
        sys.stdout,
        lock_url=args.locks,
        retry_delay=RETRY_DELAY if args.retry_delay is None else args.retry_delay,
        exports=exports(args),
    )
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            conductor.serve()
        except BaseException as exc:
            failure.append(exc)

    def stop(sig: signal.Signals) -> None:
        if conductor.stopping:
            conductor.say(
                f"{sig.name}: stopping already; kill -9 leaves at once (another conductor "
                f"resumes the run when the claim runs out, within {board.ttl}s)"
            )
            return
        conductor.shutdown(sig.name)

    with board, on_stop(stop):
        worker = threading.Thread(target=serve, name="ephyra-conductor")
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
    if failure:
        raise failure[0]
    return 130 if conductor.handed_back else 0


def register(sub: Any, exit_codes: str) -> None:
    codes = exit_codes + (
        "\na conductor exits 0 when stopped (SIGTERM, Ctrl-C) with no run in hand, 130 when\n"
        "stopped with one (the run paused at a step boundary, its job back on the board),\n"
        "4 when it loses the board (etcd).\n"
    )
    parser = sub.add_parser(
        "conductor",
        help="a worker driving the runs posted on a board (etcd); run several",
        description=DESCRIPTION,
        epilog=codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--board",
        default=os.environ.get("EPHYRA_BOARD"),
        metavar="URL",
        help="etcd3+https://[USER@]HOST:PORT[/PATH]?ca_cert=FILE&cert_cert=FILE&cert_key=FILE"
        "[&ttl=SECONDS] (default: EPHYRA_BOARD)",
    )
    parser.add_argument(
        "--name",
        metavar="NAME",
        help="this conductor's name on its claims (default: HOSTNAME-PID)",
    )
    parser.add_argument(
        "--retry-delay",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"wait before claiming again a job given back for a lock held or an error "
        f"({RETRY_DELAY_SHOWN:g})",
    )
    add_metrics_options(parser)
    parser.add_argument(
        "--list",
        action="store_true",
        help="print the jobs on the board (run, who claimed it) and exit",
    )
    parser.set_defaults(handler=do_conductor)
