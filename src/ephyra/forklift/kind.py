"""The forklift run: move bare-metal nodes from one control plane to another, and back."""

from __future__ import annotations

import argparse
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
    going_back,
    headline,
)
from ephyra.engine.states import Phase, RunState
from ephyra.errors import UsageError
from ephyra.forklift.records import OUTCOMES, ForkliftDetail, ForkliftMeta, NodeStatus

if TYPE_CHECKING:
    from ephyra.engine.driver import RunDriver
    from ephyra.engine.journal import Journal, RunInfo
    from ephyra.engine.metrics import RunMetrics
    from ephyra.forklift.body import ForkliftBody
    from ephyra.forklift.plan import ForkliftPlan
    from ephyra.progress import Observer

DESCRIPTION = """\
Move bare-metal nodes from the control plane they are enrolled in (--from) to
another (--to), one node after another or N at once, and back again.

Each node: record it -> workload prepare -> maintenance on the source -> undeploy
-> enroll in the target (in maintenance, same UUID, fields and port MACs) -> delete
from the source -> manage -> provide -> maintenance off -> deploy the recorded
instance -> workload return and node health. A node is never enrolled nowhere.

Clouds are names from clouds.yaml. A run is journaled: it can be paused, resumed
from another process, aborted (in-flight nodes go back) and rolled back.
"""


def lock_name(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"forklift {first}<->{second}"


class ForkliftKind(RunKind["ForkliftPlan"]):
    name = "forklift"
    rank = 10
    command = "forklift"
    summary = "move Ironic nodes between control planes (blue/green)"
    description = DESCRIPTION
    verbs = Verbs(
        start="plan and move the nodes, showing progress",
        rollback="move every node the run moved back where it was",
        abort="stop a run for good: nodes caught mid-move go back",
        status="where a run and each of its nodes are",
        list="every forklift run in the journal",
    )
    items, item_name = "nodes", "name"
    list_columns = ("id", "state", "from", "to", "nodes", "created")
    abort_undoes = True
    resume_settings = {"concurrency": "nodes moved at once from now on"}

    # -- a start request ---------------------------------------------------------------
    def body_type(self) -> type[ForkliftBody]:
        from ephyra.forklift.body import ForkliftBody

        return ForkliftBody

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        add = parser.add_argument
        add("--from", dest="source", required=True, metavar="CLOUD", help="cloud the nodes leave")
        add("--to", dest="target", required=True, metavar="CLOUD", help="cloud the nodes join")
        add(
            "--nodes",
            action="append",
            default=[],
            metavar="NAME[,NAME...]",
            help="only these nodes (names or UUIDs); default: every node of --from",
        )
        add("--concurrency", type=int, default=1, metavar="N", help="nodes moved at once (1)")
        add(
            "--batch-size",
            type=int,
            default=0,
            metavar="N",
            help="nodes between two application health gates (default: --concurrency)",
        )
        add(
            "--max-failures",
            type=int,
            default=0,
            metavar="N",
            help="failed nodes tolerated before the run stops (0)",
        )
        add("--workload", default="noop", help="workload plugin: noop, command, hadoop (noop)")
        add(
            "--workload-opt",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an option of the workload plugin (repeatable)",
        )
        add(
            "--credentials",
            metavar="SOURCE",
            help="where masked BMC secrets come from: file:PATH, or 'source' (the source "
            "control plane shows them by policy); with --url: 'source' or a NAME the server's "
            "operator configured (ephyra serve --config)",
        )
        add(
            "--nova",
            action="store_true",
            help="Nova owns the nodes (its ironic driver): each node's server is recorded, "
            "deleted in the source once the workload let the node go, and booted again on "
            "the same node in the target (same name, flavor, image, key pair, metadata, "
            "server group and networks); the plan stops first if the target lacks any of them",
        )
        for option, default, text in (
            ("--step-timeout", 1800.0, "longest wait for one provision-state change"),
            ("--health-timeout", 600.0, "longest wait for a returned node to be healthy"),
            (
                "--gate-timeout",
                600.0,
                "longest wait for application health between batches before pausing",
            ),
            ("--defer-wait", 30.0, "pause before retrying when every node of a batch was deferred"),
        ):
            add(option, type=float, default=default, metavar="S", help=f"{text} ({default:g})")
        add(
            "--max-deferrals",
            type=int,
            default=20,
            metavar="N",
            help="times the workload may defer one node before it counts as failed (20)",
        )

    def body_of(self, args: argparse.Namespace) -> ForkliftBody:
        options: dict[str, str] = {}
        for item in args.workload_opt:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UsageError(f"--workload-opt wants KEY=VALUE, not {item!r}")
            options[key] = value
        return self.body_type().build(
            source=args.source,
            target=args.target,
            nodes=[n for item in args.nodes for n in item.split(",") if n] or None,
            concurrency=args.concurrency,
            batch_size=args.batch_size,
            max_failures=args.max_failures,
            step_timeout=args.step_timeout,
            health_timeout=args.health_timeout,
            gate_timeout=args.gate_timeout,
            max_deferrals=args.max_deferrals,
            defer_wait=args.defer_wait,
            workload=args.workload,
            workload_options=options,
            credentials=args.credentials,
            nova=args.nova,
        )

    def question(self, plan: Mapping[str, Any]) -> str:
        count = sum(len(batch) for batch in plan["batches"])
        return f"Move {count} node(s) from {plan['from']} to {plan['to']}? [y/N] "

    # -- planning ----------------------------------------------------------------------
    def claims(self, body: ForkliftBody) -> list[str]:
        return [lock_name(body.source, body.target)]

    def plan(self, body: ForkliftBody, resolver: Resolver) -> ForkliftPlan:
        from ephyra.clouds import ControlPlane
        from ephyra.forklift.plan import make_plan
        from ephyra.forklift.secrets import load_credentials
        from ephyra.forklift.settings import Settings
        from ephyra.workloads import load_workload

        if body.source == body.target:
            raise UsageError("--from and --to name the same cloud")
        settings = Settings(
            concurrency=body.concurrency,
            batch_size=body.batch_size,
            max_failures=body.max_failures,
            step_timeout=body.step_timeout,
            health_timeout=body.health_timeout,
            gate_timeout=body.gate_timeout,
            max_deferrals=body.max_deferrals,
            defer_wait=body.defer_wait,
            workload=body.workload,
            workload_options=dict(body.workload_options),
            credentials=resolver.credentials(body.credentials),
            nova=body.nova,
        )
        credentials = load_credentials(settings.credentials)
        if settings.credentials != body.credentials:  # a name the server's operator configured
            credentials.description = f"configured credentials {body.credentials!r}"
        load_workload(settings.workload, settings.workload_options)  # fail now, not mid-run
        planes = ControlPlane.connect(body.source), ControlPlane.connect(body.target)
        return make_plan(*planes, settings, credentials, body.nodes)

    def shown(self, plan: ForkliftPlan, body: ForkliftBody) -> Shown:
        from ephyra.progress import rendered

        return Shown(plan.to_dict(), rendered(plan.tree()))

    def new_run(self, plan: ForkliftPlan) -> NewRun:
        meta = ForkliftMeta(
            plan.source, plan.target, plan.settings.to_meta(), tuple(n.uuid for n in plan.nodes)
        )
        return NewRun(
            meta.to_meta(),
            {
                name: ({"name": node.name} if name.startswith("node:") else {})
                for node in plan.nodes
                for name in (f"node:{node.uuid}", f"forward:{node.uuid}", f"rollback:{node.uuid}")
            },
            [lock_name(plan.source, plan.target)],
        )

    def locks_of(self, run: RunInfo) -> list[str]:
        meta = ForkliftMeta.from_meta(run.meta)
        return [lock_name(meta.source, meta.target)]

    # -- driving -----------------------------------------------------------------------
    def driver(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        plan: ForkliftPlan | None = None,
    ) -> RunDriver:
        from ephyra.forklift.runner import Forklift

        return Forklift(journal, run, observer, metrics, planes=plan.planes if plan else None)

    def resumed(self, run: RunInfo, settings: Mapping[str, Any]) -> dict[str, Any]:
        from ephyra.forklift.settings import Settings

        kept = ForkliftMeta.from_meta(run.meta).settings
        return {"settings": Settings.from_meta({**kept, **settings}).to_meta()}

    def on_abort(self, driver: RunDriver) -> None:
        from ephyra.forklift.runner import Forklift

        assert isinstance(driver, Forklift)
        driver.return_in_flight()

    # -- reading -----------------------------------------------------------------------
    def status(self, journal: Journal, run: RunInfo) -> RunStatus[ForkliftDetail]:
        meta = ForkliftMeta.from_meta(run.meta)
        records = journal.records(run.id, "node:")
        nodes = []
        for uuid in meta.order:
            data = records.get(f"node:{uuid}", {})
            forward, rollback = OUTCOMES.both(data)
            nodes.append(
                NodeStatus(
                    uuid=uuid,
                    name=data.get("name"),
                    forward=forward,
                    rollback=rollback,
                    error=data.get("error") or "",
                )
            )
        return RunStatus.of(run, ForkliftDetail(meta.source, meta.target, tuple(nodes)))

    def view(self, status: Mapping[str, Any]) -> View:
        source, target = status["from"], status["to"]
        tables = [("nodes", ["name", "uuid", "forward", "rollback", "error"])]
        if status["phase"] != Phase.ROLLBACK.value:
            return View(headline(status, f" {source} -> {target}"), tables)
        # going back: where each node is now
        done = status["state"] == RunState.ROLLED_BACK.value
        back = {
            "moved": f"back in {source}"
            + (f" (moved {source} -> {target}, then back)" if done else ""),
            "moving": "on the way back",
            "interrupted": "stopped on the way back",
            "failed": "failed to go back",
            "deferred": "deferred on the way back",
        }
        forward = {
            "moved": f"still in {target}",
            "pending": "never moved",
            "returned": f"returned to {source} by the abort",
            "failed": "failed to move",
            "moving": "caught mid-move",
            "interrupted": "stopped mid-move",
            "deferred": "deferred",
        }
        # a node an abort took back mid-move was returned, not moved and then moved back
        nodes = [
            {**node, "rollback": ""} if node["forward"] == "returned" else node
            for node in status["nodes"]
        ]
        tally = going_back(nodes, back, forward, "node")
        return View(headline(status, "" if done else f" {target} -> {source}", tally), tables)

    def row(self, run: RunInfo) -> dict[str, Any]:
        meta = ForkliftMeta.from_meta(run.meta)
        return {
            "id": run.id,
            "state": run.state.value,
            "from": meta.source,
            "to": meta.target,
            "nodes": len(meta.order),
            "created": created(run),
        }

    def title(self, run: RunInfo) -> str:
        meta = ForkliftMeta.from_meta(run.meta)
        back = f", back to {meta.source}" if run.phase == Phase.ROLLBACK else ""
        return f"{meta.source} -> {meta.target}{back}"

    def total(self, run: RunInfo) -> int:
        return len(ForkliftMeta.from_meta(run.meta).order)
