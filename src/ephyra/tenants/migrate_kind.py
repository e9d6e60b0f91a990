"""The tenant migration run: a project's workload moved from cloud A to cloud B
(``ephyra tenant migrate PROJECT --from A --to B``).

Several at once are bounded: every server move (snapshot, copy, boot, stop) and every
image copy of a tenant migration into B holds one of B's slots, ``tenant-migration into
B`` (:mod:`ephyra.engine.slots`, on the run's lock backend: every process and machine on
it shares them). ``--concurrency N`` is how many slots a run uses (slots 0..N-1: runs with
the same N share exactly N, with different Ns at most the largest); a slot holds at most
``--bytes-in-flight / N`` bytes of images in flight, so runs that agree on both numbers
have at most ``--bytes-in-flight`` bytes in flight into B between them.
"""

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
from ephyra.tenants.kind import tenant_lock  # as the freeze's: a migration holds A's
from ephyra.tenants.migrate_records import (
    DEFAULT_BYTES_IN_FLIGHT,
    DEFAULT_CONCURRENCY,
    DEFAULT_MIGRATOR_ROLE,
    OUTCOMES,
    MigrationDetail,
    MigrationMeta,
)
from ephyra.tenants.records import Outcome

if TYPE_CHECKING:
    from ephyra.engine.driver import RunDriver
    from ephyra.engine.journal import Journal, RunInfo
    from ephyra.engine.metrics import RunMetrics
    from ephyra.progress import Observer
    from ephyra.tenants.migrate_body import TenantMigrationBody
    from ephyra.tenants.migrate_plan import MigrationPlan

#: The command group of the migration's verbs (``ephyra tenant migrate|plan|status...``).
COMMAND = "tenant"


class TenantMigrationKind(RunKind["MigrationPlan"]):
    name = "tenant-migration"
    rank = 41
    command = COMMAND
    start_verb = "migrate"
    start_action = "tenant:migrate"
    summary = "projects (tenants): maintenance through Keystone, moves to another cloud"
    verbs = Verbs(
        plan="what a move would bring to B, what stays and why, and its bytes (a dry run)",
        start="move a project's workload from one cloud to another (frozen meanwhile)",
        rollback="take a move back: B without what the run made, A's servers started again",
        pause="ask a running move to stop at its next step",
        abort="stop a move for good (as it is, for rollback)",
        status="where a move is, and each resource it brought",
        list="every tenant migration in the journal",
    )
    items, item_name = "projects", "project"
    list_columns = ("id", "state", "source", "target", "project", "finished", "created")
    after_abort = "both clouds stay as the run left them until rollback"
    resume_settings = {"concurrency": "slots of cloud B used: server moves and image copies"}
    finish_help = "delete A's stopped originals and the transfer images"

    # -- a start request ---------------------------------------------------------------
    def body_type(self) -> type[TenantMigrationBody]:
        from ephyra.tenants.migrate_body import TenantMigrationBody

        return TenantMigrationBody

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("project", metavar="PROJECT", help="the project: its id or name")
        parser.add_argument(
            "--from",
            dest="source",
            default=os.environ.get("OS_CLOUD"),
            metavar="CLOUD",
            help="cloud A in clouds.yaml, an admin's (default: OS_CLOUD)",
        )
        parser.add_argument(
            "--to", dest="target", required=True, metavar="CLOUD", help="cloud B in clouds.yaml"
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=DEFAULT_CONCURRENCY,
            metavar="N",
            help="slots of cloud B this run uses: a server move or an image copy holds one, "
            "and every tenant migration into B shares them (runs with the same N: N moves "
            f"into B at once between them; different Ns: the largest) ({DEFAULT_CONCURRENCY})",
        )
        parser.add_argument(
            "--bytes-in-flight",
            type=int,
            default=DEFAULT_BYTES_IN_FLIGHT,
            metavar="BYTES",
            help="bytes of images read from A and not yet written to B, at most: each of "
            "the N slots holds BYTES/N (at least 65536), so the migrations into B that give "
            f"the same BYTES and N stay under BYTES between them ({DEFAULT_BYTES_IN_FLIGHT})",
        )
        parser.add_argument(
            "--role",
            default=DEFAULT_MIGRATOR_ROLE,
            metavar="ROLE",
            help="the role the run's user holds on the project while the move makes its "
            f"things on B ({DEFAULT_MIGRATOR_ROLE})",
        )
        parser.add_argument(
            "--split-inherited",
            action="store_true",
            help="freeze writers that inherit their role too (see tenant maintenance)",
        )

    def body_of(self, args: argparse.Namespace) -> TenantMigrationBody:
        if not args.source:
            raise UsageError("name cloud A: --from CLOUD or OS_CLOUD")
        return self.body_type().build(
            source=check_name(args.source, "--from"),
            target=check_name(args.target, "--to"),
            project=check_name(args.project, "PROJECT"),
            concurrency=args.concurrency,
            bytes_in_flight=args.bytes_in_flight,
            role=check_name(args.role, "--role"),
            split_inherited=args.split_inherited,
        )

    def question(self, plan: Mapping[str, Any]) -> str:
        count = plan["counts"].get("create", 0)
        return (
            f"Move {plan['project_name']} from {plan['source']} to {plan['target']}: "
            f"{count} to create, {plan['total_bytes']} bytes? [y/N] "
        )

    def claims(self, body: TenantMigrationBody) -> list[str]:
        return []

    # -- planning ----------------------------------------------------------------------
    def plan(self, body: TenantMigrationBody, resolver: Resolver) -> MigrationPlan:
        from ephyra.tenants.migrate_plan import make_plan

        return make_plan(
            body.source,
            body.target,
            body.project,
            split_inherited=body.split_inherited,
            settings={
                "concurrency": body.concurrency,
                "bytes_in_flight": body.bytes_in_flight,
                "role": body.role,
            },
        )

    def shown(self, plan: MigrationPlan, body: TenantMigrationBody) -> Shown:
        from ephyra.progress import rendered

        return Shown(plan.to_dict(), rendered(plan.tree()))

    def new_run(self, plan: MigrationPlan) -> NewRun:
        f = plan.freeze
        meta = MigrationMeta(plan.source, plan.target, f.project, f.project_name)
        return NewRun(
            {**meta.to_meta(), "settings": dict(plan.settings)},
            {
                meta.record: {
                    "freeze": f.to_dict(),
                    "settings": dict(plan.settings),
                    "plan": [r.to_dict() for r in plan.rows],
                    "mapping": {},
                },
                **{f"{phase.value}:{f.project}": {} for phase in Phase},
                f"finish:{f.project}": {},
            },
            [tenant_lock(plan.source, f.project), tenant_lock(plan.target, f.project)],
        )

    def locks_of(self, run: RunInfo) -> list[str]:
        meta = MigrationMeta.from_meta(run.meta)
        return [tenant_lock(meta.source, meta.project), tenant_lock(meta.target, meta.project)]

    def resumed(self, run: RunInfo, settings: Mapping[str, Any]) -> dict[str, Any]:
        from ephyra.tenants.migrate_body import bounds_problem

        merged = {**(run.meta.get("settings") or {}), **settings}
        concurrency = merged.get("concurrency")
        in_flight = merged.get("bytes_in_flight")
        problem = bounds_problem(
            DEFAULT_CONCURRENCY if concurrency is None else int(concurrency),
            DEFAULT_BYTES_IN_FLIGHT if in_flight is None else int(in_flight),
        )
        if problem:
            raise UsageError(problem)
        return {"settings": merged}

    # -- driving -----------------------------------------------------------------------
    def driver(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        plan: MigrationPlan | None = None,
    ) -> RunDriver:
        from ephyra.tenants.migrate_runner import TenantMigration

        return TenantMigration(
            journal, run, observer, metrics, identity=plan.identity if plan else None
        )

    # -- reading -----------------------------------------------------------------------
    def status(self, journal: Journal, run: RunInfo) -> RunStatus[MigrationDetail]:
        meta = MigrationMeta.from_meta(run.meta)
        data = journal.record(run.id, meta.record)
        forward, rollback = OUTCOMES.both(data)
        mapping: dict[str, dict[str, Any]] = data.get("mapping") or {}
        rows = []
        for planned in data.get("plan") or []:
            entry = mapping.get(f"{planned['kind']}:{planned['id']}") or {}
            state = entry.get("state") or ("stays" if planned["blocker"] else "pending")
            rows.append(
                {
                    "kind": planned["kind"],
                    "name": planned["name"],
                    "size": planned["size"],
                    "state": state,
                    "on_b": entry.get("b") or "",
                }
            )
        detail = MigrationDetail(
            meta,
            forward.value,
            rollback.value if rollback else "",
            str(data.get("error") or ""),
            bool(data.get("finished")),
            tuple(rows),
        )
        return RunStatus.of(run, detail)

    def view(self, status: Mapping[str, Any]) -> View:
        where = f" {status['project_name']} {status['source']} -> {status['target']}"
        return View(headline(status, where), [("resources", ["kind", "name", "size", "state"])])

    def row(self, run: RunInfo) -> dict[str, Any]:
        meta = MigrationMeta.from_meta(run.meta)
        return {
            "id": run.id,
            "kind": run.kind,
            "state": run.state.value,
            "source": meta.source,
            "target": meta.target,
            "project": meta.project_name or meta.project,
            "project_id": meta.project,
            "finished": bool(run.meta.get("finished")),
            "created": created(run),
        }

    def title(self, run: RunInfo) -> str:
        meta = MigrationMeta.from_meta(run.meta)
        return f"{meta.project_name or meta.project}: {meta.source} -> {meta.target}"

    def total(self, run: RunInfo) -> int:
        return 1

    def tally(self, run: RunInfo, outcomes: Mapping[str, str]) -> tuple[int, int]:
        found = list(outcomes.values())
        done = sum(1 for o in found if o in (Outcome.MOVED, Outcome.RESTORED))
        return done, sum(1 for o in found if o == Outcome.FAILED)
