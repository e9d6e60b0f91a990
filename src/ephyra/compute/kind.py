"""The evacuation run: empty compute hosts by live migration, within budgets."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ephyra.compute.records import (
    OUTCOMES,
    EvacuationDetail,
    EvacuationMeta,
    HostStatus,
    Outcome,
    ServerStatus,
)
from ephyra.engine.kinds import (
    NewRun,
    Resolver,
    RunKind,
    RunStatus,
    Shown,
    Verbs,
    View,
    cloud_of,
    cloud_option,
    created,
    going_back,
    headline,
    host_lock,
    some,
)
from ephyra.engine.states import Phase, RunState
from ephyra.names import check_name

if TYPE_CHECKING:
    from ephyra.compute.body import EvacuateBody
    from ephyra.compute.budget import Settings
    from ephyra.compute.plan import Batching, EvacuationPlan
    from ephyra.engine.driver import RunDriver
    from ephyra.engine.journal import Journal, RunInfo
    from ephyra.engine.metrics import RunMetrics
    from ephyra.progress import Observer

FALLBACKS = ("cold", "stop", "skip")
FATES = ("live", "cold", "stop", "notify")
ON_TIMEOUT = ("abort", "force-complete")


def _limit(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def host_locks(meta: EvacuationMeta) -> list[str]:
    """The locks of an evacuation: one per host, in a fixed order."""
    return [host_lock(meta.cloud, host) for host in sorted(set(meta.hosts))]


def batching(body: EvacuateBody) -> Batching:
    """How many of the hosts drain together, from a start request."""
    from ephyra.compute.plan import Batching

    limits = (("zone", body.hosts_per_zone), ("aggregate", body.hosts_per_aggregate))
    return Batching(body.hosts_at_once, tuple((d, k) for d, k in limits if k is not None))


class EvacuationKind(RunKind["EvacuationPlan"]):
    name = "evacuate"
    rank = 30
    command = "host"
    start_verb = "evacuate"
    start_action = "host:evacuate"
    verbs = Verbs(
        plan="what an evacuation would do (a dry run)",
        start="empty compute hosts, showing progress",
        rollback="maintenance off where the run put it on; stopped servers started again",
        pause="ask a running evacuation to stop at its next poll",
        abort="stop an evacuation for good (moves under way end in Nova)",
        status="where an evacuation, its hosts and its servers are",
        list="every evacuation and maintenance run in the journal",
    )
    items, item_name = "hosts", "host"
    list_columns: ClassVar[tuple[str, ...]] = ("id", "kind", "state", "cloud", "hosts", "created")
    also_lists: ClassVar[tuple[str, ...]] = ("maintenance",)  # ephyra.compute.maintenance's records
    after_abort = "its hosts stay in maintenance until rollback"
    #: A host's outcomes that count as done, forward and back.
    done_outcomes: ClassVar[tuple[Outcome, ...]] = (Outcome.DRAINED, Outcome.RESTORED)
    resume_settings = {"concurrency": "moves at once in total from now on"}

    # -- a start request ---------------------------------------------------------------
    def body_type(self) -> type[EvacuateBody]:
        from ephyra.compute.body import EvacuateBody

        return EvacuateBody

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        cloud_option(parser)
        add = parser.add_argument
        add("hosts", nargs="+", metavar="HOST", help="compute host(s) to empty")
        add("--target", metavar="HOST", help="move every server to this host (default: scheduler)")
        self.add_drain_options(parser)
        add(
            "--fallback",
            choices=FALLBACKS,
            default="cold",
            help="for servers that cannot be live-migrated (cold)",
        )
        add(
            "--fate",
            choices=FATES,
            default="live",
            help="what is done with a server that asks nothing itself (the metadata key or "
            "tag ephyra:maintenance): live, cold, stop (started again by rollback), "
            "notify (left running) (live)",
        )
        add(
            "--also-down",
            action="append",
            default=[],
            metavar="HOST",
            help="another host planned to be in maintenance: not counted as room (repeatable)",
        )

    def add_drain_options(self, parser: argparse.ArgumentParser) -> None:
        """The batches, limits and timeouts of a drain."""
        add = parser.add_argument
        add(
            "--hosts-at-once",
            type=int,
            metavar="N",
            help="hosts drained together, batch after batch (all; every host is disabled "
            "first, empty hosts drain first, the hosts of anti-affine servers apart)",
        )
        add(
            "--hosts-per-zone",
            type=int,
            metavar="K",
            help="hosts of one availability zone drained together (no limit)",
        )
        add(
            "--hosts-per-aggregate",
            type=int,
            metavar="K",
            help="hosts of one host aggregate drained together (no limit)",
        )
        add("--concurrency", type=int, default=4, metavar="N", help="moves at once in total (4)")
        add(
            "--per-host", type=int, default=2, metavar="N", help="moves at once per source host (2)"
        )
        add(
            "--max-per-project",
            type=int,
            metavar="K",
            help="disruption budget: servers of one project moving at once (no limit)",
        )
        add(
            "--max-per-group",
            type=_limit,
            default=1,
            metavar="K",
            help="disruption budget: servers of one server group moving at once (1; 0: no limit)",
        )
        add(
            "--on-timeout",
            choices=ON_TIMEOUT,
            default="abort",
            help="first answer to a live migration over --migration-timeout (abort)",
        )
        add(
            "--migration-timeout",
            type=float,
            default=600.0,
            metavar="S",
            help="longest wait for one move, and for each escalation after it (600)",
        )

    def body_of(self, args: argparse.Namespace) -> EvacuateBody:
        return self.body_type().build(
            cloud=cloud_of(args),
            target=check_name(args.target, "--target") if args.target else args.target,
            fallback=args.fallback,
            fate=args.fate,
            also_down=args.also_down,
            **self.drain_values(args),
        )

    @staticmethod
    def drain_values(args: argparse.Namespace) -> dict[str, Any]:
        """The hosts, batches, limits and timeouts of a drain, as the command line gives
        them."""
        return {
            "hosts": [check_name(host, "HOST") for host in args.hosts],
            "concurrency": args.concurrency,
            "per_host": args.per_host,
            "max_per_project": args.max_per_project,
            "max_per_group": args.max_per_group,
            "on_timeout": args.on_timeout,
            "migration_timeout": args.migration_timeout,
            "hosts_at_once": args.hosts_at_once,
            "hosts_per_zone": args.hosts_per_zone,
            "hosts_per_aggregate": args.hosts_per_aggregate,
        }

    def question(self, plan: Mapping[str, Any]) -> str:
        servers = sum(len(h["servers"]) for h in plan["hosts"])
        return f"Empty {len(plan['hosts'])} host(s), {servers} server(s)? [y/N] "

    # -- planning ----------------------------------------------------------------------
    def claims(self, body: EvacuateBody) -> list[str]:
        return [host_lock(body.cloud, host) for host in sorted(set(body.hosts))]

    def plan(self, body: EvacuateBody, resolver: Resolver) -> EvacuationPlan:
        from ephyra.compute.nova import ComputeCloud
        from ephyra.compute.plan import make_plan

        cloud = ComputeCloud.connect(body.cloud)
        return make_plan(cloud, body.hosts, self.settings(body), body.also_down, batching(body))

    #: Whether a server may stay on a drained host (stop, notify); a host handed over keeps none.
    keeps: ClassVar[bool] = True

    def settings(self, body: EvacuateBody) -> Settings:
        from ephyra.compute.budget import Fallback, OnTimeout, Settings
        from ephyra.compute.fate import Fate

        return Settings(
            concurrency=body.concurrency,
            per_host=body.per_host,
            max_per_project=body.max_per_project,
            max_per_group=body.max_per_group or None,
            fallback=Fallback(body.fallback),
            on_timeout=OnTimeout(body.on_timeout),
            migration_timeout=body.migration_timeout,
            target=body.target,
            fate=Fate(body.fate),
            keep=self.keeps,
        )

    def shown(self, plan: EvacuationPlan, body: EvacuateBody) -> Shown:
        from ephyra.progress import rendered

        return Shown(plan.to_dict(), rendered(plan.tree()))

    def new_run(self, plan: EvacuationPlan) -> NewRun:
        hosts = [h.host for h in plan.hosts]
        meta = EvacuationMeta(
            plan.cloud,
            tuple(hosts),
            tuple(plan.also_down),
            plan.settings.to_meta(),
            plan.batches,
        )
        return NewRun(
            meta.to_meta(),
            {f"{what}:{host}": {} for host in hosts for what in ("host", *Phase)},
            host_locks(meta),
        )

    def locks_of(self, run: RunInfo) -> list[str]:
        return host_locks(EvacuationMeta.from_meta(run.meta))

    # -- driving -----------------------------------------------------------------------
    def resumed(self, run: RunInfo, settings: Mapping[str, Any]) -> dict[str, Any]:
        from ephyra.compute.budget import Settings

        kept = {**Settings().to_meta(), **(EvacuationMeta.from_meta(run.meta).settings or {})}
        return {"settings": Settings.from_meta({**kept, **settings}).to_meta()}

    def driver(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        plan: EvacuationPlan | None = None,
    ) -> RunDriver:
        from ephyra.compute.runner import Evacuation

        return Evacuation(journal, run, observer, metrics, cloud=plan.compute if plan else None)

    # -- reading -----------------------------------------------------------------------
    def status(self, journal: Journal, run: RunInfo) -> RunStatus[EvacuationDetail]:
        meta = EvacuationMeta.from_meta(run.meta)
        hosts: list[HostStatus] = []
        servers: list[ServerStatus] = []
        records = journal.records(run.id, "host:")
        for host in meta.hosts:
            data = records.get(f"host:{host}", {})
            forward, rollback = OUTCOMES.both(data)
            hosts.append(
                HostStatus(
                    host=host,
                    forward=forward,
                    rollback=rollback,
                    drain_seconds=data.get("drain_seconds"),
                    error=data.get("error") or "",
                )
            )
            servers.extend(
                ServerStatus(
                    id=sid,
                    name=entry.get("name"),
                    project=entry.get("project"),
                    source=host,
                    how=entry.get("how", ""),
                    outcome=entry.get("outcome", ""),
                    to=entry.get("to", ""),
                    detail=entry.get("detail", ""),
                )
                for sid, entry in (data.get("servers") or {}).items()
            )
        return RunStatus.of(run, EvacuationDetail(meta.cloud, tuple(hosts), tuple(servers)))

    def view(self, status: Mapping[str, Any]) -> View:
        tables = [
            ("hosts", ["host", "forward", "rollback", "drain_seconds", "error"]),
            ("servers", ["name", "project", "from", "how", "outcome", "to", "detail"]),
        ]
        where = f" on {status['cloud']}"
        if status["phase"] != Phase.ROLLBACK.value:
            return View(headline(status, where), tables)
        return View(headline(status, where, self._going_back(status)), tables)

    def _going_back(self, status: Mapping[str, Any]) -> str:
        """Where the hosts and servers of an evacuation in its rollback are: a rollback
        takes maintenance off where the run put it on and starts the servers it stopped;
        the servers it moved stay where they went."""
        done = status["state"] == RunState.ROLLED_BACK.value
        back = {
            "restored": "back in service (maintenance off where this run put it on)",
            "running": "being restored",
            "interrupted": "stopped while restored",
            "failed": "failed to be restored",
            "halted": "halted while restored",
        }
        forward = {
            "drained": "still in maintenance",
            "pending": "never drained",
            "halted": "halted mid-drain, in maintenance",
            "failed": "failed to drain, in maintenance",
            "interrupted": "stopped mid-drain, in maintenance",
            "running": "caught mid-drain",
        }
        said = [going_back(status["hosts"], back, forward, "host")]
        counts = status["counts"]
        if counts.get("moved"):
            said.append(f"{some(counts['moved'], 'server')} stay where they were moved")
        if counts.get("stopped"):
            again = "started again" if done else "stopped, to be started again"
            said.append(f"{some(counts['stopped'], 'server')} {again}")
        return "; ".join(said)

    def row(self, run: RunInfo) -> dict[str, Any]:
        meta = EvacuationMeta.from_meta(run.meta)
        return {
            "id": run.id,
            "kind": run.kind,
            "state": run.state.value,
            "cloud": meta.cloud,
            "hosts": ",".join(meta.hosts),
            "created": created(run),
        }

    def title(self, run: RunInfo) -> str:
        meta = EvacuationMeta.from_meta(run.meta)
        return f"{', '.join(meta.hosts)} on {meta.cloud}"

    def total(self, run: RunInfo) -> int:
        return len(EvacuationMeta.from_meta(run.meta).hosts)

    def tally(self, run: RunInfo, outcomes: Mapping[str, str]) -> tuple[int, int]:
        """The hosts' outcomes only: each server moved has its own events too."""
        found = [outcomes.get(h) for h in EvacuationMeta.from_meta(run.meta).hosts]
        done = sum(1 for o in found if o in self.done_outcomes)
        return done, sum(1 for o in found if o == Outcome.FAILED)
