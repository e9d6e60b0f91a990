"""``ephyra tenant``: projects (tenants). ``ephyra tenant maintenance ...`` holds the verbs
of the tenant maintenance run kind, and ``off``; ``ephyra tenant`` stays free for other
groups of its own (each run kind a nested group)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ephyra.cli import runs
from ephyra.cli.backend import backend
from ephyra.engine.states import RunState
from ephyra.errors import UsageError
from ephyra.progress import observer_for
from ephyra.tenants.kind import TenantMaintenanceKind, add_project_options, project_of

DESCRIPTION = """\
Projects (tenants) of a cloud, one by one.

maintenance ...   freeze a project read-only through Keystone, and undo it.
"""

MAINTENANCE = """\
Maintenance mode of a project, through Keystone's role assignments.

on PROJECT       every user and group holding a writing role on the project (member,
                 manager, admin; --writing-role) gets the reader role instead: direct
                 and group assignments, and with --split-inherited those inherited from
                 the domain or a parent project. What it changes is written down first,
                 in the journal and in the project itself (its ephyra_maintenance
                 property, its ephyra-maintenance tag).
off PROJECT      undo the freeze of that project (the rollback of the run that froze
                 it): its writers given back, the roles it added taken back. What
                 someone else changed meanwhile is kept. Nothing frozen: nothing done.
plan PROJECT     what `on` would change (a dry run).

A freeze is a run: status, list, pause, resume, abort and rollback RUN as every run.
See docs/tenants.md (tokens already issued keep their roles until they are validated
again: what to configure).
"""


def tenant_group(sub: Any) -> Any:
    """The subcommands of ``ephyra tenant`` (made once), for each nested group to join."""
    made = getattr(sub, "ephyra_tenant", None)  # kept on the parser it was added to
    if made is None:
        parser = sub.add_parser(
            "tenant",
            help="projects (tenants): maintenance through Keystone, and moves to another cloud",
            description=DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        made = sub.ephyra_tenant = parser.add_subparsers(
            dest="group", metavar="GROUP", required=True
        )
    return made


def register_maintenance(sub: Any, exit_codes: str) -> runs.Action:
    """``ephyra tenant maintenance``: its run kind's verbs are added from the kind; ``off``
    here."""
    action = runs.command_group(
        tenant_group(sub),
        "maintenance",
        "a project read-only (maintenance on), and back (off)",
        MAINTENANCE,
        exit_codes,
    )
    off = action("off", do_off, "undo the freeze of a project (nothing frozen: nothing done)")
    add_project_options(off)
    runs.add_metrics_options(off)
    return action


def frozen_by(rows: list[dict[str, Any]], cloud: str, project: str) -> str | None:
    """The run (its id) whose freeze of ``project`` (id or name) on ``cloud`` is not undone:
    the latest, if several."""
    found = [
        row
        for row in rows
        if row.get("cloud") == cloud
        and project in (row.get("project"), row.get("project_id"))
        and row.get("state") != RunState.ROLLED_BACK.value
    ]
    return str(found[-1]["id"]) if found else None


def not_elsewhere(cloud: str, project: str) -> None:
    """Refuse if the project is frozen by a run this journal does not have (its record in
    Keystone names the run): it is that run's journal that can undo it."""
    from ephyra.tenants.keystone import RECORD, Identity

    found = Identity.connect(cloud).project(project)
    theirs = (found.record or {}).get("run")
    if theirs:
        raise UsageError(
            f"{found.name} is in maintenance by run {theirs} (its {RECORD} property in "
            "Keystone), which this journal does not have: run `off` with that run's journal "
            "(--journal or EPHYRA_JOURNAL)"
        )


def do_off(args: argparse.Namespace) -> int:
    cloud, project = project_of(args)
    kind = TenantMaintenanceKind.name
    where = backend(args)
    run = frozen_by(where.kind_runs(kind), cloud, project)
    if run is None:
        if not args.url:
            not_elsewhere(cloud, project)
        print(f"{project}: no maintenance of it to undo on {cloud}")
        return 0
    done = where.rollback(kind, run, observer_for(sys.stderr, args.verbose), runs.exports(args))
    print(f"run {done.id} {done.state.value}")
    return runs.exit_code(done, f"ephyra {TenantMaintenanceKind.command} status")
