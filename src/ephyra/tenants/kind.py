"""The tenant maintenance run: a project frozen read-only through Keystone role
assignments (``ephyra tenant maintenance on|off PROJECT``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ephyra.engine.kinds import (
    NewRun,
    Resolver,
    RunKind,
    RunStatus,
    Shown,
    Verbs,
    View,
    created,
    headline,
)
from ephyra.engine.states import Phase
from ephyra.errors import UsageError
from ephyra.names import check_name
from ephyra.tenants.records import (
    DEFAULT_WRITING,
    OUTCOMES,
    READER,
    Outcome,
    TenantDetail,
    TenantMeta,
)

if TYPE_CHECKING:
    from ephyra.engine.driver import RunDriver
    from ephyra.engine.journal import Journal, RunInfo
    from ephyra.engine.metrics import RunMetrics
    from ephyra.progress import Observer
    from ephyra.tenants.body import TenantMaintenanceBody
    from ephyra.tenants.plan import TenantPlan

#: The command group of the maintenance verbs (``ephyra tenant maintenance ...``).
COMMAND = "tenant maintenance"


def tenant_lock(cloud: str, project: str) -> str:
    """The lock of one project of ``cloud`` (its id): every run that changes it holds it."""
    return f"tenant {cloud}/{project}"


def _cloud(args: argparse.Namespace) -> str:
    if not args.os_cloud:
        raise UsageError("name the cloud: --os-cloud NAME or OS_CLOUD")
    return check_name(args.os_cloud, "--os-cloud")


def add_project_options(parser: argparse.ArgumentParser) -> None:
    """PROJECT and --os-cloud (``on``, ``plan`` and ``off``)."""
    parser.add_argument("project", metavar="PROJECT", help="the project: its id or name")
    parser.add_argument(
        "--os-cloud",
        default=os.environ.get("OS_CLOUD"),
        metavar="NAME",
        help="cloud from clouds.yaml, with an admin of its Keystone (default: OS_CLOUD)",
    )


def project_of(args: argparse.Namespace) -> tuple[str, str]:
    """The cloud and the project the command line names, checked."""
    return _cloud(args), check_name(args.project, "PROJECT")


class TenantMaintenanceKind(RunKind["TenantPlan"]):
    name = "tenant-maintenance"
    rank = 40
    command = COMMAND
    start_verb = "on"
    start_action = "tenant:maintenance"
    summary = "projects (tenants): maintenance mode through Keystone"
    verbs = Verbs(
        plan="what a freeze would change in Keystone (a dry run)",
        start="freeze a project: every writer gets the reader role instead",
        rollback="undo a freeze: the writers given back, the readers it added taken back",
        pause="ask a running freeze to stop at its next step",
        abort="stop a freeze for good (the project stays as it is, for rollback)",
        status="where a freeze is, and each assignment it changes",
        list="every tenant maintenance run in the journal",
    )
    items, item_name = "projects", "project"
    list_columns = ("id", "state", "cloud", "project", "created")
    after_abort = "the project stays as the run left it until rollback (off)"

    # -- a start request ---------------------------------------------------------------
    def body_type(self) -> type[TenantMaintenanceBody]:
        from ephyra.tenants.body import TenantMaintenanceBody

        return TenantMaintenanceBody

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        add_project_options(parser)
        parser.add_argument(
            "--writing-role",
            action="append",
            metavar="ROLE",
            help=f"a role that writes (repeatable; default: {', '.join(DEFAULT_WRITING)})",
        )
        parser.add_argument(
            "--reader-role", default=READER, metavar="ROLE", help="the role given instead (reader)"
        )
        parser.add_argument(
            "--split-inherited",
            action="store_true",
            help="a writer that inherits its role (from the domain or a parent project): "
            "replace the inherited assignment at its source by direct ones on every other "
            "project it reaches (default: refuse the plan, naming each)",
        )

    def body_of(self, args: argparse.Namespace) -> TenantMaintenanceBody:
        cloud, project = project_of(args)
        roles = args.writing_role or list(DEFAULT_WRITING)
        return self.body_type().build(
            cloud=cloud,
            project=project,
            writing_roles=[check_name(r, "--writing-role") for r in roles],
            reader_role=check_name(args.reader_role, "--reader-role"),
            split_inherited=args.split_inherited,
        )

    def question(self, plan: Mapping[str, Any]) -> str:
        return (
            f"Freeze {plan['project_name']}: {len(plan['grants'])} grant(s), "
            f"{len(plan['revokes'])} revoke(s)? [y/N] "
        )

    # -- planning ----------------------------------------------------------------------
    def plan(self, body: TenantMaintenanceBody, resolver: Resolver) -> TenantPlan:
        from ephyra.tenants.keystone import Identity
        from ephyra.tenants.plan import make_plan

        return make_plan(
            Identity.connect(body.cloud),
            body.project,
            body.writing_roles,
            body.reader_role,
            body.split_inherited,
        )

    def shown(self, plan: TenantPlan, body: TenantMaintenanceBody) -> Shown:
        from ephyra.progress import rendered

        return Shown(plan.to_dict(), rendered(plan.tree()))

    def new_run(self, plan: TenantPlan) -> NewRun:
        f = plan.freeze
        meta = TenantMeta(plan.cloud, f.project, f.project_name)
        return NewRun(
            meta.to_meta(),
            {
                meta.record: {"freeze": f.to_dict()},
                **{f"{phase.value}:{f.project}": {} for phase in Phase},
            },
            [tenant_lock(plan.cloud, f.project)],
        )

    def locks_of(self, run: RunInfo) -> list[str]:
        meta = TenantMeta.from_meta(run.meta)
        return [tenant_lock(meta.cloud, meta.project)]

    # -- driving -----------------------------------------------------------------------
    def driver(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        plan: TenantPlan | None = None,
    ) -> RunDriver:
        from ephyra.tenants.runner import TenantMaintenance

        return TenantMaintenance(
            journal, run, observer, metrics, identity=plan.identity if plan else None
        )

    # -- reading -----------------------------------------------------------------------
    def status(self, journal: Journal, run: RunInfo) -> RunStatus[TenantDetail]:
        from ephyra.tenants.freeze import Freeze

        meta = TenantMeta.from_meta(run.meta)
        data = journal.record(run.id, meta.record)
        forward, rollback = OUTCOMES.both(data)
        done: dict[str, str] = data.get("done") or {}
        changes: list[dict[str, Any]] = []
        if data.get("freeze"):
            freeze = Freeze.from_dict(data["freeze"])
            for change, grants in (("grant", freeze.grants), ("revoke", freeze.revokes)):
                changes.extend(
                    {
                        "change": change,
                        "assignment": freeze.said(g),
                        "state": done.get(g.path, "pending"),
                    }
                    for g in grants
                )
        detail = TenantDetail(
            meta.cloud,
            meta.project,
            meta.project_name,
            forward.value,
            rollback.value if rollback else "",
            str(data.get("error") or ""),
            tuple(changes),
        )
        return RunStatus.of(run, detail)

    def view(self, status: Mapping[str, Any]) -> View:
        where = f" {status['project_name']} on {status['cloud']}"
        tables = [("changes", ["change", "assignment", "state"])]
        return View(headline(status, where), tables)

    def row(self, run: RunInfo) -> dict[str, Any]:
        meta = TenantMeta.from_meta(run.meta)
        return {
            "id": run.id,
            "kind": run.kind,
            "state": run.state.value,
            "cloud": meta.cloud,
            "project": meta.project_name or meta.project,
            "project_id": meta.project,
            "created": created(run),
        }

    def title(self, run: RunInfo) -> str:
        meta = TenantMeta.from_meta(run.meta)
        return f"{meta.project_name or meta.project} on {meta.cloud}"

    def total(self, run: RunInfo) -> int:
        return 1

    def tally(self, run: RunInfo, outcomes: Mapping[str, str]) -> tuple[int, int]:
        found = list(outcomes.values())
        done = sum(1 for o in found if o in (Outcome.FROZEN, Outcome.RESTORED))
        return done, sum(1 for o in found if o == Outcome.FAILED)
