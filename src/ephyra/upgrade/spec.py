"""The upgrade specification: what to upgrade to, in which order, how fast, with what.

A YAML file (see ``docs/upgrade.md``)::

    release: "2026.2"                  # the version every strategy is asked to reach
    strategy: default                  # the strategy of services no rule names
    strategies:                        # name -> options of an ``ephyra.strategies`` plugin
      default: {type: package, packages: [nova-common]}
    versions: {placement: "16.0.0"}    # a strategy's own version, when not the release
    order: service                     # control plane service by service, or node by node
    projects: [identity, image, ...]   # service order (default: the upgrade guides' order)
    roles:
      controller: {max_at_once: 1}
      compute: {max_at_once: 2, after: [controller], drain: true, canary: cmp-1, soak: 60,
                per_domain: {zone: 1, aggregate: 1, cell: 1}}   # at most per batch
      storage: {apply: serial}         # serial, parallel (max_at_once), ignore (frozen)
    failure_domains: {rack-a: [stor-1, stor-2], rack-b: [stor-3]}   # one per batch
    services:
      nova-compute: {strategy: default, restart: "systemctl restart {service}"}
    restart: "systemctl restart {service}"   # after a service's strategy ('' for none)
    project_steps:                     # what a project's upgrade guide does as a whole
      compute:
        pin: {file: /etc/nova/nova.conf, section: upgrade_levels, options: {compute: auto}}
        sync: ["nova-manage api_db sync", "nova-manage db sync"]
        expand_only: true              # the previous release runs on the synced schema
        migrate: "nova-manage db online_data_migrations"
        status: "nova-status upgrade check"   # a preflight check: 0 ok, 1 warn, else block
        via: "ssh {host}"
    host_upgrade: {roles: [compute], strategy: os, reboot: "ssh {host} systemctl reboot",
                   reboot_timeout: 600}
    gates: {services_up: true, hypervisor_version: "{version}", timeout: 300,
            checks: [{name: ..., command: ..., timeout: 60}]}
    failure_threshold: 0               # failed units tolerated before the run pauses
    evacuation: {concurrency: 4, per_host: 2, max_per_group: 1}
    volume_evacuation: {concurrency: 2, per_pool: 1, timeout: 900, target: "storage-2@lvm#lvm"}
    estimate: {service: 60, host: 900, reboot: 300, per_server: 20, per_volume: 60, gate: 15}
    availability: {interval: 1}        # seconds between probes of the compute API (0: off)
    preflight: {skip: [capacity]}      # preflight checks not to run
    alarms: {url: "http://alertmanager.example:9093", policy: strict, ignore: [Watchdog],
             wait: 600}                # Alertmanager's alerts judged before and after each stage
    windows: [{cron: "0 22 * * 1-5", duration: 4h, timezone: Europe/Berlin}]  # when stages start
    approvals: ["data plane: compute", "database: *"]  # stages held until an admin approves
                                       # (also roles.ROLE.approval: true, every stage of ROLE)
    probes: {interval: 1, targets: [{name: vip, type: tcp, target: "192.0.2.10:443"}]}
                                       # what users see, probed for the run's report

Everything is checked when the file is read; a mistake names its key. A secret in a
strategy's ``env``, ``facts`` or ``extravars`` is a reference, ``{from_env: NAME}`` or
``{from_file: PATH}``, read when the step runs (see :mod:`ephyra.strategies.options`): the
specification, kept in the run's journal record, holds no secret, and a plain value under
a secret's name is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from ephyra import yamlfile
from ephyra.compute.budget import Fallback, OnTimeout, Settings
from ephyra.compute.fate import Fate
from ephyra.compute.topology import DOMAINS
from ephyra.errors import UsageError
from ephyra.names import check_version
from ephyra.strategies.base import CHECK_TIMEOUT, COMMAND_TIMEOUT, REBOOT_TIMEOUT
from ephyra.strategies.options import check_strategy_secrets, check_template
from ephyra.upgrade import probing
from ephyra.upgrade.alarms import Alarms
from ephyra.upgrade.probing import Probes
from ephyra.upgrade.windows import Window, Windows, seconds_of
from ephyra.volumes.budget import Settings as VolumeSettings

#: Projects in the order the OpenStack upgrade guides take them.
PROJECT_ORDER = (
    "identity",
    "image",
    "placement",
    "compute",
    "network",
    "block-storage",
    "orchestration",
    "dashboard",
    "bare-metal",
)
#: Within a project: conductors first (Nova's rolling upgrade guide), then schedulers, APIs.
SERVICE_RANK = ("conductor", "scheduler", "api")
#: Services of the data plane, upgraded host by host after the whole control plane: names
#: or shell-style patterns (every Neutron agent). Every service of a host that is not a
#: controller is of the data plane too (see :meth:`Spec.in_data_plane`).
DATA_PLANE_SERVICES = frozenset(
    {
        "nova-compute",
        "neutron-*agent",
        "ovn-controller",
        "cinder-volume",
        "cinder-backup",
        "manila-share",
    }
)
CONTROL_ROLE = "controller"
#: Roles whose hosts are emptied before their upgrade by default: servers off a compute,
#: volumes off a storage host (``roles.R.drain``).
DRAINED = ("compute", "storage")
#: A role's apply types: one host at a time, several (``max_at_once``), none (frozen).
APPLY = ("serial", "parallel", "ignore")
#: A section or option name a pin may write, and a value (no line break, no comment).
INI_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
INI_VALUE = re.compile(r"^[A-Za-z0-9_.,:/@+-]{1,128}$")


@dataclass(frozen=True)
class RoleRule:
    max_at_once: int = 1  # 0 freezes the role
    after: tuple[str, ...] = ()
    drain: bool = False
    canary: str | None = None  # a host name, or "first"
    soak: float = 0.0
    strategy: str | None = None
    #: domain (zone, aggregate, cell) -> most hosts of one of its names in a batch
    per_domain: tuple[tuple[str, int], ...] = ()
    approval: bool = False  # each stage of the role waits for an approval


@dataclass(frozen=True)
class HostUpgrade:
    roles: tuple[str, ...]
    strategy: str
    reboot: str = ""  # a command template run after the strategy ('' for none)
    reboot_timeout: float = REBOOT_TIMEOUT  # seconds the reboot command may run


@dataclass(frozen=True)
class Check:
    name: str
    command: str
    timeout: float = CHECK_TIMEOUT  # seconds one run of the command may take


@dataclass(frozen=True)
class Gates:
    services_up: bool = True
    hypervisor_version: str = ""  # a template; '' skips the check
    timeout: float = 300.0
    interval: float = 2.0
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Pin:
    """Options written into a configuration file of every host of a project while its
    services run two releases (``[upgrade_levels] compute = auto``)."""

    file: str  # a template
    section: str
    options: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ProjectSteps:
    """What a project's upgrade guide does for the project as a whole, around the
    upgrade of its services one by one."""

    pin: Pin | None = None
    sync: tuple[str, ...] = ()  # command templates, on the project's first control host
    expand_only: bool = False  # the sync only adds: the previous release runs on it
    migrate: str = ""  # a command template, run again while it exits migrate_again
    migrate_again: int = 1
    status: str = ""  # the project's upgrade check (preflight): 0 ok, 1 warn, else block
    via: str = ""
    timeout: float = COMMAND_TIMEOUT

    @property
    def options(self) -> dict[str, Any]:
        """The options of a command run on a host (``via``)."""
        return {"via": self.via} if self.via else {}


@dataclass(frozen=True)
class Estimate:
    service: float = 60.0
    host: float = 900.0
    reboot: float = 300.0
    per_server: float = 20.0
    per_volume: float = 60.0
    gate: float = 15.0


@dataclass(frozen=True)
class Spec:
    release: str
    strategies: Mapping[str, Mapping[str, Any]]
    strategy: str = "default"
    #: strategy -> the version it is asked to reach when it is not ``release`` (a project
    #: numbered on its own: Placement 16.0.0 in the release of Nova 34.0.0)
    versions: Mapping[str, str] = field(default_factory=dict)
    order: str = "service"
    projects: tuple[str, ...] = PROJECT_ORDER
    roles: Mapping[str, RoleRule] = field(default_factory=dict)
    services: Mapping[str, str] = field(default_factory=dict)  # service -> strategy
    restart: str = ""  # a command template run after a service's strategy ('' for none)
    restarts: Mapping[str, str] = field(default_factory=dict)  # service -> its own
    project_steps: Mapping[str, ProjectSteps] = field(default_factory=dict)
    host_upgrade: HostUpgrade | None = None
    gates: Gates = Gates()
    failure_threshold: int = 0
    evacuation: Settings = field(default_factory=Settings)
    volume_evacuation: VolumeSettings = field(default_factory=VolumeSettings)
    estimate: Estimate = Estimate()
    data_plane: frozenset[str] = DATA_PLANE_SERVICES
    #: Seconds between two probes of the compute API during the run (0: none).
    availability_interval: float = 1.0
    preflight_skip: tuple[str, ...] = ()  # preflight checks not run
    #: Alerts judged before and after each stage (:mod:`ephyra.upgrade.alarms`).
    alarms: Alarms = field(default_factory=Alarms)
    #: host -> its failure domain (a batch holds hosts of one only; e.g. Ceph's racks)
    failure_domains: Mapping[str, str] = field(default_factory=dict)
    #: When a stage may start (:mod:`ephyra.upgrade.windows`); none: always.
    windows: Windows = field(default_factory=Windows)
    #: Patterns of the names of the stages that wait for an approval
    #: (:mod:`ephyra.upgrade.approvals`).
    approvals: tuple[str, ...] = ()
    #: Self-healing and alerting told about each batch (:mod:`ephyra.upgrade.selfheal`).
    selfheal: tuple[Mapping[str, Any], ...] = ()
    #: Targets probed during the run, for its downtime (:mod:`ephyra.upgrade.probing`).
    probes: Probes = field(default_factory=Probes)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def rule(self, role: str) -> RoleRule:
        return self.roles.get(role) or RoleRule(drain=role in DRAINED)

    def strategy_of(self, service: str, role: str) -> str:
        return self.services.get(service) or self.rule(role).strategy or self.strategy

    def in_data_plane(self, service: str) -> bool:
        """Whether ``service`` is named (or matched) by ``data_plane``."""
        return any(fnmatchcase(service, pattern) for pattern in self.data_plane)

    def version_for(self, strategy: str) -> str:
        """The version ``strategy`` is asked to reach."""
        return self.versions.get(strategy, self.release)

    def restart_of(self, service: str) -> str:
        """The command that restarts ``service`` once upgraded ('' for none)."""
        return self.restarts.get(service, self.restart)


# -- reading --------------------------------------------------------------------------
class _Reader:
    """Typed access to one mapping of the file, naming the key in every error."""

    def __init__(self, data: Any, where: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise UsageError(f"{where}: expected a mapping, got {type(data).__name__}")
        self.data = data
        self.where = where

    def _get(self, key: str, kinds: tuple[type, ...], default: Any) -> Any:
        value = self.data.get(key, default)
        if value is default:
            return value
        if isinstance(value, bool) and bool not in kinds:
            raise UsageError(f"{self.where}.{key}: expected {kinds[0].__name__}, got {value!r}")
        if not isinstance(value, kinds):
            raise UsageError(f"{self.where}.{key}: expected {kinds[0].__name__}, got {value!r}")
        return value

    def text(self, key: str, default: Any = None) -> Any:
        value = self._get(key, (str, int, float), default)
        return value if value is None or value is default else str(value)

    def number(self, key: str, default: float) -> float:
        value = float(self._get(key, (int, float), default))
        if value < 0:
            raise UsageError(f"{self.where}.{key}: must not be negative")
        return value

    def integer(self, key: str, default: int | None) -> Any:
        value = self._get(key, (int,), default)
        if value is not None and value < 0:
            raise UsageError(f"{self.where}.{key}: must not be negative")
        return value

    def flag(self, key: str, default: bool) -> bool:
        return bool(self._get(key, (bool,), default))

    def names(self, key: str) -> tuple[str, ...]:
        value = self._get(key, (list, str), [])
        return (value,) if isinstance(value, str) else tuple(str(v) for v in value)

    def sub(self, key: str) -> _Reader:
        return _Reader(self.data.get(key), f"{self.where}.{key}")

    def unknown(self, known: set[str]) -> None:
        extra = sorted(set(self.data) - known)
        if extra:
            raise UsageError(f"{self.where}: unknown key(s) {', '.join(extra)}")


def _role(reader: _Reader, name: str) -> RoleRule:
    reader.unknown(
        {
            "max_at_once",
            "apply",
            "per_domain",
            "after",
            "drain",
            "canary",
            "soak",
            "strategy",
            "approval",
        }
    )
    return RoleRule(
        max_at_once=_at_once(reader),
        per_domain=_per_domain(reader.sub("per_domain")),
        after=reader.names("after"),
        drain=reader.flag("drain", name in DRAINED),
        canary=reader.text("canary"),
        soak=reader.number("soak", 0.0),
        strategy=reader.text("strategy"),
        approval=reader.flag("approval", False),
    )


def _at_once(reader: _Reader) -> int:
    """How many hosts of the role at once: ``max_at_once``, or its ``apply`` type
    (``serial``: one; ``parallel``: up to ``max_at_once``; ``ignore``: none, frozen)."""
    given = reader.integer("max_at_once", None)
    apply = reader.text("apply")
    if apply is None:
        return 1 if given is None else int(given)
    if apply not in APPLY:
        raise UsageError(f"{reader.where}.apply: one of {', '.join(APPLY)}, not {apply!r}")
    if apply == "serial" and given in (None, 1):
        return 1
    if apply == "ignore" and given in (None, 0):
        return 0
    if apply == "parallel" and given is not None and given >= 1:
        return int(given)
    raise UsageError(
        f"{reader.where}: apply {apply} and max_at_once {given} disagree "
        "(serial: 1; parallel: its maximum in max_at_once, 1 or more; ignore: 0)"
    )


def _per_domain(reader: _Reader) -> tuple[tuple[str, int], ...]:
    reader.unknown(set(DOMAINS))
    limits = []
    for domain in DOMAINS:
        most = reader.integer(domain, None)
        if most is None:
            continue
        if most < 1:
            raise UsageError(f"{reader.where}.{domain}: at least 1 (a host at a time)")
        limits.append((domain, int(most)))
    return tuple(limits)


def _failure_domains(reader: _Reader) -> dict[str, str]:
    """``failure_domains``: a domain -> its hosts, as host -> domain."""
    found: dict[str, str] = {}
    for domain in reader.data:
        for host in reader.names(str(domain)):
            if host in found:
                raise UsageError(
                    f"{reader.where}.{domain}: {host} is already in failure domain {found[host]}"
                )
            found[host] = str(domain)
    return found


def _settings(reader: _Reader) -> Settings:
    reader.unknown(set(Settings.__dataclass_fields__) - {"poll", "keep"})
    try:
        return Settings(
            concurrency=int(reader.integer("concurrency", 4)),
            per_host=int(reader.integer("per_host", 2)),
            max_per_project=reader.integer("max_per_project", None) or None,  # 0: no limit
            max_per_group=reader.integer("max_per_group", 1) or None,
            fallback=Fallback(reader.text("fallback", "cold")),
            on_timeout=OnTimeout(reader.text("on_timeout", "abort")),
            migration_timeout=reader.number("migration_timeout", 600.0),
            target=reader.text("target"),
            fate=Fate.parse(str(reader.text("fate", "live")), f"{reader.where}.fate"),
        )
    except ValueError as exc:
        raise UsageError(f"{reader.where}: {exc}") from exc


def _volume_settings(reader: _Reader) -> VolumeSettings:
    reader.unknown({"concurrency", "per_pool", "timeout", "target"})
    d = VolumeSettings()
    return VolumeSettings(
        concurrency=int(reader.integer("concurrency", d.concurrency)),
        per_pool=int(reader.integer("per_pool", d.per_pool)),
        timeout=reader.number("timeout", d.timeout),
        target=reader.text("target", d.target),
    )


def parse(data: Any, where: str = "spec") -> Spec:
    top = _Reader(data, where)
    top.unknown(
        {
            "release",
            "strategy",
            "strategies",
            "versions",
            "order",
            "projects",
            "roles",
            "services",
            "host_upgrade",
            "gates",
            "failure_threshold",
            "evacuation",
            "volume_evacuation",
            "estimate",
            "data_plane",
            "restart",
            "project_steps",
            "availability",
            "preflight",
            "selfheal",
            "alarms",
            "failure_domains",
            "windows",
            "approvals",
            "probes",
        }
    )
    release = top.text("release")
    if not release:
        raise UsageError(f"{where}.release: the version to upgrade to is required")
    check_version(release, f"{where}.release")
    strategies_r = top.sub("strategies")
    strategies: dict[str, Mapping[str, Any]] = {}
    for name in strategies_r.data:
        options = strategies_r.sub(str(name)).data
        if not isinstance(options.get("type"), str):
            raise UsageError(f"{where}.strategies.{name}.type: required (a strategy plugin name)")
        check_strategy_secrets(f"{where}.strategies.{name}", options)
        strategies[str(name)] = dict(options)
    versions_r = top.sub("versions")
    versions = {str(name): str(versions_r.text(str(name))) for name in versions_r.data}
    for name, version in versions.items():
        check_version(version, f"{where}.versions.{name}")
        if name not in strategies:
            raise UsageError(f"{where}.versions.{name}: no strategy {name!r} under strategies")
    order = top.text("order", "service")
    if order not in ("service", "node"):
        raise UsageError(f"{where}.order: 'service' or 'node', not {order!r}")
    roles_r = top.sub("roles")
    roles = {str(n): _role(roles_r.sub(str(n)), str(n)) for n in roles_r.data}
    services_r = top.sub("services")
    services: dict[str, str] = {}
    restarts: dict[str, str] = {}
    for name in services_r.data:
        entry = services_r.sub(str(name))
        entry.unknown({"strategy", "restart"})
        services[str(name)] = str(entry.text("strategy", ""))
        if "restart" in entry.data:
            restarts[str(name)] = _template(entry, "restart")
    host_upgrade = None
    if "host_upgrade" in top.data:
        hu = top.sub("host_upgrade")
        hu.unknown({"roles", "strategy", "reboot", "reboot_timeout"})
        host_upgrade = HostUpgrade(
            roles=hu.names("roles") or ("compute",),
            strategy=str(hu.text("strategy", "")),
            reboot=str(hu.text("reboot", "")),
            reboot_timeout=_positive(hu, "reboot_timeout", REBOOT_TIMEOUT),
        )
    g = top.sub("gates")
    g.unknown({"services_up", "hypervisor_version", "timeout", "interval", "checks"})
    checks = []
    for i, item in enumerate(g.data.get("checks") or []):
        c = _Reader(item, f"{g.where}.checks[{i}]")
        c.unknown({"name", "command", "timeout"})
        command = c.text("command")
        if not command:
            raise UsageError(f"{c.where}.command: required")
        name = c.text("name", f"check-{i + 1}")
        checks.append(Check(name, command, _positive(c, "timeout", CHECK_TIMEOUT)))
    gates = Gates(
        services_up=g.flag("services_up", True),
        hypervisor_version=str(g.text("hypervisor_version", "")),
        timeout=g.number("timeout", 300.0),
        interval=g.number("interval", 2.0) or 2.0,
        checks=tuple(checks),
    )
    e = top.sub("estimate")
    e.unknown(set(Estimate.__dataclass_fields__))
    defaults = Estimate()
    estimate = Estimate(**{k: e.number(k, getattr(defaults, k)) for k in vars(defaults)})
    spec = Spec(
        release=release,
        strategies=strategies,
        strategy=str(top.text("strategy", "default")),
        versions=versions,
        order=str(order),
        projects=top.names("projects") or PROJECT_ORDER,
        roles=roles,
        services=services,
        restart=_template(top, "restart"),
        restarts=restarts,
        project_steps=_project_steps(top.sub("project_steps")),
        availability_interval=_interval(top.sub("availability")),
        preflight_skip=_skipped(top.sub("preflight")),
        selfheal=_selfheal(top),
        alarms=_alarms(top.sub("alarms")),
        failure_domains=_failure_domains(top.sub("failure_domains")),
        windows=_windows(top),
        approvals=top.names("approvals"),
        probes=probing.read(top.data.get("probes"), f"{where}.probes"),
        host_upgrade=host_upgrade,
        gates=gates,
        failure_threshold=int(top.integer("failure_threshold", 0)),
        evacuation=_settings(top.sub("evacuation")),
        volume_evacuation=_volume_settings(top.sub("volume_evacuation")),
        estimate=estimate,
        data_plane=frozenset(top.names("data_plane")) or DATA_PLANE_SERVICES,
        raw=dict(data or {}),
    )
    _check_names(spec, where)
    return spec


def with_alertmanagers(data: Any, resolve: Callable[[str], str]) -> Any:
    """``data`` (a specification as read) with each Alertmanager URL it names
    (``alarms.url``, an ``alertmanager`` self-healing plugin's ``url``) passed through
    ``resolve``: in the server, a configured name becomes its URL and anything else is
    refused (:class:`ephyra.engine.kinds.Resolver`). What is not shaped as expected is
    left for :func:`parse` to refuse."""
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    alarms = out.get("alarms")
    if isinstance(alarms, Mapping) and isinstance(alarms.get("url"), str):
        out["alarms"] = {**alarms, "url": resolve(alarms["url"])}
    plugins = out.get("selfheal")
    if isinstance(plugins, list):
        out["selfheal"] = [
            {**p, "url": resolve(p["url"])}
            if isinstance(p, Mapping)
            and p.get("type") == "alertmanager"
            and isinstance(p.get("url"), str)
            else p
            for p in plugins
        ]
    return out


def _selfheal(top: _Reader) -> tuple[Mapping[str, Any], ...]:
    """The ``selfheal:`` list, each plugin's options checked by the plugin."""
    from ephyra.upgrade import selfheal

    value = top.data.get("selfheal") or []
    if not isinstance(value, list):
        raise UsageError(f"{top.where}.selfheal: expected a list of plugins, got {value!r}")
    for index, options in enumerate(value):
        selfheal.build(options, f"{top.where}.selfheal[{index}]")
    return tuple(dict(options) for options in value)


def _alarms(reader: _Reader) -> Alarms:
    reader.unknown(set(Alarms.__dataclass_fields__))
    try:
        d = Alarms()
        return Alarms(
            url=str(reader.text("url", d.url)),
            policy=str(reader.text("policy", d.policy)),
            severities=reader.names("severities"),
            names=reader.names("names"),
            ignore=reader.names("ignore"),
            wait=reader.number("wait", d.wait),
            interval=reader.number("interval", d.interval),
        )
    except UsageError as exc:
        raise UsageError(f"{reader.where.rpartition('.')[0]}.{exc}") from exc


def _windows(top: _Reader) -> Windows:
    """The ``windows:`` list, each window checked by :class:`Window`."""
    value = top.data.get("windows") or []
    if not isinstance(value, list):
        raise UsageError(f"{top.where}.windows: expected a list of windows, got {value!r}")
    found = []
    d: dict[str, Any] = {f.name: f.default for f in fields(Window)}  # Window() is none
    for index, item in enumerate(value):
        reader = _Reader(item, f"{top.where}.windows[{index}]")
        reader.unknown(set(Window.__dataclass_fields__))
        for key in ("start", "end"):
            if key in reader.data and not isinstance(reader.data[key], str):
                raise UsageError(
                    f"{reader.where}.{key}: an ISO 8601 time in quotes "
                    f'("2026-12-24T22:00:00+01:00"), not {reader.data[key]!r}'
                )
        try:
            duration = reader.data.get("duration")
            found.append(
                Window(
                    cron=str(reader.text("cron", d["cron"])),
                    duration=d["duration"]
                    if duration is None
                    else seconds_of(duration, "duration"),
                    timezone=str(reader.text("timezone", d["timezone"])),
                    start=str(reader.text("start", d["start"])),
                    end=str(reader.text("end", d["end"])),
                )
            )
        except UsageError as exc:
            raise UsageError(f"{reader.where}.{exc}") from exc
    return Windows(tuple(found))


def _skipped(reader: _Reader) -> tuple[str, ...]:
    reader.unknown({"skip"})
    return reader.names("skip")


def _interval(reader: _Reader) -> float:
    reader.unknown({"interval"})
    seconds = reader.number("interval", 1.0)
    if 0 < seconds < 0.1:
        raise UsageError(f"{reader.where}.interval: at least 0.1 seconds (0: no probe)")
    return seconds


def _template(reader: _Reader, key: str) -> str:
    """A command template ('' when absent), its placeholders checked."""
    value = str(reader.text(key, "") or "")
    if value:
        check_template(f"{reader.where}.{key}", value)
    return value


def _project_steps(reader: _Reader) -> dict[str, ProjectSteps]:
    found: dict[str, ProjectSteps] = {}
    for project in reader.data:
        entry = reader.sub(str(project))
        entry.unknown(
            {"pin", "sync", "expand_only", "migrate", "migrate_again", "status", "via", "timeout"}
        )
        pin = None
        if "pin" in entry.data:
            p = entry.sub("pin")
            p.unknown({"file", "section", "options"})
            file = _template(p, "file")
            if not file:
                raise UsageError(f"{p.where}.file: required (the configuration file to pin in)")
            section = str(p.text("section", "upgrade_levels"))
            opts = p.sub("options")
            if not opts.data:
                raise UsageError(f"{p.where}.options: required, e.g. {{compute: auto}}")
            options = tuple((str(k), str(opts.text(str(k), ""))) for k in opts.data)
            for key, value in ((section, "section"), *((k, "option") for k, _ in options)):
                if not INI_NAME.match(key):
                    raise UsageError(f"{p.where}: {key!r} is not an ini {value} name")
            for key, value in options:
                if not INI_VALUE.match(value):
                    raise UsageError(f"{p.where}.options.{key}: {value!r} is not a plain value")
            pin = Pin(file, section, options)
        sync = entry.names("sync")
        for i, command in enumerate(sync):
            check_template(f"{entry.where}.sync[{i}]", command)
        steps = ProjectSteps(
            pin=pin,
            sync=sync,
            expand_only=entry.flag("expand_only", False),
            migrate=_template(entry, "migrate"),
            migrate_again=int(entry.integer("migrate_again", 1)),
            status=_template(entry, "status"),
            via=_template(entry, "via"),
            timeout=_positive(entry, "timeout", COMMAND_TIMEOUT),
        )
        if steps.migrate_again == 0:
            raise UsageError(f"{entry.where}.migrate_again: 0 is success, not 'again'")
        if steps.expand_only and not steps.sync:
            raise UsageError(f"{entry.where}.expand_only: says what the sync does; no sync given")
        found[str(project)] = steps
    return found


def _positive(reader: _Reader, key: str, default: float) -> float:
    seconds = reader.number(key, default)
    if not seconds > 0:
        raise UsageError(f"{reader.where}.{key}: must be a positive number of seconds")
    return seconds


def _check_names(spec: Spec, where: str) -> None:
    named: dict[str, str | None] = {f"{where}.strategy": spec.strategy}
    named |= {f"{where}.roles.{r}.strategy": rule.strategy for r, rule in spec.roles.items()}
    named |= {f"{where}.services.{s}.strategy": name for s, name in spec.services.items()}
    if spec.host_upgrade:
        named[f"{where}.host_upgrade.strategy"] = spec.host_upgrade.strategy
    known = ", ".join(sorted(spec.strategies)) or "none"
    for key, name in named.items():
        if name and name not in spec.strategies:
            raise UsageError(f"{key}: no strategy {name!r} under strategies (known: {known})")
    for role, rule in spec.roles.items():
        for other in rule.after:
            if other == role:
                raise UsageError(f"{where}.roles.{role}.after: a role cannot wait for itself")


def load(path: str | Path) -> Spec:
    try:
        data = yamlfile.read(path)
    except OSError as exc:
        raise UsageError(f"cannot read the upgrade specification {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {exc}") from exc
    return parse(data, str(path))
