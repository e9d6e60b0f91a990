"""The host reallocation run: compute hosts emptied in cloud A and handed over to cloud B
(``ephyra host reallocate HOST... --from A --to B --handover NAME``), and back on rollback.

It is an evacuation whose hosts go on to leave A and join B (:mod:`ephyra.compute.realloc_steps`):
the same limits, status and records, with two clouds and a hand-over the operator configured
(:mod:`ephyra.strategies.handover`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ephyra.compute.kind import EvacuationKind, batching
from ephyra.compute.records import Outcome, ReallocationMeta
from ephyra.engine.kinds import (
    NewRun,
    Resolver,
    RunStatus,
    Shown,
    Verbs,
    View,
    created,
    from_to_of,
    from_to_options,
    going_back,
    headline,
    host_lock,
)
from ephyra.engine.states import Phase
from ephyra.names import check_name

if TYPE_CHECKING:
    from ephyra.compute.body import ReallocateBody
    from ephyra.compute.realloc_plan import ReallocationPlan
    from ephyra.engine.driver import RunDriver
    from ephyra.engine.journal import Journal, RunInfo
    from ephyra.engine.metrics import RunMetrics
    from ephyra.progress import Observer

#: The command group of its verbs: ``ephyra host reallocation plan|start|status...``; its
#: start is also ``ephyra host reallocate``.
COMMAND = "host reallocation"


def realloc_locks(meta: ReallocationMeta) -> list[str]:
    """One lock per host in each cloud, in a fixed order: no evacuation or other
    reallocation touches the host in either while this run holds it."""
    return sorted(
        {host_lock(cloud, host) for host in meta.hosts for cloud in (meta.cloud, meta.to)}
    )


class ReallocationKind(EvacuationKind):
    name = "host-reallocation"
    rank = 31
    keeps = False  # a host handed over keeps no server: stop and notify become cold
    command = COMMAND
    start_verb = "start"
    start_alias = "reallocate"
    start_action = "host:reallocate"
    summary = "compute hosts handed over from one cloud to another"
    description = """\
Compute hosts moved from cloud A (--from) to cloud B (--to): each host is put in
maintenance and emptied in A (live migration within the limits, as `ephyra host
evacuate`), its nova-compute stopped by the hand-over and its service, compute node
and resource provider removed from A (never while Placement holds allocations on it),
then pointed at B by the hand-over, registered, mapped to B's cell, checked (resource
provider, inventory, custom traits and aggregates carried over) and enabled in B.

`ephyra host reallocate HOST... --from A --to B --handover NAME` starts one. The
hand-over NAME is configured by the operator in handovers.yaml (docs/compute.md).

rollback brings each host back to A the same way (emptied in B first), its service
in A as it was before the run.
"""
    verbs = Verbs(
        plan="what a reallocation would do, with both clouds' capacity (a dry run)",
        start="hand compute hosts over from cloud A to cloud B, showing progress",
        rollback="bring the hosts back to cloud A the same way",
        pause="ask a running reallocation to stop at its next step",
        abort="stop a reallocation for good (hosts stay where they are, for rollback)",
        status="where a reallocation, its hosts and their servers are",
        list="every host reallocation in the journal",
    )
    list_columns: ClassVar[tuple[str, ...]] = (
        "id",
        "kind",
        "state",
        "from",
        "to",
        "hosts",
        "created",
    )
    also_lists: ClassVar[tuple[str, ...]] = ()
    after_abort = "its hosts stay where they are until rollback"
    done_outcomes = (Outcome.HANDED_OVER, Outcome.HANDED_BACK)

    def body_type(self) -> type[ReallocateBody]:
        from ephyra.compute.body import ReallocateBody

        return ReallocateBody

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        from_to_options(parser, "the hosts")
        add = parser.add_argument
        add("hosts", nargs="+", metavar="HOST", help="compute host(s) of A to hand over")
        add(
            "--handover",
            required=True,
            metavar="NAME",
            help="how a host leaves A and joins B: a hand-over of handovers.yaml",
        )
        add(
            "--register-timeout",
            type=float,
            default=600.0,
            metavar="S",
            help="longest wait for a host's nova-compute to register in the cloud it joins (600)",
        )
        self.add_drain_options(parser)

    def body_of(self, args: argparse.Namespace) -> ReallocateBody:
        source, target = from_to_of(args)
        return self.body_type().build(
            cloud=source,
            to=target,
            handover=check_name(args.handover, "--handover"),
            register_timeout=args.register_timeout,
            **self.drain_values(args),
        )

    def question(self, plan: Mapping[str, Any]) -> str:
        servers = sum(len(h["servers"]) for h in plan["hosts"])
        return (
            f"Hand {len(plan['hosts'])} host(s) over from {plan['from']} to {plan['to']}, "
            f"moving {servers} server(s)? [y/N] "
        )

    # -- planning ----------------------------------------------------------------------
    def claims(self, body: ReallocateBody) -> list[str]:  # type: ignore[override]
        return realloc_locks(ReallocationMeta(body.cloud, tuple(body.hosts), to=body.to))

    def plan(self, body: ReallocateBody, resolver: Resolver) -> ReallocationPlan:  # type: ignore[override]
        from ephyra.compute.nova import ComputeCloud
        from ephyra.compute.realloc_plan import make_realloc_plan

        return make_realloc_plan(
            ComputeCloud.connect(body.cloud),
            ComputeCloud.connect(body.to),
            body.hosts,
            self.settings(body),
            body.handover,
            batching(body),
        )

    def shown(self, plan: ReallocationPlan, body: ReallocateBody) -> Shown:  # type: ignore[override]
        from ephyra.progress import rendered

        return Shown(plan.to_dict(), rendered(plan.tree()))

    def new_run(self, plan: ReallocationPlan) -> NewRun:  # type: ignore[override]
        evacuation = plan.evacuation
        hosts = tuple(h.host for h in evacuation.hosts)
        meta = ReallocationMeta(
            evacuation.cloud,
            hosts,
            settings=evacuation.settings.to_meta(),
            batches=evacuation.batches,
            to=plan.to,
            handover=plan.handover,
        )
        records: dict[str, dict[str, Any]] = {
            f"{what}:{host}": {} for host in hosts for what in ("host", "back", *Phase)
        }
        return NewRun(meta.to_meta(), records, realloc_locks(meta))

    def locks_of(self, run: RunInfo) -> list[str]:
        return realloc_locks(ReallocationMeta.from_meta(run.meta))

    def driver(  # type: ignore[override]
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        plan: ReallocationPlan | None = None,
    ) -> RunDriver:
        from ephyra.compute.realloc_runner import Reallocation

        return Reallocation(
            journal,
            run,
            observer,
            metrics,
            cloud=plan.evacuation.compute if plan else None,
            target=plan.target if plan else None,
        )

    # -- reading -----------------------------------------------------------------------
    def status(self, journal: Journal, run: RunInfo) -> RunStatus[Any]:
        found = super().status(journal, run)
        meta = ReallocationMeta.from_meta(run.meta)
        return RunStatus.of(run, _Detail(found.detail, meta.to))

    def view(self, status: Mapping[str, Any]) -> View:
        tables = [
            ("hosts", ["host", "forward", "rollback", "drain_seconds", "error"]),
            ("servers", ["name", "project", "from", "how", "outcome", "to", "detail"]),
        ]
        where = f" from {status['cloud']} to {status['to']}"
        if status["phase"] != Phase.ROLLBACK.value:
            return View(headline(status, where), tables)
        back = {
            "handed-back": f"back in {status['cloud']}",
            "running": "on their way back",
            "interrupted": "stopped on their way back",
            "failed": "failed on their way back",
            "halted": "halted on their way back (servers left in B)",
        }
        forward = {
            "handed-over": f"in {status['to']}",
            "pending": "never moved",
            "running": "caught mid-move",
            "halted": "halted mid-drain, in maintenance",
            "failed": "failed mid-move",
            "interrupted": "stopped mid-move",
        }
        said = going_back(status["hosts"], back, forward, "host")
        return View(headline(status, where, said), tables)

    def row(self, run: RunInfo) -> dict[str, Any]:
        meta = ReallocationMeta.from_meta(run.meta)
        return {
            "id": run.id,
            "kind": run.kind,
            "state": run.state.value,
            "from": meta.cloud,
            "to": meta.to,
            "hosts": ",".join(meta.hosts),
            "created": created(run),
        }

    def title(self, run: RunInfo) -> str:
        meta = ReallocationMeta.from_meta(run.meta)
        return f"{', '.join(meta.hosts)} from {meta.cloud} to {meta.to}"


class _Detail:
    """An evacuation's part of the status, and the cloud the hosts join."""

    def __init__(self, detail: Any, to: str) -> None:
        self._detail = detail
        self.to = to

    def where(self) -> dict[str, Any]:
        return {**self._detail.where(), "to": self.to}

    def lists(self) -> dict[str, Any]:
        return dict(self._detail.lists())
