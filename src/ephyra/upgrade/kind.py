"""The upgrade run: rolling in-place upgrades planned from what the cloud runs.

A run keeps its specification and its plan in the journal: resume and rollback carry on
with what was decided at the start, whatever the inventory says later.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
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
    host_lock,
    some,
)
from ephyra.engine.states import Phase, RunState
from ephyra.errors import UsageError
from ephyra.upgrade import approvals, availability
from ephyra.upgrade.records import OUTCOMES, Outcome, UnitStatus, UpgradeDetail, UpgradeMeta

if TYPE_CHECKING:
    from ephyra.engine.driver import RunDriver
    from ephyra.engine.journal import Journal, RunInfo
    from ephyra.engine.metrics import RunMetrics
    from ephyra.inventory.model import Inventory
    from ephyra.progress import Observer
    from ephyra.upgrade.body import UpgradeBody
    from ephyra.upgrade.plan import Plan
    from ephyra.upgrade.spec import Spec

DESCRIPTION = """\
Rolling in-place upgrades, planned from the inventory (--source) and a specification
(--spec FILE, see docs/upgrade.md).

The control plane goes first, service by service in the upgrade guides' order (identity,
image, placement, compute, network, block storage, ..., bare metal), one controller at a
time unless the role allows more; then the data plane, role by role, host by host: a
canary alone (and its soak), then batches of the role's max_at_once. Compute hosts are
drained by live migration first (the evacuation's budgets) and enabled after. Every
unit ends at a health gate: its services up again in the APIs, with the new version,
and the custom checks green. More failed units than failure_threshold pause the run.

plan        the tree of stages, batches and units, with an estimate (a dry run)
start       run it, showing progress; with --board, queue it for `ephyra conductor`
            workers instead (docs/distributed.md)
status, pause, resume, abort, rollback, list
            rollback takes back, newest first, what the run did, with each
            strategy's downgrade, and says which strategies have none (refused once
            the run began a point of no return); abort only stops.
approve     a stage the specification holds (approvals:, roles.ROLE.approval) pauses
            the run until an admin approves it; the run then resumes by itself
step        the next stage alone, then the run pauses again

inventory sources (--source, repeatable, merged in order): openstack[:CLOUD],
static:FILE, ansible:INVENTORY, puppetdb:URL, osa:CONFIG (see docs/inventory.md); without
--source, the cloud of --os-cloud is discovered through its APIs. With --url, the
server reads only what its operator configured: openstack[:CLOUD] and the names of
its --config; a last static:FILE is read here and sent with the request.
"""


@dataclass(frozen=True)
class UpgradePlan:
    spec: Spec
    plan: Plan
    inventory: Inventory
    cloud: str | None
    heal: bool = False


def lock_name(cloud: str | None) -> str:
    return f"upgrade {cloud or '-'}"


def upgrade_locks(cloud: str | None, plan: Plan) -> list[str]:
    """The locks of an upgrade: its cloud's, and those of the compute hosts it drains."""
    locks = [lock_name(cloud)]
    if cloud:
        locks += sorted({host_lock(cloud, u.host) for u in plan.units() if u.drain})
    return locks


def upgrade_cloud(cloud: str | None, sources: list[str]) -> str | None:
    """--os-cloud, else the cloud of the one openstack:CLOUD source."""
    named = {s.partition(":")[2] for s in sources if s.startswith("openstack:")}
    if cloud is None and len(named) == 1:
        return named.pop()
    return cloud


def plan_upgrade(
    spec: Spec, sources: list[str], cloud: str | None, inventory: Inventory | None = None
) -> UpgradePlan:
    """Discover (unless given an inventory), check every strategy's options, and plan,
    from now (the maintenance windows each stage falls in)."""
    from datetime import UTC, datetime

    from ephyra.inventory.source import discover
    from ephyra.strategies.base import build
    from ephyra.upgrade.plan import make_plan

    for name, options in spec.strategies.items():
        try:
            build(options)
        except UsageError as exc:
            raise UsageError(f"strategies.{name}: {exc}") from exc
    found = inventory if inventory is not None else discover(sources, cloud)
    return UpgradePlan(spec, make_plan(found, spec, datetime.now(UTC)), found, cloud)


def check_startable(plan: UpgradePlan) -> None:
    """A run drains compute hosts through their cloud's APIs: planning reads only the
    inventory and the specification, starting needs the cloud."""
    if not plan.cloud and any(u.drain or u.move_volumes for u in plan.plan.units()):
        raise UsageError(
            "compute hosts are drained first (storage hosts' volumes moved): name their cloud"
            " (--os-cloud NAME) to start; planning needs none"
        )
    if not plan.cloud and any(t.type == "compute" for t in plan.spec.probes.targets):
        raise UsageError("probes: a compute probe asks the run's cloud: name it (--os-cloud NAME)")


class UpgradeKind(RunKind[UpgradePlan]):
    name = "upgrade"
    rank = 20
    command = "upgrade"
    summary = (
        "rolling in-place upgrades: plan, start, status, pause, resume, abort, rollback,"
        " approve, step"
    )
    description = DESCRIPTION
    verbs = Verbs(
        plan="the upgrade's steps and an estimate (a dry run)",
        start="run the upgrade, showing progress",
        rollback="take back what the run did, newest first, with each strategy's downgrade",
        pause="ask a running upgrade to stop at its next step",
        abort="stop an upgrade for good (what was upgraded stays, for rollback)",
        status="where a run and each of its units are",
        list="every upgrade run in the journal",
    )
    items, item_name = "units", "unit"
    list_columns = ("id", "state", "release", "cloud", "units", "created")
    preflight_help = (
        "check now what the upgrade would meet (services down or stale, each project's "
        "upgrade check, Placement against Nova, room for the drains), as every run does "
        "first; each check says ok, warn or block and what to do. Exit 1 when one blocks"
    )
    after_abort = (
        "`ephyra upgrade rollback {run}` takes it back (refused once it began a point of no return)"
    )

    # -- a start request ---------------------------------------------------------------
    def body_type(self) -> type[UpgradeBody]:
        from ephyra.upgrade.body import UpgradeBody

        return UpgradeBody

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        add = parser.add_argument
        add("--spec", required=True, metavar="FILE", help="the upgrade specification (YAML)")
        add(
            "--source",
            action="append",
            default=[],
            metavar="KIND[:ARG]",
            help="inventory source, repeatable: openstack[:CLOUD], static:FILE, ansible:FILE, "
            "puppetdb:URL, osa:CONFIG (with --url: openstack[:CLOUD], a name the server "
            "configured, and a last static:FILE, sent inline)",
        )
        add(
            "--os-cloud",
            default=os.environ.get("OS_CLOUD"),
            metavar="NAME",
            help="the cloud whose APIs gate the upgrade and drain compute hosts (default: "
            "OS_CLOUD, else the cloud of an openstack:CLOUD source)",
        )
        add(
            "--width",
            type=int,
            default=6,
            metavar="N",
            help="hosts named per batch in the tree (6)",
        )
        add(
            "--heal",
            action="store_true",
            help="remove the Placement allocations a drained host leaks, as nova-manage "
            "placement audit --delete does, each kept in the journal (without it, such "
            "leaks fail the host's unit and pause the run)",
        )

    def body_of(self, args: argparse.Namespace) -> UpgradeBody:
        import yaml

        from ephyra import yamlfile
        from ephyra.inventory import static

        try:
            raw = yamlfile.read(args.spec)
        except (OSError, yaml.YAMLError) as exc:
            raise UsageError(f"cannot read the specification {args.spec}: {exc}") from exc
        if not isinstance(raw, dict):
            raise UsageError(f"{args.spec}: a mapping (release, roles, ...), see docs/upgrade.md")
        # with --url, a last static:FILE source is read here (it is this side's file) and
        # sent in the body, merged last as here
        sources, inline = list(args.source), None
        if getattr(args, "url", None) and sources and sources[-1].startswith("static:"):
            sources, inline = sources[:-1], static.read(sources[-1].removeprefix("static:"))
        return self.body_type().build(
            spec=raw,
            sources=sources,
            inventory=inline,
            cloud=args.os_cloud,
            width=args.width,
            heal=args.heal,
        )

    def question(self, plan: Mapping[str, Any]) -> str:
        units = sum(len(b["units"]) for s in plan["stages"] for b in s["batches"])
        return f"Upgrade {units} unit(s) to {plan['release']}? [y/N] "

    # -- planning ----------------------------------------------------------------------
    def plan(self, body: UpgradeBody, resolver: Resolver) -> UpgradePlan:
        from ephyra.inventory.source import discovered, resolved
        from ephyra.upgrade import probing, spec

        sources = resolved(body.sources, resolver.inventory)
        cloud = upgrade_cloud(body.cloud, sources)
        if not sources and body.inventory is None and cloud:
            sources = ["openstack"]
        # checked before anything is discovered; Alertmanagers and probe targets by the
        # resolver's names
        raw = spec.with_alertmanagers(body.spec, resolver.alertmanager)
        parsed = spec.parse(probing.with_targets(raw, resolver.probe))
        inline = body.inventory
        found = None if inline is None else discovered(sources, cloud, inline)
        return replace(plan_upgrade(parsed, sources, cloud, found), heal=body.heal)

    def shown(self, plan: UpgradePlan, body: UpgradeBody) -> Shown:
        return Shown(plan.plan.to_dict(), plan.plan.render(width=body.width))

    def new_run(self, plan: UpgradePlan) -> NewRun:
        from ephyra.upgrade.runner import unit_details

        check_startable(plan)
        meta = UpgradeMeta(
            plan.cloud, plan.plan.release, dict(plan.spec.raw), plan.plan.to_dict(), plan.heal
        )
        return NewRun(meta.to_meta(), unit_details(plan.plan), upgrade_locks(plan.cloud, plan.plan))

    def locks_of(self, run: RunInfo) -> list[str]:
        from ephyra.upgrade.plan import Plan

        meta = UpgradeMeta.from_meta(run.meta)
        return upgrade_locks(meta.cloud, Plan.from_dict(meta.plan))

    # -- driving -----------------------------------------------------------------------
    def driver(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        plan: UpgradePlan | None = None,
    ) -> RunDriver:
        from ephyra.upgrade.runner import UpgradeRun

        return UpgradeRun(journal, run, observer, metrics)

    def on_resume(self, driver: RunDriver) -> None:
        """Failed units are tried again, from the start."""
        from ephyra.upgrade.runner import UpgradeRun

        assert isinstance(driver, UpgradeRun)
        for unit in driver.plan.units():
            if driver.state_of(unit, Phase.FORWARD) is Outcome.FAILED:
                record = driver.record(unit)
                actions = {
                    key: {k: v for k, v in entry.items() if k != "after"}
                    for key, entry in (record.data.get("actions") or {}).items()
                }
                OUTCOMES.save(record, Phase.FORWARD, Outcome.RETRY, soaked=False, actions=actions)

    def preflight(self, plan: UpgradePlan) -> list[dict[str, Any]]:
        from ephyra.compute.nova import ComputeCloud
        from ephyra.upgrade import preflight

        cloud = ComputeCloud.connect(plan.cloud) if plan.cloud else None
        verdicts = preflight.run(preflight.Context(plan.spec, plan.plan, cloud))
        return [v.to_dict() for v in verdicts]

    def no_rollback(self, journal: Journal, run: RunInfo) -> str:
        """A run that began a stage past which the previous release cannot come back (a
        project's data migrations, a sync that is not expand-only) is not rolled back."""
        from ephyra.upgrade.plan import Plan

        the_plan = Plan.from_dict(UpgradeMeta.from_meta(run.meta).plan)
        records = journal.records(run.id, "unit:")
        for stage in the_plan.stages:
            if not stage.no_return:
                continue
            for unit in stage.units():
                forward = OUTCOMES.parse(
                    records.get(f"unit:{unit.id}", {}).get(Phase.FORWARD.value)
                )
                if forward is not Outcome.PENDING:
                    return (
                        f"it began stage '{stage.name}', a point of no return ({stage.no_return})"
                        ": the previous release needs the databases as they were before the run"
                        " (restore them from a backup)"
                    )
        return ""

    # -- reading -----------------------------------------------------------------------
    def status(self, journal: Journal, run: RunInfo) -> RunStatus[UpgradeDetail]:
        from ephyra.upgrade.plan import Plan

        meta = UpgradeMeta.from_meta(run.meta)
        the_plan = Plan.from_dict(meta.plan)
        units: list[UnitStatus] = []
        records = journal.records(run.id, "unit:")
        for stage in the_plan.stages:
            for n, batch in enumerate(stage.batches, 1):
                for unit in batch.units:
                    data = records.get(f"unit:{unit.id}", {})
                    actions = data.get("actions") or {}
                    versions = [
                        f"{a['project']}: {a.get('back') or a.get('after') or 'begun'}"
                        if "project" in a
                        else f"{a.get('before') or '?'}->"
                        f"{a.get('back') or a.get('after') or a.get('installed')}"
                        for a in actions.values()
                    ]
                    forward, rollback = OUTCOMES.both(data)
                    units.append(
                        UnitStatus(
                            unit=unit.id,
                            stage=stage.name,
                            batch=n,
                            host=unit.host,
                            forward=forward,
                            rollback=rollback,
                            versions=", ".join(versions),
                            kept="; ".join(a["kept"] for a in actions.values() if "kept" in a),
                            error=data.get("error") or "",
                            output=list(data.get("output") or [])[-5:],
                            healed=[
                                f"{h['consumer']} on {h['host']} ({h['why']})"
                                for h in data.get("healed") or []
                            ],
                        )
                    )
        kept = journal.records(run.id, availability.RECORD).get(availability.RECORD) or {}
        probed = availability.Timeline.from_dict(kept).to_dict() if kept else {}
        checked = journal.records(run.id, "preflight").get("preflight") or {}
        detail = UpgradeDetail(
            meta.release,
            meta.cloud,
            the_plan.frozen,
            tuple(units),
            probed,
            list(checked.get("verdicts") or []),
            approvals.shown(the_plan, approvals.kept(journal, run.id)),
        )
        return RunStatus.of(run, detail)

    def view(self, status: Mapping[str, Any]) -> View:
        if status["phase"] != Phase.ROLLBACK.value:
            lines = headline(status, f", release {status['release']}")
        else:
            lines = self._going_back(status)
        if status["frozen"]:
            lines.append(f"frozen (left alone): {', '.join(status['frozen'])}")
        verdicts = status.get("preflight") or []
        if verdicts:
            tally = Counter(v["level"] for v in verdicts)
            said = ", ".join(f"{tally[level]} {level}" for level in ("ok", "warn", "block"))
            lines.append(f"preflight: {said}")
            lines += [
                f"  {v['level']}: {v['check']}: {v['subject']}: {v['message']}"
                for v in verdicts
                if v["level"] != "ok"
            ]
        for held in status.get("approvals") or []:
            by = f"approved by {held['by']}" if held["by"] else "not approved yet"
            lines.append(f"approval: {held['stage']}: {by}")
        if status.get("availability"):
            lines += availability.Timeline.from_dict(status["availability"]).lines()
        return View(
            lines,
            [("units", ["unit", "batch", "forward", "rollback", "versions", "kept", "error"])],
        )

    def _going_back(self, status: Mapping[str, Any]) -> list[str]:
        """The first lines of an upgrade in its rollback: where each unit is now, and
        the units that kept a change their strategy cannot take back."""
        release = status["release"]
        done = status["state"] == RunState.ROLLED_BACK.value
        back = {
            "restored": "taken back to the version before",
            "running": "being taken back",
            "interrupted": "stopped while taken back",
            "failed": "failed to be taken back",
        }
        forward = {
            "upgraded": f"still at {release}",
            "pending": "never upgraded",
            "failed": "failed to upgrade",
            "retry": "failed to upgrade",
            "running": "caught mid-upgrade",
            "interrupted": "stopped mid-upgrade",
        }
        tally = going_back(status["units"], back, forward, "unit")
        kept = sum(1 for unit in status["units"] if unit["kept"])
        if kept:
            tally += f"; {some(kept, 'unit')} kept a change with no downgrade (see kept)"
        where = f" from {release}" if done else f", release {release}"
        return headline(status, where, tally)

    def row(self, run: RunInfo) -> dict[str, Any]:
        meta = UpgradeMeta.from_meta(run.meta)
        return {
            "id": run.id,
            "state": run.state.value,
            "release": meta.release,
            "cloud": meta.cloud or "",
            "units": meta.units,
            "created": created(run),
        }

    def title(self, run: RunInfo) -> str:
        meta = UpgradeMeta.from_meta(run.meta)
        way = "back from" if run.phase == Phase.ROLLBACK else "to"
        return f"{way} {meta.release}" + (f" on {meta.cloud}" if meta.cloud else "")

    def total(self, run: RunInfo) -> int:
        return UpgradeMeta.from_meta(run.meta).units
