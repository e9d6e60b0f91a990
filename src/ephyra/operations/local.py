"""Every operation of the command line and the API, done in this process.

`ephyra` without ``--url`` calls these directly; ``ephyra serve`` calls them for its
clients; :mod:`ephyra.operations.remote` does the same through a server. Each returns plain
data (dicts, lists, text), the same whichever way it is reached
(:class:`ephyra.operations.protocol.Operations`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ephyra.engine import events
from ephyra.engine import notify as notifications
from ephyra.engine.journal import Created, Journal, RunInfo, no_hook
from ephyra.engine.journal import default_url as default_journal
from ephyra.engine.kinds import Resolver, RunKind, get, names
from ephyra.engine.service import Action, RunService
from ephyra.errors import RunNotFound, UsageError
from ephyra.operations.protocol import (
    EnvImported,
    EnvSummary,
    Host,
    Item,
    Operations,
    Planned,
    Progress,
    Roles,
    RunDetail,
    Triggered,
    Triggering,
    Verdict,
)
from ephyra.progress import Observer
from ephyra.urls import redact
from ephyra.versions.keys import Keys
from ephyra.versions.store import Store, default_url, open_store

if TYPE_CHECKING:  # pydantic's models, prometheus: not for reading a status
    from ephyra.engine.metrics import Exports
    from ephyra.netscheme.serializers import Mode
    from ephyra.operations.bodies import EnvUpgradeBody, TriggerBody, VerifyBody
    from ephyra.upgrade.approvals import Done


def progress(kind: RunKind[Any], run: RunInfo, outcomes: dict[str, str]) -> Progress:
    """A run in a few words: what it is, its state, how far it got."""
    done, failed = kind.tally(run, outcomes)
    return {
        "id": run.id,
        "kind": run.kind,
        "state": run.state.value,
        "phase": run.phase or "",
        "title": kind.title(run),
        "created": run.created,
        "reason": run.reason,
        "total": kind.total(run),
        "done": done,
        "failed": failed,
    }


def outcomes_by_run(found: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The last outcome of each node, host or unit of each run, from its events."""
    last: dict[str, dict[str, str]] = {}
    for event in found:
        if event["type"] == "node":
            last.setdefault(event["run"], {})[event["node"]] = event["outcome"]
    return last


class AnyLocal:
    """In-process: every source is what it says (a local path, a URL, ...); the server
    resolves only the names its operator configured (:class:`ephyra.api.config.Named`)."""

    def inventory(self, spec: str) -> str:
        return spec

    def credentials(self, spec: str | None) -> str | None:
        return spec

    def alertmanager(self, name: str) -> str:
        return name

    def probe(self, name: str) -> str:
        return name


@dataclass
class Local:
    """Where the state lives: the journal (opened once), the locks, the versions store;
    and what the inventory and credential sources a caller names stand for (anything
    local in-process; in the server, only what its operator configured)."""

    journal_url: str | None = None
    lock_url: str | None = None
    store_url: str | None = None
    prefix: str = ""
    resolver: Resolver = field(default_factory=AnyLocal)

    @cached_property
    def journal(self) -> Journal:
        return Journal(self.journal_url)

    def service(self, kind: str) -> RunService[Any]:
        """The life cycle of the runs of ``kind``."""
        return RunService(get(kind), self.journal, self.lock_url)

    # -- runs of every kind ------------------------------------------------------
    def runs(self, kind: str | None = None) -> list[Progress]:
        journal = self.journal
        known = set(names())
        infos = [r for r in journal.runs(kind) if r.kind in known]
        outcomes = outcomes_by_run(events.read(journal.engine, limit=1_000_000, types=("node",)))
        return [progress(get(r.kind), r, outcomes.get(r.id, {})) for r in infos]

    def find_run(self, ident: str) -> RunInfo:
        """A run by id or unique prefix; ``latest``: the latest run of any kind."""
        if _latest(ident) is not None:
            return self.journal.run(ident)
        known = set(names())
        found = [r for r in self.journal.runs() if r.kind in known]
        if not found:
            raise RunNotFound(f"no run yet in {redact(self.journal.url)}")
        return found[-1]

    def run(self, ident: str) -> RunDetail:
        info = self.find_run(ident)
        if info.kind not in names():
            raise RunNotFound(f"run {ident} is a {info.kind} record, not a run")
        kind = get(info.kind)
        detail = self.service(info.kind).status(info.id).to_dict()
        items: list[Item] = [
            {
                "name": str(row.get(kind.item_name) or row.get("uuid") or ""),
                "state": row.get("forward") or "pending",
                "rollback": row.get("rollback") or "",
                "error": row.get("error") or "",
            }
            for row in detail[kind.items]
        ]
        outcomes = {i["name"]: i["state"] for i in items}
        return {"run": progress(kind, info, outcomes), "items": items, "detail": detail}

    def events(self, ident: str | None, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        journal = self.journal
        run_id = self.find_run(ident).id if ident else None
        return events.read(journal.engine, run_id, after, limit)

    def report(self, ident: str) -> dict[str, Any]:
        from ephyra.probes import report
        from ephyra.probes.base import RECORD

        info = self.find_run(ident)
        if info.kind not in names():
            raise RunNotFound(f"run {ident} is a {info.kind} record, not a run")
        kind = get(info.kind)
        detail = self.service(info.kind).status(info.id).to_dict()
        items = [
            report.Item(
                str(row.get(kind.item_name) or ""),
                str(row.get("host") or row.get(kind.item_name) or ""),
                str(row.get("stage") or ""),
            )
            for row in detail[kind.items]
        ]
        timelines = dict(self.journal.records(info.id, RECORD).get(RECORD) or {})
        # the compute API as ``availability:`` probes it (runs made before ``probes:`` too)
        compute = self.journal.records(info.id, "availability").get("availability") or {}
        if compute.get("started"):
            timelines.setdefault(report.COMPUTE, compute)
        found = events.read(self.journal.engine, info.id, limit=1_000_000, types=report.EVENT_TYPES)
        built = report.build(timelines, found, items, time.time())
        return {"run": info.id, "kind": info.kind, **built}

    def kind_runs(self, kind: str) -> list[dict[str, Any]]:
        return self.service(kind).list()

    def status(self, kind: str, ident: str | None) -> dict[str, Any]:
        return self.service(kind).status(_latest(ident)).to_dict()

    def pause(self, kind: str, ident: str | None) -> str:
        return self.service(kind).pause(_latest(ident))

    def abort(self, kind: str, ident: str | None, observer: Observer) -> str:
        return self.service(kind).abort(_latest(ident), observer)

    def resume(
        self,
        kind: str,
        ident: str | None,
        observer: Observer,
        exports: Exports | None = None,
        *,
        settings: dict[str, Any] | None = None,
    ) -> RunInfo:
        """Resume here, with ``settings`` (``{"concurrency": N}``) changed from now on."""
        service = self.service(kind)
        return service.resume(_latest(ident), observer, exports=exports, settings=settings)

    def rollback(
        self, kind: str, ident: str | None, observer: Observer, exports: Exports | None = None
    ) -> RunInfo:
        return self.service(kind).rollback(_latest(ident), observer, exports=exports)

    def finish(self, kind: str, ident: str | None, observer: Observer) -> str:
        return self.service(kind).finish(_latest(ident), observer)

    # -- an upgrade's approvals and steps (ephyra.upgrade.approvals) ---------------
    def approve_stage(self, ident: str | None, stage: str | None, by: str, source: str) -> Done:
        """Keep ``by``'s approval of ``stage`` (None: the next stage that waits for one)
        in the upgrade run's record; the run is not resumed."""
        from ephyra.upgrade import approvals

        return approvals.approve(self.service("upgrade"), _latest(ident), stage, by, source)

    def mark_step(self, ident: str | None) -> Done:
        """Ask the upgrade run to stop after its next stage; it is not resumed."""
        from ephyra.upgrade import approvals

        return approvals.step(self.service("upgrade"), _latest(ident))

    def approve(
        self,
        ident: str | None,
        observer: Observer,
        exports: Exports | None = None,
        *,
        stage: str | None = None,
        by: str = "",
    ) -> RunInfo:
        """Approve the stage and resume the run here."""
        done = self.approve_stage(ident, stage, by, "cli")
        observer.message(done.message)
        return self.resume("upgrade", done.run.id, observer, exports)

    def step(
        self, ident: str | None, observer: Observer, exports: Exports | None = None
    ) -> RunInfo:
        """Run the upgrade's next stage here, then pause."""
        done = self.mark_step(ident)
        observer.message(done.message)
        return self.resume("upgrade", done.run.id, observer, exports)

    def target(self, kind: str, ident: str | None, action: str) -> RunInfo:
        """The run ``action`` (resume, rollback, pause, abort, finish) acts on, as the run service
        chooses it (:meth:`ephyra.engine.service.RunService.target`)."""
        try:
            wanted = Action(action)
        except ValueError:
            raise UsageError(f"no action {action!r} on a run") from None
        return self.service(kind).target(_latest(ident), wanted)

    # -- planning and starting -------------------------------------------------
    def planned(self, kind: str, body: Any) -> Any:
        """The plan object of a run of ``kind`` (what plan shows and start drives)."""
        return get(kind).plan(body, self.resolver)

    def plan(self, kind: str, body: Any) -> Planned:
        shown = get(kind).shown(self.planned(kind, body), body)
        return {"plan": shown.data, "text": shown.text}

    def preflight(self, kind: str, body: Any) -> list[dict[str, Any]]:
        """The preflight of what ``body`` would start, run from this process."""
        return get(kind).preflight(self.planned(kind, body))

    def start(
        self,
        kind: str,
        body: Any,
        observer: Observer,
        *,
        exports: Exports | None = None,
        created: Created = no_hook,
    ) -> RunInfo:
        """Plan and drive a run here."""
        service = self.service(kind)
        notify = notifications.chosen(getattr(body, "notify", None))  # refused before planning
        service.ensure_free(body)
        found = self.planned(kind, body)
        return service.start(found, observer, exports=exports, created=created, notify=notify)

    def queue(self, kind: str, body: Any, board_url: str) -> RunInfo:
        """Plan a run and post it on a board, for ``ephyra conductor`` to drive."""
        from ephyra.engine.board import Board

        service = self.service(kind)
        notify = notifications.chosen(getattr(body, "notify", None))
        service.ensure_free(body)
        found = self.planned(kind, body)
        with Board(board_url, self.journal) as board:
            return service.queue(found, board, notify)

    def queue_resume(
        self,
        kind: str,
        ident: str | None,
        board_url: str,
        *,
        rollback: bool = False,
        settings: dict[str, Any] | None = None,
    ) -> RunInfo:
        """Post a run on a board: a conductor resumes it (or rolls it back)."""
        from ephyra.engine.board import Board

        service = self.service(kind)
        with Board(board_url, self.journal) as board:
            return service.queue_resume(_latest(ident), board, rollback=rollback, settings=settings)

    # -- hosts -----------------------------------------------------------------
    def hosts(self, cloud: str) -> list[Host]:
        from ephyra.compute.maintenance import by_ephyra
        from ephyra.compute.nova import ComputeCloud

        compute = ComputeCloud.connect(cloud)
        return [
            {
                "host": s.host,
                "status": "enabled" if s.enabled else "disabled",
                "state": "up" if s.up else "down",
                "disabled_reason": s.reason,
                "maintenance": by_ephyra(s),
            }
            for s in sorted(compute.services(), key=lambda s: s.host)
        ]

    def maintenance(self, cloud: str, host: str, on: bool) -> str:
        from ephyra.compute.maintenance import maintenance_off, maintenance_on

        operation = maintenance_on if on else maintenance_off
        return operation(self.journal, cloud, host, self.lock_url)

    def clouds(self) -> list[str]:
        import openstack.config
        from openstack.config import exceptions

        try:
            return sorted(openstack.config.OpenStackConfig().get_cloud_names())
        except exceptions.OpenStackConfigException as exc:
            raise UsageError(f"cannot read clouds.yaml: {exc}") from exc

    def inventory(self, sources: list[str], cloud: str | None, role: str | None) -> dict[str, Any]:
        from ephyra.inventory.model import inventory
        from ephyra.inventory.source import discovered, resolved

        given = resolved(sources, self.resolver.inventory)
        found = discovered(given or (["openstack"] if cloud else []), cloud)
        if role:
            found = inventory(
                found.with_role(role),
                endpoints=found.endpoints,
                regions=found.regions,
                sources=found.sources,
                facts=found.fact,
            )
        data: dict[str, Any] = found.to_dict()
        return data

    # -- environments (parallel control plane) ----------------------------------------
    @cached_property
    def environments(self) -> Any:
        from ephyra.netscheme.store import Environments

        return Environments(self.journal.engine)

    def env_list(self) -> list[EnvSummary]:
        return [env_summary(e) for e in self.environments.list()]

    def env_show(self, ref: str) -> dict[str, Any]:
        found: dict[str, Any] = self.environments.get(ref).model_dump(mode="json")
        return found

    def env_import(self, doc: dict[str, Any], replace: bool = False) -> EnvImported:
        from ephyra.netscheme.model import Environment

        env = Environment.parse(doc)
        new = self.environments.put(env, replace=replace)
        return {**env_summary(env), "created": new}

    def env_upgrade(self, ref: str, body: EnvUpgradeBody) -> EnvSummary:
        from ephyra.netscheme.lifecycle import upgrade

        return env_summary(self.environments.change(ref, upgrade(body.release_id, body.nodes)))

    def env_installed(self, ref: str, node: str) -> EnvSummary:
        from ephyra.netscheme.lifecycle import installed

        return env_summary(self.environments.change(ref, installed(node)))

    def deployment_info(
        self, ref: str, nodes: list[str], mode: Mode | None = None
    ) -> list[dict[str, Any]]:
        from ephyra.netscheme.serializers import deployment_info

        env = self.environments.get(ref)
        return [deployment_info(env, n, mode) for n in nodes]  # it refuses an unknown mode

    # -- versions ----------------------------------------------------------------
    def store_location(self) -> str:
        """--store, else a SQLite file beside the journal (when the journal is SQLite)."""
        if self.store_url:
            return self.store_url
        journal = self.journal_url or default_journal()
        if journal.startswith("sqlite:///") and journal != "sqlite:///:memory:":
            return f"sqlite:///{Path(journal.removeprefix('sqlite:///')).parent / 'versions.db'}"
        return default_url()

    @contextmanager
    def opened(self) -> Iterator[tuple[Store, Keys]]:
        store = open_store(self.store_location())
        with store:
            yield store, Keys(self.prefix)

    def trigger(self, body: TriggerBody) -> Triggered:
        from ephyra.versions import desired

        with self.opened() as (store, keys):
            rules = desired.Rules.parse(body.max_at_once, body.after, body.retries)
            made = desired.trigger(store, keys, body.version, rules, force=body.force)
        return {"version": made.version, "previous": made.previous or "", "by": made.by}

    def verify(self, body: VerifyBody) -> Verdict:
        from ephyra.versions import report

        with self.opened() as (store, keys):
            verdict = report.verify(store, keys, body.version, body.hosts)
        return {
            "version": verdict.version,
            "ok": verdict.ok,
            "hosts": len(body.hosts),
            "missing": list(verdict.missing),
        }

    def version_status(self) -> dict[str, Any]:
        from ephyra.versions import report

        with self.opened() as (store, keys):
            found: dict[str, Any] = report.status(store, keys)
        return found

    def version_history(self) -> list[Triggering]:
        from ephyra.versions import desired

        with self.opened() as (store, keys):
            found = desired.history(store, keys)
        return [
            {
                "at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.at)),
                "version": t.version,
                "previous": t.previous or "",
                "by": t.by,
                "forced": t.forced,
                "rules": t.rules.to_dict(),
            }
            for t in found
        ]

    def roles(self, role: str | None, version: str | None) -> Roles:
        """The hosts of every role (or of ``role``) at ``version`` (default: desired)."""
        from ephyra.versions import desired, roles

        with self.opened() as (store, keys):
            version = version or desired.current(store, keys)
            if not version:
                raise UsageError("no version is triggered yet: name one with --version")
            found = roles.active(store, keys, version, role or "")
        if role:
            found = {role: found.get(role, {})}
        return {"version": version, "roles": found}


def _latest(ident: str | None) -> str | None:
    """'latest' (in a path) and no id (on the command line) both mean the latest run."""
    return None if ident in (None, "", "latest") else ident


def env_summary(env: Any) -> EnvSummary:
    """An environment in a line: its state and where each node stands."""
    return {
        "id": env.id,
        "name": env.name,
        "status": env.status,
        "release_id": env.release_id,
        "provider": env.provider,
        "vips": ", ".join(f"{v.name}={v.address}" for v in env.vips),
        "nodes": [
            {
                "name": n.name,
                "roles": ",".join(n.roles),
                "release_id": n.release_id,
                "pending_release_id": n.pending_release_id,
                "status": n.status,
            }
            for n in env.nodes
        ],
    }


_: type[Operations] = Local  # mypy: Local does every operation, with the same types
