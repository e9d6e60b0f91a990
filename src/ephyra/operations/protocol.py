"""The operations the command line and the API share, as one typed interface.

:class:`ephyra.operations.local.Local` does them in this process and
:class:`ephyra.operations.remote.Remote` through a running ``ephyra serve``; both satisfy
:class:`Operations` (mypy checks it at the end of each module) and answer the same data for
the same request. A kind's status and plan are its own (free-form ``dict[str, Any]``); what
every kind shares is typed here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypedDict

if TYPE_CHECKING:
    from ephyra.bodies import Body
    from ephyra.engine.journal import RunInfo
    from ephyra.engine.metrics import Exports
    from ephyra.netscheme.serializers import Mode
    from ephyra.operations.bodies import EnvUpgradeBody, TriggerBody, VerifyBody
    from ephyra.progress import Observer


class Progress(TypedDict):
    """A run in a few words: what it is, its state, how far it got."""

    id: str
    kind: str
    state: str
    phase: str
    title: str
    created: float
    reason: str
    total: int
    done: int
    failed: int


class Item(TypedDict):
    """A node, host or unit of a run, and where it stands."""

    name: str
    state: str
    rollback: str
    error: str


class RunDetail(TypedDict):
    """A run: its summary, each of its items, and its kind's full status."""

    run: Progress
    items: list[Item]
    detail: dict[str, Any]


class Planned(TypedDict):
    """A plan as data, and as the text ``plan`` prints."""

    plan: dict[str, Any]
    text: str


class Host(TypedDict):
    """A compute host: its nova-compute state and whether Ephyra put it in maintenance."""

    host: str
    status: str
    state: str
    disabled_reason: str
    maintenance: bool


class Triggered(TypedDict):
    version: str
    previous: str
    by: str


class Verdict(TypedDict):
    version: str
    ok: bool
    hosts: int
    missing: list[str]


class Triggering(TypedDict):
    """A version triggered once, with the rules it came with."""

    at: str
    version: str
    previous: str
    by: str
    forced: bool
    rules: dict[str, Any]


class Roles(TypedDict):
    version: str
    roles: dict[str, Any]


class EnvNode(TypedDict):
    name: str
    roles: str
    release_id: int
    pending_release_id: int | None
    status: str


class EnvSummary(TypedDict):
    """An environment in a line: its state and where each node stands."""

    id: int
    name: str
    status: str
    release_id: int
    provider: str
    vips: str
    nodes: list[EnvNode]


class EnvImported(EnvSummary):
    created: bool


class Operations(Protocol):
    """Every operation of ``ephyra`` on runs, hosts, inventories, versions and
    environments. A run named ``None`` or ``latest`` is the latest (unfinished) run."""

    # -- runs of every kind ------------------------------------------------------------
    def runs(self, kind: str | None = None) -> list[Progress]: ...

    def run(self, ident: str) -> RunDetail: ...

    def events(
        self, ident: str | None, after: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]: ...

    def report(self, ident: str) -> dict[str, Any]:
        """A run's downtime report: each probed target's outages against its units
        (:mod:`ephyra.probes.report`)."""
        ...

    def kind_runs(self, kind: str) -> list[dict[str, Any]]: ...

    def status(self, kind: str, ident: str | None) -> dict[str, Any]: ...

    def pause(self, kind: str, ident: str | None) -> str: ...

    def abort(self, kind: str, ident: str | None, observer: Observer) -> str: ...

    def resume(
        self,
        kind: str,
        ident: str | None,
        observer: Observer,
        exports: Exports | None = ...,
        *,
        settings: dict[str, Any] | None = ...,
    ) -> RunInfo: ...

    def rollback(
        self, kind: str, ident: str | None, observer: Observer, exports: Exports | None = ...
    ) -> RunInfo: ...

    def finish(self, kind: str, ident: str | None, observer: Observer) -> str: ...

    def approve(
        self,
        ident: str | None,
        observer: Observer,
        exports: Exports | None = ...,
        *,
        stage: str | None = ...,
        by: str = ...,
    ) -> RunInfo: ...

    def step(
        self, ident: str | None, observer: Observer, exports: Exports | None = ...
    ) -> RunInfo: ...

    # -- planning and starting -----------------------------------------------------------
    def plan(self, kind: str, body: Body) -> Planned: ...

    def start(
        self, kind: str, body: Body, observer: Observer, *, exports: Exports | None = ...
    ) -> RunInfo: ...

    # -- hosts, clouds, inventory ----------------------------------------------------------
    def hosts(self, cloud: str) -> list[Host]: ...

    def maintenance(self, cloud: str, host: str, on: bool) -> str: ...

    def clouds(self) -> list[str]: ...

    def inventory(
        self, sources: list[str], cloud: str | None, role: str | None
    ) -> dict[str, Any]: ...

    # -- versions --------------------------------------------------------------------------
    def trigger(self, body: TriggerBody) -> Triggered: ...

    def verify(self, body: VerifyBody) -> Verdict: ...

    def version_status(self) -> dict[str, Any]: ...

    def version_history(self) -> list[Triggering]: ...

    def roles(self, role: str | None, version: str | None) -> Roles: ...

    # -- environments (parallel control plane) ---------------------------------------------
    def env_list(self) -> list[EnvSummary]: ...

    def env_show(self, ref: str) -> dict[str, Any]: ...

    def env_import(self, doc: dict[str, Any], replace: bool = False) -> EnvImported: ...

    def env_upgrade(self, ref: str, body: EnvUpgradeBody) -> EnvSummary: ...

    def env_installed(self, ref: str, node: str) -> EnvSummary: ...

    def deployment_info(
        self, ref: str, nodes: list[str], mode: Mode | None = None
    ) -> list[dict[str, Any]]: ...
