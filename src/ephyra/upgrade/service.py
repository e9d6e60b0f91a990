"""Upgrade runs, the same for the command line and any other front end: plan, start,
resume, pause, abort, rollback, status, list; queue and queue_resume post a run on a
board for ``ephyra conductor`` workers instead of driving it here.

A run keeps its specification and its plan in the journal: resume and rollback carry
on with what was decided at the start, whatever the inventory says later.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ephyra.compute.nova import ComputeCloud
from ephyra.compute.service import lock_name as compute_lock
from ephyra.engine.board import Board
from ephyra.engine.control import Request
from ephyra.engine.driver import ask_to_stop
from ephyra.engine.jobflow import hand_over
from ephyra.engine.journal import Created, Journal, RunInfo, no_hook
from ephyra.engine.locks import holding
from ephyra.engine.metrics import NO_EXPORTS, Exports, RunMetrics
from ephyra.engine.states import ACTIVE, UNFINISHED, RunState
from ephyra.errors import BoardError, IllegalTransition, UsageError
from ephyra.inventory.model import Inventory
from ephyra.inventory.source import discover
from ephyra.progress import Observer
from ephyra.strategies.base import build
from ephyra.upgrade.plan import Plan, make_plan
from ephyra.upgrade.runner import Phase, UpgradeRun, unit_details
from ephyra.upgrade.spec import Spec
from ephyra.upgrade.steps import KIND
from ephyra.urls import redact


@dataclass(frozen=True)
class UpgradePlan:
    spec: Spec
    plan: Plan
    inventory: Inventory
    cloud: str | None


def plan(
    spec: Spec, sources: Sequence[str], cloud: str | None, inventory: Inventory | None = None
) -> UpgradePlan:
    """Discover (unless given an inventory), check every strategy's options, and plan."""
    for name, options in spec.strategies.items():
        try:
            build(options)
        except UsageError as exc:
            raise UsageError(f"strategies.{name}: {exc}") from exc
    found = inventory if inventory is not None else discover(sources, cloud)
    the_plan = make_plan(found, spec)
    if any(u.drain for u in the_plan.units()) and not cloud:
        raise UsageError("compute hosts are drained first: name their cloud (--os-cloud NAME)")
    return UpgradePlan(spec, the_plan, found, cloud)


def lock_name(cloud: str | None) -> str:
    return f"upgrade {cloud or '-'}"


def _locks(run_cloud: str | None, the_plan: Plan) -> list[str]:
    names = [lock_name(run_cloud)]
    if run_cloud:
        names += sorted({compute_lock(run_cloud, u.host) for u in the_plan.units() if u.drain})
    return names


def _holder(journal: Journal, cloud: str | None) -> str:
    for run in reversed(journal.runs(KIND)):
        if run.state in ACTIVE and run.meta.get("cloud") == cloud:
            m = run.meta
            return (
                f"upgrade run {run.id} ({run.state.value}, pid {m.get('pid')} on {m.get('host')})"
            )
    return "another process"


def _drive(upgrade: UpgradeRun, phase: Phase, exports: Exports) -> RunInfo:
    upgrade.metrics.export(exports)
    upgrade.metrics.run_state(upgrade.run.state)
    with upgrade.signals(), upgrade.watching():
        state = upgrade.run_phase(phase)
    if upgrade.control.request is Request.ABORT:
        state = RunState.ABORTED
    upgrade.journal.request(upgrade.run.id, None)
    upgrade.set_state(state)
    upgrade.observer.finished(state.value)
    return upgrade.run


def _create(journal: Journal, the_plan: UpgradePlan, **extra: Any) -> RunInfo:
    """The run's record and its units' details; the caller holds the run's locks."""
    return journal.create_run(
        KIND,
        {
            "state": RunState.RUNNING.value,
            "phase": Phase.FORWARD.value,
            "cloud": the_plan.cloud,
            "release": the_plan.plan.release,
            "spec": dict(the_plan.spec.raw),
            "plan": the_plan.plan.to_dict(),
            "created": time.time(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            **extra,
        },
        unit_details(the_plan.plan),
    )


def start(
    journal: Journal,
    the_plan: UpgradePlan,
    observer: Observer,
    *,
    lock_url: str | None = None,
    exports: Exports = NO_EXPORTS,
    created: Created = no_hook,
    cloud: ComputeCloud | None = None,
) -> RunInfo:
    """Create the run and drive it in this process."""
    names = _locks(the_plan.cloud, the_plan.plan)
    with holding(names, lock_url, lambda _: _holder(journal, the_plan.cloud)):
        run = _create(journal, the_plan)
        created(run)
        upgrade = UpgradeRun(journal, run, observer, RunMetrics(KIND, run.id), cloud)
        return _drive(upgrade, Phase.FORWARD, exports)


def queue(
    journal: Journal, the_plan: UpgradePlan, board: Board, *, lock_url: str | None = None
) -> RunInfo:
    """Create the run (its locks free, as for start) and post it on ``board`` for a
    conductor to drive; a run that could not be posted is left paused, with the reason."""
    names = _locks(the_plan.cloud, the_plan.plan)
    with holding(names, lock_url, lambda _: _holder(journal, the_plan.cloud)):
        run = _create(journal, the_plan, board=board.url.url)
        try:
            flow = board.add_job_detail(run)
        except BoardError as exc:
            journal.save_run(run, state=RunState.PAUSED.value, reason=str(exc))
            raise
    try:
        board.post(run, flow)
    except BoardError as exc:
        journal.save_run(run, state=RunState.PAUSED.value, reason=str(exc))
        raise
    return run


def queue_resume(
    journal: Journal, ident: str | None, board: Board, *, lock_url: str | None = None
) -> RunInfo:
    """Post a paused, failed or crashed run on ``board``: a conductor resumes it."""
    run = find_run(journal, ident, UNFINISHED)
    if run.state not in UNFINISHED:
        raise IllegalTransition(f"run {run.short} is {run.state.value}: nothing to resume")
    posted = board.queued(run)
    if posted is not None:
        by = f", claimed by {posted.owner}" if posted.owner else ""
        raise UsageError(f"run {run.short} is queued on {redact(board.url.url)} already{by}")
    names = _locks(run.meta.get("cloud"), Plan.from_dict(run.meta["plan"]))
    with holding(names, lock_url, lambda _: _holder(journal, run.meta.get("cloud"))):
        hand_over(journal, run.id, f"resume queued from {socket.gethostname()}")
        flow = board.add_job_detail(run)
    board.post(run, flow)
    return run


def find_run(journal: Journal, ident: str | None, states: frozenset[RunState]) -> RunInfo:
    return journal.find(KIND, ident, states)


@contextlib.contextmanager
def _taken(
    journal: Journal, run: RunInfo, observer: Observer, lock_url: str | None
) -> Iterator[UpgradeRun]:
    names = _locks(run.meta.get("cloud"), Plan.from_dict(run.meta["plan"]))
    with holding(names, lock_url, lambda _: _holder(journal, run.meta.get("cloud"))):
        run = journal.save_run(journal.run(run.id), pid=os.getpid(), host=socket.gethostname())
        journal.request(run.id, None)
        yield UpgradeRun(journal, run, observer, RunMetrics(KIND, run.id))


def resume(
    journal: Journal,
    ident: str | None,
    observer: Observer,
    *,
    lock_url: str | None = None,
    exports: Exports = NO_EXPORTS,
) -> RunInfo:
    """Go on from where the run stopped; failed units are tried again."""
    run = find_run(journal, ident, UNFINISHED)
    if run.state not in UNFINISHED:
        raise IllegalTransition(f"run {run.short} is {run.state.value}: nothing to resume")
    with _taken(journal, run, observer, lock_url) as upgrade:
        if run.meta.get("phase") == Phase.ROLLBACK.value:
            upgrade.set_state(RunState.ROLLING_BACK, reason="")
            return _drive(upgrade, Phase.ROLLBACK, exports)
        for unit in upgrade.plan.units():  # failed units are tried again, from the start
            if upgrade.state_of(unit, Phase.FORWARD) == "failed":
                record = upgrade.record(unit)
                actions = {
                    key: {k: v for k, v in entry.items() if k != "after"}
                    for key, entry in (record.data.get("actions") or {}).items()
                }
                record.save(forward="retry", soaked=False, actions=actions)
        upgrade.set_state(RunState.RUNNING, reason="")
        return _drive(upgrade, Phase.FORWARD, exports)


def rollback(
    journal: Journal,
    ident: str | None,
    observer: Observer,
    *,
    lock_url: str | None = None,
    exports: Exports = NO_EXPORTS,
) -> RunInfo:
    """Take back, newest first, what the run did, with each strategy's downgrade."""
    run = find_run(journal, ident, frozenset(RunState) - {RunState.ROLLED_BACK})
    with _taken(journal, run, observer, lock_url) as upgrade:
        upgrade.set_state(RunState.ROLLING_BACK, phase=Phase.ROLLBACK.value, reason="")
        return _drive(upgrade, Phase.ROLLBACK, exports)


def pause(journal: Journal, ident: str | None, *, lock_url: str | None = None) -> str:
    return _request(journal, ident, Request.PAUSE, lock_url)


def abort(journal: Journal, ident: str | None, *, lock_url: str | None = None) -> str:
    """Stop for good at the next step boundary; what was upgraded stays, for rollback."""
    run = find_run(journal, ident, UNFINISHED)
    if run.meta.get("phase") == Phase.ROLLBACK.value:
        raise IllegalTransition(f"run {run.short} is rolling back: pause it instead of aborting")
    message = _request(journal, run.id, Request.ABORT, lock_url)
    if message:
        return message
    journal.save_run(run, state=RunState.ABORTED.value)
    return f"run {run.short} aborted; `ephyra upgrade rollback {run.short}` takes it back"


def _request(journal: Journal, ident: str | None, what: Request, lock_url: str | None) -> str:
    """Ask the process running the run to stop; '' if no process runs it."""
    run = find_run(journal, ident, ACTIVE | {RunState.PAUSED, RunState.FAILED})
    return ask_to_stop(journal, run, what, lock_name(run.meta.get("cloud")), lock_url)


def status(journal: Journal, ident: str | None) -> dict[str, Any]:
    run = find_run(journal, ident, frozenset(RunState))
    the_plan = Plan.from_dict(run.meta["plan"])
    units: list[dict[str, Any]] = []
    records = journal.records(run.id, "unit:")
    for stage in the_plan.stages:
        for n, batch in enumerate(stage.batches, 1):
            for unit in batch.units:
                data = records.get(f"unit:{unit.id}", {})
                actions = data.get("actions") or {}
                versions = [
                    f"{a.get('before') or '?'}->{a.get('back') or a.get('after')}"
                    for a in actions.values()
                ]
                units.append(
                    {
                        "unit": unit.id,
                        "stage": stage.name,
                        "batch": n,
                        "host": unit.host,
                        "forward": data.get(Phase.FORWARD.value) or "pending",
                        "rollback": data.get(Phase.ROLLBACK.value) or "",
                        "versions": ", ".join(versions),
                        "kept": "; ".join(a["kept"] for a in actions.values() if "kept" in a),
                        "error": data.get("error") or "",
                        "output": list(data.get("output") or [])[-5:],
                    }
                )
    counts: dict[str, int] = {}
    for row in units:
        counts[row["forward"]] = counts.get(row["forward"], 0) + 1
    return {
        "id": run.id,
        "state": run.state.value,
        "phase": run.meta.get("phase"),
        "release": run.meta.get("release"),
        "cloud": run.meta.get("cloud"),
        "reason": run.meta.get("reason", ""),
        "counts": counts,
        "frozen": the_plan.frozen,
        "units": units,
    }


def runs(journal: Journal) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "state": r.state.value,
            "release": r.meta.get("release"),
            "cloud": r.meta.get("cloud") or "",
            "units": sum(len(b["units"]) for s in r.meta["plan"]["stages"] for b in s["batches"]),
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.meta.get("created", 0))),
        }
        for r in journal.runs(KIND)
    ]
