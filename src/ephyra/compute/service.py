"""Compute host operations, the same for the command line and any other front end:
maintenance on/off, and evacuation runs (plan, start, resume, pause, abort, rollback,
status, list)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from ephyra.compute.budget import Settings
from ephyra.compute.maintenance import run_prefix, switch_off, switch_on
from ephyra.compute.nova import ComputeCloud
from ephyra.compute.plan import EvacuationPlan, make_plan
from ephyra.compute.runner import Evacuation, Phase
from ephyra.compute.steps import KIND
from ephyra.engine.control import Request
from ephyra.engine.driver import ask_to_stop
from ephyra.engine.journal import Created, Journal, RunInfo, no_hook
from ephyra.engine.locks import holding
from ephyra.engine.metrics import NO_EXPORTS, Exports, RunMetrics
from ephyra.engine.states import ACTIVE, UNFINISHED, RunState
from ephyra.errors import IllegalTransition
from ephyra.progress import Observer

MAINTENANCE = "maintenance"


def lock_name(cloud: str, host: str) -> str:
    return f"compute {cloud}/{host}"


def _holder(journal: Journal, cloud: str, host: str) -> str:
    for run in reversed(journal.runs(KIND)):
        if run.state in ACTIVE and run.meta.get("cloud") == cloud and host in run.meta["hosts"]:
            m = run.meta
            return f"run {run.id} ({run.state.value}, pid {m.get('pid')} on {m.get('host')})"
    return "another process"


def _locked(
    journal: Journal, cloud: str, hosts: Sequence[str], lock_url: str | None
) -> AbstractContextManager[None]:
    """Hold every host's lock (in a fixed order), or raise LockHeld naming the holder."""
    names = {lock_name(cloud, host): host for host in sorted(set(hosts))}
    return holding(list(names), lock_url, lambda name: _holder(journal, cloud, names[name]))


# -- maintenance ----------------------------------------------------------------------
def maintenance_on(journal: Journal, cloud_name: str, host: str, lock_url: str | None) -> str:
    """Disable the host's nova-compute with a reason naming Ephyra and a run of its own."""
    cloud = ComputeCloud.connect(cloud_name)
    with _locked(journal, cloud_name, [host], lock_url):
        svc = cloud.service(host)
        run = journal.create_run(
            MAINTENANCE,
            {
                "state": RunState.SUCCEEDED.value,
                "cloud": cloud_name,
                "hosts": [host],
                "created": time.time(),
            },
            {},
        )
        text = switch_on(cloud, svc, f"{run_prefix(MAINTENANCE, run.id)}: {host} in maintenance")
        journal.save_run(run, result=text)
        return text


def maintenance_off(journal: Journal, cloud_name: str, host: str, lock_url: str | None) -> str:
    """Enable the host's nova-compute, only if Ephyra disabled it and no run holds it."""
    cloud = ComputeCloud.connect(cloud_name)
    with _locked(journal, cloud_name, [host], lock_url):
        return switch_off(cloud, cloud.service(host))


# -- evacuation runs --------------------------------------------------------------------
def plan(
    cloud_name: str, hosts: Sequence[str], settings: Settings, also_down: Sequence[str] = ()
) -> EvacuationPlan:
    return make_plan(ComputeCloud.connect(cloud_name), hosts, settings, also_down)


def ensure_free(journal: Journal, cloud: str, hosts: Sequence[str], lock_url: str | None) -> None:
    with _locked(journal, cloud, hosts, lock_url):
        pass


def _drive(evacuation: Evacuation, phase: Phase, exports: Exports) -> RunInfo:
    metrics = evacuation.metrics
    metrics.export(exports)
    metrics.run_state(evacuation.run.state)
    with evacuation.signals(), evacuation.watching():
        state = evacuation.run_phase(phase)
    if evacuation.control.request is Request.ABORT:
        state = RunState.ABORTED
    evacuation.journal.request(evacuation.run.id, None)
    evacuation.set_state(state)
    evacuation.observer.finished(state.value)
    return evacuation.run


def start(
    journal: Journal,
    the_plan: EvacuationPlan,
    observer: Observer,
    *,
    lock_url: str | None = None,
    exports: Exports = NO_EXPORTS,
    created: Created = no_hook,
) -> RunInfo:
    hosts = [h.host for h in the_plan.hosts]
    with _locked(journal, the_plan.cloud, hosts, lock_url):
        run = journal.create_run(
            KIND,
            {
                "state": RunState.RUNNING.value,
                "phase": Phase.FORWARD.value,
                "cloud": the_plan.cloud,
                "hosts": hosts,
                "also_down": list(the_plan.also_down),
                "settings": the_plan.settings.to_meta(),
                "created": time.time(),
                "pid": os.getpid(),
                "host": socket.gethostname(),
            },
            {
                f"{what}:{host}": {}
                for host in hosts
                for what in ("host", Phase.FORWARD.value, Phase.ROLLBACK.value)
            },
        )
        created(run)
        evacuation = Evacuation(
            journal, run, observer, RunMetrics(KIND, run.id), cloud=the_plan.compute
        )
        return _drive(evacuation, Phase.FORWARD, exports)


def find_run(journal: Journal, ident: str | None, states: frozenset[RunState]) -> RunInfo:
    return journal.find(KIND, ident, states)


@contextlib.contextmanager
def _taken(
    journal: Journal, run: RunInfo, observer: Observer, lock_url: str | None
) -> Iterator[Evacuation]:
    with _locked(journal, run.meta["cloud"], run.meta["hosts"], lock_url):
        run = journal.save_run(journal.run(run.id), pid=os.getpid(), host=socket.gethostname())
        journal.request(run.id, None)
        yield Evacuation(journal, run, observer, RunMetrics(KIND, run.id))


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
    with _taken(journal, run, observer, lock_url) as evacuation:
        if run.meta.get("phase") == Phase.ROLLBACK.value:
            evacuation.set_state(RunState.ROLLING_BACK, reason="")
            return _drive(evacuation, Phase.ROLLBACK, exports)
        evacuation.set_state(RunState.RUNNING, reason="")
        return _drive(evacuation, Phase.FORWARD, exports)


def rollback(
    journal: Journal,
    ident: str | None,
    observer: Observer,
    *,
    lock_url: str | None = None,
    exports: Exports = NO_EXPORTS,
) -> RunInfo:
    """Maintenance off where this run put it on, and servers it stopped started again;
    servers stay where the run moved them (they are safe there)."""
    run = find_run(journal, ident, frozenset(RunState) - {RunState.ROLLED_BACK})
    with _taken(journal, run, observer, lock_url) as evacuation:
        evacuation.set_state(RunState.ROLLING_BACK, phase=Phase.ROLLBACK.value, reason="")
        return _drive(evacuation, Phase.ROLLBACK, exports)


def pause(journal: Journal, ident: str | None, *, lock_url: str | None = None) -> str:
    return _request(journal, ident, Request.PAUSE, lock_url)


def abort(journal: Journal, ident: str | None, *, lock_url: str | None = None) -> str:
    """Stop for good: no new migration starts; those under way end in Nova by themselves."""
    run = find_run(journal, ident, UNFINISHED)
    if run.state is RunState.ROLLING_BACK or run.meta.get("phase") == Phase.ROLLBACK.value:
        raise IllegalTransition(f"run {run.short} is rolling back: pause it instead of aborting")
    message = _request(journal, run.id, Request.ABORT, lock_url)
    if message:
        return message
    journal.save_run(run, state=RunState.ABORTED.value)
    return f"run {run.short} aborted; its hosts stay in maintenance until rollback"


def _request(journal: Journal, ident: str | None, what: Request, lock_url: str | None) -> str:
    """Ask the process running the run to stop; '' if no process runs it."""
    run = find_run(journal, ident, ACTIVE | {RunState.PAUSED, RunState.FAILED})
    lock = lock_name(run.meta["cloud"], sorted(run.meta["hosts"])[0])
    return ask_to_stop(journal, run, what, lock, lock_url)


def status(journal: Journal, ident: str | None) -> dict[str, Any]:
    run = find_run(journal, ident, frozenset(RunState))
    hosts = []
    servers = []
    records = journal.records(run.id, "host:")
    for host in run.meta["hosts"]:
        data = records.get(f"host:{host}", {})
        hosts.append(
            {
                "host": host,
                "forward": data.get(Phase.FORWARD.value) or "pending",
                "rollback": data.get(Phase.ROLLBACK.value) or "",
                "drain_seconds": data.get("drain_seconds"),
                "error": data.get("error") or "",
            }
        )
        for sid, entry in (data.get("servers") or {}).items():
            servers.append(
                {
                    "id": sid,
                    "name": entry.get("name"),
                    "project": entry.get("project"),
                    "from": host,
                    "how": entry.get("how", ""),
                    "outcome": entry.get("outcome", ""),
                    "to": entry.get("to", ""),
                    "detail": entry.get("detail", ""),
                }
            )
    counts: dict[str, int] = {}
    for server in servers:
        counts[server["outcome"]] = counts.get(server["outcome"], 0) + 1
    return {
        "id": run.id,
        "state": run.state.value,
        "phase": run.meta.get("phase"),
        "cloud": run.meta["cloud"],
        "reason": run.meta.get("reason", ""),
        "counts": counts,
        "hosts": hosts,
        "servers": servers,
    }


def runs(journal: Journal) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "state": r.state.value,
            "cloud": r.meta.get("cloud"),
            "hosts": ",".join(r.meta.get("hosts", [])),
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.meta.get("created", 0))),
        }
        for r in journal.runs()
        if r.kind in (KIND, MAINTENANCE)
    ]
