"""Every operation of the command line and the API, done in this process.

`ephyra` without ``--url`` calls these directly; ``ephyra serve`` calls them for its
clients; :mod:`ephyra.api.remote` does the same through a server. Each returns plain
data (dicts, lists, text), the same whichever way it is reached.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ephyra.api.bodies import (
    EnvUpgradeBody,
    EvacuateBody,
    ForkliftBody,
    TriggerBody,
    UpgradeBody,
    VerifyBody,
)
from ephyra.api.config import AnyLocal, Resolver
from ephyra.engine import events
from ephyra.engine.journal import Created, Journal, RunInfo, no_hook
from ephyra.engine.journal import default_url as default_journal
from ephyra.engine.metrics import NO_EXPORTS, Exports
from ephyra.errors import RunNotFound, UsageError
from ephyra.progress import DONE, Observer
from ephyra.versions.keys import Keys
from ephyra.versions.store import Store, default_url, open_store

if TYPE_CHECKING:
    from ephyra.inventory.model import Inventory
    from ephyra.netscheme.serializers import Mode

#: Inventory sources one request may name, at most.
MAX_SOURCES = 32
#: The kinds of run, as the API's paths name them.
KINDS = ("forklift", "upgrade", "evacuate")
#: What each kind calls the things its runs handle, and where its status keeps them.
ITEMS = {"forklift": ("nodes", "name"), "upgrade": ("units", "unit"), "evacuate": ("hosts", "host")}


def _service(kind: str) -> Any:
    if kind == "forklift":
        from ephyra.forklift import service
    elif kind == "upgrade":
        from ephyra.upgrade import service  # type: ignore[no-redef]
    elif kind == "evacuate":
        from ephyra.compute import service  # type: ignore[no-redef]
    else:
        raise UsageError(f"no kind of run {kind!r}: {', '.join(KINDS)}")
    return service


def rendered(renderable: Any, width: int = 120) -> str:
    """A rich renderable (a plan's tree) as plain text."""
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def progress(run: RunInfo, outcomes: dict[str, str]) -> dict[str, Any]:
    """A run in a few words: what it is, its state, how far it got."""
    meta = run.meta
    if run.kind == "forklift":
        title, total = f"{meta.get('from')} -> {meta.get('to')}", len(meta.get("order", []))
    elif run.kind == "upgrade":
        stages = meta.get("plan", {}).get("stages", [])
        total = sum(len(b["units"]) for s in stages for b in s["batches"])
        title = f"to {meta.get('release')}" + (f" on {meta['cloud']}" if meta.get("cloud") else "")
    else:
        hosts = meta.get("hosts", [])
        title, total = f"{', '.join(hosts)} on {meta.get('cloud')}", len(hosts)
    return {
        "id": run.id,
        "kind": run.kind,
        "state": run.state.value,
        "phase": meta.get("phase") or "",
        "title": title,
        "created": float(meta.get("created", 0)),
        "reason": meta.get("reason") or "",
        "total": total,
        "done": sum(1 for o in outcomes.values() if o.startswith(DONE)),
        "failed": sum(1 for o in outcomes.values() if o == "failed"),
    }


def outcomes_by_run(found: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The last outcome of each node, host or unit of each run, from its events."""
    last: dict[str, dict[str, str]] = {}
    for event in found:
        if event["type"] == "node":
            last.setdefault(event["run"], {})[event["node"]] = event["outcome"]
    return last


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

    # -- runs of every kind ------------------------------------------------------
    def runs(self, kind: str | None = None) -> list[dict[str, Any]]:
        journal = self.journal
        infos = [r for r in journal.runs(kind) if r.kind in KINDS]
        outcomes = outcomes_by_run(events.read(journal.engine, limit=1_000_000, types=("node",)))
        return [progress(r, outcomes.get(r.id, {})) for r in infos]

    def run(self, ident: str) -> dict[str, Any]:
        journal = self.journal
        info = journal.run(ident)
        if info.kind not in KINDS:
            raise RunNotFound(f"run {ident} is a {info.kind} record, not a run")
        detail = _service(info.kind).status(journal, info.id)
        key, name = ITEMS[info.kind]
        items = [
            {
                "name": str(row.get(name) or row.get("uuid") or ""),
                "state": row.get("forward") or "pending",
                "rollback": row.get("rollback") or "",
                "error": row.get("error") or "",
            }
            for row in detail[key]
        ]
        outcomes = {i["name"]: i["state"] for i in items}
        return {"run": progress(info, outcomes), "items": items, "detail": detail}

    def events(self, ident: str | None, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        journal = self.journal
        run_id = journal.run(ident).id if ident else None
        return events.read(journal.engine, run_id, after, limit)

    def kind_runs(self, kind: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = _service(kind).runs(self.journal)
        return rows

    def status(self, kind: str, ident: str | None) -> dict[str, Any]:
        found: dict[str, Any] = _service(kind).status(self.journal, _latest(ident))
        return found

    def pause(self, kind: str, ident: str | None) -> str:
        text: str = _service(kind).pause(self.journal, _latest(ident), lock_url=self.lock_url)
        return text

    def abort(self, kind: str, ident: str | None, observer: Observer) -> str:
        service, journal = _service(kind), self.journal
        if kind == "forklift":  # nodes caught mid-move go back, from here if no one runs it
            text: str = service.abort(journal, _latest(ident), observer, lock_url=self.lock_url)
        else:
            text = service.abort(journal, _latest(ident), lock_url=self.lock_url)
        return text

    def resume(
        self, kind: str, ident: str | None, observer: Observer, exports: Exports = NO_EXPORTS
    ) -> RunInfo:
        return self._drive("resume", kind, ident, observer, exports)

    def rollback(
        self, kind: str, ident: str | None, observer: Observer, exports: Exports = NO_EXPORTS
    ) -> RunInfo:
        return self._drive("rollback", kind, ident, observer, exports)

    def _drive(
        self, action: str, kind: str, ident: str | None, observer: Observer, exports: Exports
    ) -> RunInfo:
        operation = getattr(_service(kind), action)
        run: RunInfo = operation(
            self.journal, _latest(ident), observer, lock_url=self.lock_url, exports=exports
        )
        return run

    def target(self, kind: str, ident: str | None, action: str) -> RunInfo:
        """The run ``action`` (resume, abort, rollback) acts on: the one named, else the
        latest unfinished one (the latest of all for a rollback)."""
        from ephyra.engine.states import UNFINISHED, RunState

        states = frozenset(RunState) if action == "rollback" else UNFINISHED
        return self.journal.find(kind, _latest(ident), states)

    # -- planning and starting -------------------------------------------------
    def planned(self, kind: str, body: Any) -> Any:
        """The plan object of a run of ``kind`` (what plan shows and start drives)."""
        service = _service(kind)
        if isinstance(body, ForkliftBody):
            settings = forklift_settings(body, self.resolver.credentials(body.credentials))
            return service.plan(body.source, body.target, settings, body.nodes)
        if isinstance(body, EvacuateBody):
            return service.plan(body.cloud, body.hosts, evacuate_settings(body), body.also_down)
        if isinstance(body, UpgradeBody):
            from ephyra.upgrade import spec

            sources = self.sources(body.sources)
            cloud = upgrade_cloud(body.cloud, sources)
            if not sources and body.inventory is None and cloud:
                sources = ["openstack"]
            parsed = spec.parse(body.spec)  # checked before anything is discovered
            inline = body.inventory
            found = None if inline is None else self.discovered(sources, cloud, inline)
            return service.plan(parsed, sources, cloud, found)
        raise UsageError(f"a {kind} run cannot be planned from {type(body).__name__}")

    def plan(self, kind: str, body: Any) -> dict[str, Any]:
        found = self.planned(kind, body)
        if kind == "upgrade":
            return {"plan": found.plan.to_dict(), "text": found.plan.render(width=body.width)}
        return {"plan": found.to_dict(), "text": rendered(found.tree())}

    def start(
        self,
        kind: str,
        body: Any,
        observer: Observer,
        *,
        exports: Exports = NO_EXPORTS,
        created: Created = no_hook,
    ) -> RunInfo:
        """Plan and drive a run here."""
        service, journal = _service(kind), self.journal
        if kind == "forklift":
            service.ensure_free(journal, body.source, body.target, self.lock_url)
        elif kind == "evacuate":
            service.ensure_free(journal, body.cloud, body.hosts, self.lock_url)
        found = self.planned(kind, body)
        run: RunInfo = service.start(
            journal, found, observer, lock_url=self.lock_url, exports=exports, created=created
        )
        return run

    # -- hosts -----------------------------------------------------------------
    def hosts(self, cloud: str) -> list[dict[str, Any]]:
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
        from ephyra.compute import service

        operation = service.maintenance_on if on else service.maintenance_off
        return operation(self.journal, cloud, host, self.lock_url)

    def clouds(self) -> list[str]:
        import openstack.config
        from openstack.config import exceptions

        try:
            return sorted(openstack.config.OpenStackConfig().get_cloud_names())
        except exceptions.OpenStackConfigException as exc:
            raise UsageError(f"cannot read clouds.yaml: {exc}") from exc

    def sources(self, given: list[str]) -> list[str]:
        """The inventory sources ``given`` stand for, every one checked before any is used."""
        if len(given) > MAX_SOURCES:
            raise UsageError(f"at most {MAX_SOURCES} inventory sources, not {len(given)}")
        return [self.resolver.inventory(s) for s in given]

    def discovered(
        self, sources: list[str], cloud: str | None, inline: dict[str, Any] | None = None
    ) -> Inventory:
        """The sources' inventories, then the ``inline`` static document, merged."""
        from ephyra.inventory.model import merge
        from ephyra.inventory.source import discover
        from ephyra.inventory.static import INLINE, parse

        if inline is None:
            return discover(sources, cloud)
        parts = [discover(sources, cloud)] if sources else []
        return merge([*parts, parse(inline, INLINE, f"static:{INLINE}")])

    def inventory(self, sources: list[str], cloud: str | None, role: str | None) -> dict[str, Any]:
        from ephyra.inventory.model import inventory

        resolved = self.sources(sources)
        found = self.discovered(resolved or (["openstack"] if cloud else []), cloud)
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

    def env_list(self) -> list[dict[str, Any]]:
        return [env_summary(e) for e in self.environments.list()]

    def env_show(self, ref: str) -> dict[str, Any]:
        found: dict[str, Any] = self.environments.get(ref).model_dump(mode="json")
        return found

    def env_import(self, doc: dict[str, Any], replace: bool = False) -> dict[str, Any]:
        from ephyra.netscheme.model import Environment

        env = Environment.parse(doc)
        new = self.environments.put(env, replace=replace)
        return {**env_summary(env), "created": new}

    def env_upgrade(self, ref: str, body: EnvUpgradeBody) -> dict[str, Any]:
        from ephyra.netscheme.lifecycle import upgrade

        return env_summary(self.environments.change(ref, upgrade(body.release_id, body.nodes)))

    def env_installed(self, ref: str, node: str) -> dict[str, Any]:
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

    def trigger(self, body: TriggerBody) -> dict[str, Any]:
        from ephyra.versions import desired

        with self.opened() as (store, keys):
            rules = desired.Rules.parse(body.max_at_once, body.after)
            made = desired.trigger(store, keys, body.version, rules, force=body.force)
        return {"version": made.version, "previous": made.previous or "", "by": made.by}

    def verify(self, body: VerifyBody) -> dict[str, Any]:
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

    def version_history(self) -> list[dict[str, Any]]:
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

    def roles(self, role: str | None, version: str | None) -> dict[str, Any]:
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


def forklift_settings(body: ForkliftBody, credentials: str | None) -> Any:
    """The forklift's settings; ``credentials``: what the body's credentials stand for."""
    from ephyra.forklift.settings import Settings

    return Settings(
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
        credentials=credentials,
    )


def evacuate_settings(body: EvacuateBody) -> Any:
    from ephyra.compute.budget import Fallback, OnTimeout, Settings

    return Settings(
        concurrency=body.concurrency,
        per_host=body.per_host,
        max_per_project=body.max_per_project,
        max_per_group=body.max_per_group or None,
        fallback=Fallback(body.fallback),
        on_timeout=OnTimeout(body.on_timeout),
        migration_timeout=body.migration_timeout,
        target=body.target,
    )


def upgrade_cloud(cloud: str | None, sources: list[str]) -> str | None:
    """--os-cloud, else the cloud of the one openstack:CLOUD source."""
    named = {s.partition(":")[2] for s in sources if s.startswith("openstack:")}
    if cloud is None and len(named) == 1:
        return named.pop()
    return cloud


def env_summary(env: Any) -> dict[str, Any]:
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
