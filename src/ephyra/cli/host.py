"""``ephyra host``: compute hosts in maintenance, and emptied by live migration."""

from __future__ import annotations

import argparse
from typing import Any

from ephyra.cli import runs
from ephyra.cli.backend import backend
from ephyra.cli.output import emit
from ephyra.engine.kinds import cloud_of, cloud_option
from ephyra.names import check_name

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

reallocate HOST... --from A --to B --handover NAME
                          empty the hosts in A, then hand them over to cloud B
                          (`ephyra host reallocation status|rollback|...`: the run).

Servers that cannot be live-migrated get the fallback (--fallback cold: migrate and
confirm; stop: stop in place; skip: leave and report). A live migration that outlives
--migration-timeout is force-completed or aborted (--on-timeout), then gets the
fallback; a move still stuck after that is left and reported: nothing waits forever.

An evacuation is a run: status, pause, resume, abort and rollback (maintenance off where
the run put it on, stopped servers started again; servers stay where they were moved).
"""


def do_maintenance(args: argparse.Namespace) -> int:
    host = check_name(args.hostname, "HOST")
    print(backend(args).maintenance(cloud_of(args), host, args.switch == "on"))
    return 0


def do_hosts(args: argparse.Namespace) -> int:
    emit(
        backend(args).hosts(cloud_of(args)),
        args.format,
        ["host", "status", "state", "maintenance", "disabled_reason"],
    )
    return 0


def register(sub: Any, exit_codes: str) -> runs.Action:
    """``ephyra host``: its evacuation runs' commands are added from their run kind."""
    parser = sub.add_parser(
        "host",
        help="compute hosts: maintenance, evacuation, and reallocation to another cloud",
        description=DESCRIPTION,
        epilog=exit_codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.ephyra_host = actions  # for ``ephyra host reallocation``
    action = runs.verbs_of(actions, "host", exit_codes)
    maintenance = action(
        "maintenance", do_maintenance, "disable (on) or enable (off) a host's nova-compute"
    )
    maintenance.add_argument("switch", choices=["on", "off"])
    maintenance.add_argument("hostname", metavar="HOST")
    cloud_option(maintenance)
    cloud_option(action("show", do_hosts, "the compute hosts, with their maintenance state"))
    return action


def register_reallocation(sub: Any, exit_codes: str) -> runs.Action:
    """``ephyra host reallocation``, nested in ``ephyra host`` (made first: the evacuation
    kind ranks before): the reallocation kind's verbs are added from the kind."""
    from ephyra.compute.realloc_kind import ReallocationKind

    return runs.command_group(
        sub.ephyra_host,
        "reallocation",
        ReallocationKind.summary,
        ReallocationKind.description,
        exit_codes,
    )
