"""``ephyra tenant plan|migrate|status|list|pause|resume|abort|rollback|finish``: the
tenant migration run kind's verbs, directly in the ``ephyra tenant`` group (beside
``ephyra tenant maintenance ...``), and ``finish``."""

from __future__ import annotations

import argparse
import sys

from ephyra.cli import runs
from ephyra.cli.backend import in_process
from ephyra.cli.tenant import tenant_group
from ephyra.engine.states import RunState
from ephyra.errors import IllegalTransition, UsageError
from ephyra.progress import observer_for
from ephyra.tenants.migrate_kind import TenantMigrationKind


def register(sub: object, exit_codes: str) -> runs.Action:
    """The verbs of ``ephyra tenant`` (the run kind's are added from the kind), and
    ``finish``."""
    action = runs.verbs_of(tenant_group(sub), "tenant", exit_codes)
    finish = action(
        "finish",
        do_finish,
        "after a move that succeeded: delete A's stopped originals and the transfer images",
    )
    finish.add_argument("run", nargs="?", help="run id or a unique prefix (default: the latest)")
    return action


def do_finish(args: argparse.Namespace) -> int:
    from ephyra.engine.metrics import RunMetrics
    from ephyra.tenants.migrate_records import Outcome

    if args.url:
        raise UsageError("finish runs in-process: give --journal, not --url")
    kind = TenantMigrationKind()
    here = in_process(args)
    service = here.service(kind.name)
    run = service.find(args.run, frozenset({RunState.SUCCEEDED}))
    if run.state is not RunState.SUCCEEDED:
        raise IllegalTransition(
            f"run {run.short} is {run.state.value}: only a moved tenant finishes"
        )
    if run.meta.get("finished"):
        print(f"run {run.id} finished already")
        return 0
    with service.holding(service.locks(run)) as held:
        observer = observer_for(sys.stderr, args.verbose)
        driver = kind.driver(service.journal, run, observer, RunMetrics(kind.name, run.id))
        driver.locks = held
        outcome = driver.finish()  # type: ignore[attr-defined]
        if outcome is Outcome.MOVED:
            service.journal.save_run(run, finished=True)
    if outcome is not Outcome.MOVED:
        print(f"ephyra: run {run.short}: finish {outcome.value}", file=sys.stderr)
        return 1
    print(f"run {run.id} finished")
    return 0
