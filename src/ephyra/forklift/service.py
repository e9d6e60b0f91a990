"""Forklift operations, the same for the command line and any other front end:
plan, start, resume, pause, abort, rollback, status, list."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from ephyra.clouds import ControlPlane
from ephyra.engine.control import Control, Request
from ephyra.engine.driver import ask_to_stop
from ephyra.engine.journal import Created, Journal, RunInfo, no_hook
from ephyra.engine.locks import holding
from ephyra.engine.metrics import NO_EXPORTS, Exports, RunMetrics
from ephyra.engine.states import ACTIVE, UNFINISHED, RunState
from ephyra.errors import IllegalTransition, UsageError
from ephyra.forklift.context import NodeRecord, Phase
from ephyra.forklift.plan import ForkliftPlan, make_plan
from ephyra.forklift.runner import Forklift, Outcome
from ephyra.forklift.secrets import load_credentials
from ephyra.forklift.settings import Settings
from ephyra.progress import Observer
from ephyra.workloads import load_workload

KIND = "forklift"


def lock_name(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"forklift {first}<->{second}"


def _holder(journal: Journal, a: str, b: str) -> str:
    for run in reversed(journal.runs(KIND)):
        if run.state in ACTIVE and {run.meta.get("from"), run.meta.get("to")} == {a, b}:
            m = run.meta
            return f"run {run.id} ({run.state.value}, pid {m.get('pid')} on {m.get('host')})"
    return "another process"


def _locked(journal: Journal, a: str, b: str, lock_url: str | None) -> AbstractContextManager[None]:
    return holding([lock_name(a, b)], lock_url, lambda _: _holder(journal, a, b))


def ensure_free(journal: Journal, a: str, b: str, lock_url: str | None = None) -> None:
    """Raise LockHeld, naming the holder, if a run holds this pair of control planes."""
    with _locked(journal, a, b, lock_url):
        pass


def plan(
    source: str, target: str, settings: Settings, nodes: Sequence[str] | None = None
) -> ForkliftPlan:
    if source == target:
        raise UsageError("--from and --to name the same cloud")
    credentials = load_credentials(settings.credentials)
    load_workload(settings.workload, settings.workload_options)  # fail now, not mid-run
    return make_plan(
        ControlPlane.connect(source), ControlPlane.connect(target), settings, credentials, nodes
    )


def _drive(forklift: Forklift, phase: Phase, order: list[str], exports: Exports) -> RunInfo:
    metrics = forklift.metrics
    metrics.export(exports)
    metrics.run_state(forklift.run.state)
    with forklift.signals(), forklift.watching():
        state = forklift.run_phase(phase, order)
    if forklift.control.request is Request.ABORT and phase is Phase.FORWARD:
        _return_in_flight(forklift)
        state = RunState.ABORTED
    forklift.journal.request(forklift.run.id, None)
    forklift.set_state(state)
    forklift.observer.finished(state.value)
    return forklift.run


def _return_in_flight(forklift: Forklift) -> None:
    """Abort: every node caught mid-move goes back where it came from."""
    for uuid in forklift.run.meta["order"]:
        record = NodeRecord(forklift.journal, forklift.run.id, uuid)
        if record.outcome(Phase.FORWARD) in (Outcome.INTERRUPTED, "moving"):
            forklift.observer.message(f"abort: returning {record.label} to {forklift.cp_from.name}")
            if forklift.move_node(uuid, Phase.ROLLBACK, control=Control()) is Outcome.MOVED:
                NodeRecord(forklift.journal, forklift.run.id, uuid).save(forward="returned")


def start(
    journal: Journal,
    the_plan: ForkliftPlan,
    observer: Observer,
    *,
    lock_url: str | None = None,
    exports: Exports = NO_EXPORTS,
    created: Created = no_hook,
) -> RunInfo:
    order = [n.uuid for n in the_plan.nodes]
    with _locked(journal, the_plan.source, the_plan.target, lock_url):
        run = journal.create_run(
            KIND,
            {
                "state": RunState.RUNNING.value,
                "phase": Phase.FORWARD.value,
                "from": the_plan.source,
                "to": the_plan.target,
                "settings": the_plan.settings.to_meta(),
                "order": order,
                "created": time.time(),
                "pid": os.getpid(),
                "host": socket.gethostname(),
            },
            {
                name: ({"name": node.name} if name.startswith("node:") else {})
                for node in the_plan.nodes
                for name in (f"node:{node.uuid}", f"forward:{node.uuid}", f"rollback:{node.uuid}")
            },
        )
        created(run)
        forklift = Forklift(
            journal, run, observer, RunMetrics(KIND, run.id), planes=the_plan.planes
        )
        return _drive(forklift, Phase.FORWARD, order, exports)


def find_run(journal: Journal, ident: str | None, states: frozenset[RunState]) -> RunInfo:
    return journal.find(KIND, ident, states)


@contextlib.contextmanager
def _taken(
    journal: Journal, run: RunInfo, observer: Observer, lock_url: str | None
) -> Iterator[Forklift]:
    """Hold the run's lock, record this process as its runner, and clear old requests."""
    with _locked(journal, run.meta["from"], run.meta["to"], lock_url):
        run = journal.save_run(journal.run(run.id), pid=os.getpid(), host=socket.gethostname())
        journal.request(run.id, None)
        yield Forklift(journal, run, observer, RunMetrics(KIND, run.id))


def resume(
    journal: Journal,
    ident: str | None,
    observer: Observer,
    *,
    lock_url: str | None = None,
    exports: Exports = NO_EXPORTS,
) -> RunInfo:
    run = find_run(journal, ident, UNFINISHED)
    if run.state not in UNFINISHED:
        raise IllegalTransition(f"run {run.short} is {run.state.value}: nothing to resume")
    with _taken(journal, run, observer, lock_url) as forklift:
        if run.meta.get("phase") == Phase.ROLLBACK.value:
            forklift.set_state(RunState.ROLLING_BACK, reason="")
            return _drive(forklift, Phase.ROLLBACK, run.meta["rollback_order"], exports)
        forklift.set_state(RunState.RUNNING, reason="")
        return _drive(forklift, Phase.FORWARD, run.meta["order"], exports)


def rollback(
    journal: Journal,
    ident: str | None,
    observer: Observer,
    *,
    lock_url: str | None = None,
    exports: Exports = NO_EXPORTS,
) -> RunInfo:
    run = find_run(journal, ident, frozenset(RunState) - {RunState.ROLLED_BACK})
    with _taken(journal, run, observer, lock_url) as forklift:
        order = run.meta.get("rollback_order") or _rollback_order(forklift)
        forklift.set_state(
            RunState.ROLLING_BACK, phase=Phase.ROLLBACK.value, rollback_order=order, reason=""
        )
        return _drive(forklift, Phase.ROLLBACK, order, exports)


def _rollback_order(forklift: Forklift) -> list[str]:
    """Every node the run touched that is not back home, last moved first."""
    in_target = {n.id for n in forklift.cp_to.nodes()}
    order = []
    for uuid in reversed(forklift.run.meta["order"]):
        record = NodeRecord(forklift.journal, forklift.run.id, uuid)
        if uuid in in_target or record.outcome(Phase.FORWARD) in (Outcome.INTERRUPTED, "moving"):
            order.append(uuid)
    return order


def pause(journal: Journal, ident: str | None, *, lock_url: str | None = None) -> str:
    return _request(journal, ident, Request.PAUSE, lock_url)


def abort(
    journal: Journal, ident: str | None, observer: Observer, *, lock_url: str | None = None
) -> str:
    run = find_run(journal, ident, UNFINISHED)
    if run.state is RunState.ROLLING_BACK or run.meta.get("phase") == Phase.ROLLBACK.value:
        raise IllegalTransition(f"run {run.short} is rolling back: pause it instead of aborting")
    message = _request(journal, ident or run.id, Request.ABORT, lock_url)
    if message:
        return message
    with _taken(journal, run, observer, lock_url) as forklift:
        forklift.control.ask(Request.ABORT)
        _return_in_flight(forklift)
        forklift.set_state(RunState.ABORTED)
        return f"run {run.short} aborted"


def _request(journal: Journal, ident: str | None, what: Request, lock_url: str | None) -> str:
    """Ask the process running the run to stop; '' if no process runs it."""
    run = find_run(journal, ident, ACTIVE | {RunState.PAUSED, RunState.FAILED})
    return ask_to_stop(journal, run, what, lock_name(run.meta["from"], run.meta["to"]), lock_url)


def status(journal: Journal, ident: str | None) -> dict[str, Any]:
    run = find_run(journal, ident, frozenset(RunState))
    nodes = []
    records = journal.records(run.id, "node:")
    for uuid in run.meta["order"]:
        data = records.get(f"node:{uuid}", {})
        nodes.append(
            {
                "uuid": uuid,
                "name": data.get("name"),
                "forward": data.get("forward") or "pending",
                "rollback": data.get("rollback") or "",
                "error": data.get("error") or "",
            }
        )
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node["forward"]] = counts.get(node["forward"], 0) + 1
    return {
        "id": run.id,
        "state": run.state.value,
        "phase": run.meta.get("phase"),
        "from": run.meta["from"],
        "to": run.meta["to"],
        "reason": run.meta.get("reason", ""),
        "counts": counts,
        "nodes": nodes,
    }


def runs(journal: Journal) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "state": r.state.value,
            "from": r.meta.get("from"),
            "to": r.meta.get("to"),
            "nodes": len(r.meta.get("order", [])),
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.meta.get("created", 0))),
        }
        for r in journal.runs(KIND)
    ]
