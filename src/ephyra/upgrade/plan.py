"""The decision engine: from an inventory and a specification, the upgrade's steps in order.

The plan is a tree: stages, run one after the other; in each stage, batches, run one
after the other; in each batch, units, run at once. A unit is one host's part of a
stage: optionally drained, then upgraded by one or more strategy actions, then gated.

- The control plane goes first: service by service in the projects' order (or node by
  node with ``order: node``), each service on one controller at a time (its role's
  ``max_at_once``).
- Then the data plane, role by role (``after`` orders roles; ``controller`` is always
  done by then), host by host: the canary alone first, then batches of
  ``max_at_once``. Compute hosts are drained first and enabled after.
- A role with ``max_at_once: 0`` is frozen: its hosts are listed and left alone.
- A project with ``project_steps`` gets stages of its own, as its upgrade guide asks:
  before its first control stage, its pins written on every host of the project
  (``pin: P``) and its databases synced from its first control host once the new code is
  installed there (``database: P``); after the data plane, the pins removed and each
  host's services of the project restarted, one host at a time (``unpin: P``), then its
  online data migrations until done (``migrate: P``). A stage after which the previous
  release cannot come back (a sync that is not expand-only, the data migrations) is a
  *point of no return*: a rollback is refused once it began.
- The stages the specification names under ``approvals`` (or of a role with
  ``approval: true``) wait for an admin's approval before they start
  (:mod:`ephyra.upgrade.approvals`).
- The strategies of its units that have no downgrade are named: a rollback leaves what
  they did (an operator sees it before starting, not during a rollback).

Planning reads nothing but its arguments, so a plan is the same every time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ephyra.compute import topology
from ephyra.errors import UsageError
from ephyra.inventory.model import Host, Inventory
from ephyra.strategies import base as strategies
from ephyra.upgrade import approvals, windows
from ephyra.upgrade.spec import CONTROL_ROLE, SERVICE_RANK, RoleRule, Spec

CONTROL, DATA = "control", "data"
#: Data-plane roles without an ``after`` of their own go in this order.
DATA_ROLE_RANK = ("network", "storage", "compute")
#: The data-plane role a host's services imply, when its roles name none.
ROLE_OF_SERVICE = (("nova-", "compute"), ("neutron-", "network"), ("ovn-", "network"))


#: What an action does: a strategy's upgrade of services then their restart, of the host,
#: or of services' code only (install); a project's database sync, pins written or
#: removed (then its services restarted), online data migrations.
SERVICE, HOST, INSTALL, SYNC, PIN, UNPIN, MIGRATE = (
    "service",
    "host",
    "install",
    "sync",
    "pin",
    "unpin",
    "migrate",
)
#: The actions of a project's own stages (no strategy).
PROJECT_KINDS = frozenset({SYNC, PIN, UNPIN, MIGRATE})


@dataclass(frozen=True)
class Action:
    """One call: a strategy's on some services of the host or on the host itself, or one
    of a project's own steps (``project``)."""

    strategy: str
    services: tuple[str, ...] = ()
    kind: str = SERVICE
    project: str = ""

    def describe(self) -> str:
        names = ",".join(self.services)
        return {
            SERVICE: f"{self.strategy}: {names}",
            HOST: f"{self.strategy}: host",
            INSTALL: f"{self.strategy}: install {names}",
            SYNC: f"sync {self.project} databases",
            PIN: f"pin {self.project}",
            UNPIN: f"unpin {self.project}, restart {names}",
            MIGRATE: f"{self.project} online data migrations",
        }[self.kind]


@dataclass(frozen=True)
class Unit:
    id: str
    host: str
    role: str
    plane: str
    actions: tuple[Action, ...]
    drain: bool = False
    servers: int = 0
    move_volumes: bool = False  # a storage host's volumes moved off it first (cinder-volume)
    volumes: int = 0
    reboot: bool = False
    seconds: float = 0.0

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(s for a in self.actions for s in a.services)

    def describe(self) -> str:
        parts = [f"drain {self.servers} server(s)"] if self.drain else []
        parts += [f"move {self.volumes} volume(s)"] if self.move_volumes else []
        parts += [action.describe() for action in self.actions]
        if self.reboot:
            parts.append("reboot")
        return f"{self.host} [{'; '.join(parts)}]"


@dataclass(frozen=True)
class Batch:
    units: tuple[Unit, ...]
    canary: bool = False
    soak: float = 0.0

    @property
    def seconds(self) -> float:
        return max((u.seconds for u in self.units), default=0.0) + self.soak


@dataclass(frozen=True)
class Stage:
    name: str
    plane: str
    role: str
    batches: tuple[Batch, ...]
    frozen: tuple[str, ...] = ()
    #: Why the previous release cannot come back once this stage began ('' if it can).
    no_return: str = ""
    #: The topology rules its batches keep, in words (:mod:`ephyra.compute.topology`).
    kept: str = ""
    #: The maintenance window the estimate puts it in ('' without windows).
    window: str = ""
    #: Whether the stage waits for an approval before it starts (:mod:`.approvals`).
    approval: bool = False

    @property
    def seconds(self) -> float:
        return sum(b.seconds for b in self.batches)

    def units(self) -> list[Unit]:
        return [u for b in self.batches for u in b.units]


@dataclass(frozen=True)
class Plan:
    release: str
    order: str
    stages: tuple[Stage, ...]
    #: The strategies of its units that cannot downgrade: a rollback keeps what they did.
    no_downgrade: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def units(self) -> list[Unit]:
        return [u for s in self.stages for b in s.batches for u in b.units]

    def unit(self, unit_id: str) -> Unit:
        for unit in self.units():
            if unit.id == unit_id:
                return unit
        raise KeyError(unit_id)

    @property
    def frozen(self) -> list[str]:
        return sorted({h for s in self.stages for h in s.frozen})

    def hosts_of(self, strategy: str) -> list[str]:
        """The hosts of the units that call ``strategy``, in the order they run."""
        found = [u.host for u in self.units() if any(a.strategy == strategy for a in u.actions)]
        return list(dict.fromkeys(found))

    # -- serialising (the run keeps its plan) ------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "order": self.order,
            "seconds": round(self.seconds, 1),
            "stages": [
                {
                    "name": s.name,
                    "plane": s.plane,
                    "role": s.role,
                    "seconds": round(s.seconds, 1),
                    "frozen": list(s.frozen),
                    **({"no_return": s.no_return} if s.no_return else {}),
                    **({"kept": s.kept} if s.kept else {}),
                    **({"window": s.window} if s.window else {}),
                    **({"approval": True} if s.approval else {}),
                    "batches": [
                        {
                            "canary": b.canary,
                            "soak": b.soak,
                            "units": [_unit_dict(u) for u in b.units],
                        }
                        for b in s.batches
                    ],
                }
                for s in self.stages
            ],
            "no_downgrade": list(self.no_downgrade),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            release=str(data["release"]),
            order=str(data["order"]),
            stages=tuple(
                Stage(
                    name=s["name"],
                    plane=s["plane"],
                    role=s["role"],
                    frozen=tuple(s.get("frozen") or ()),
                    no_return=str(s.get("no_return") or ""),
                    kept=str(s.get("kept") or ""),
                    window=str(s.get("window") or ""),
                    approval=bool(s.get("approval")),
                    batches=tuple(
                        Batch(
                            units=tuple(_unit_from(u) for u in b["units"]),
                            canary=bool(b.get("canary")),
                            soak=float(b.get("soak") or 0.0),
                        )
                        for b in s["batches"]
                    ),
                )
                for s in data["stages"]
            ),
            no_downgrade=tuple(data.get("no_downgrade") or ()),  # not in older runs' plans
        )

    # -- showing ------------------------------------------------------------------------
    def render(self, width: int = 6) -> str:
        """The tree as text, at most ``width`` hosts named per batch."""
        units = self.units()
        lines = [
            f"upgrade to {self.release}: {len(self.stages)} stage(s), {len(units)} unit(s), "
            f"estimate {duration(self.seconds)}"
        ]
        for i, stage in enumerate(self.stages):
            last_stage = i == len(self.stages) - 1
            head, pad = ("└── ", "    ") if last_stage else ("├── ", "│   ")
            lines.append(
                f"{head}{stage.name}: {len(stage.batches)} batch(es), {duration(stage.seconds)}"
                + (f", window {stage.window}" if stage.window else "")
            )
            rows = [_batch_line(n, b, width) for n, b in enumerate(stage.batches, 1)]
            if stage.frozen:
                rows.append(f"frozen (max_at_once 0): {_names(stage.frozen, width)}")
            if stage.kept:
                rows.append(f"batches keep {stage.kept}")
            if stage.approval:
                rows.insert(0, "waits for approval (ephyra upgrade approve RUN)")
            if stage.no_return:
                rows.append(f"point of no return: {stage.no_return}")
            for j, row in enumerate(rows):
                lines.append(f"{pad}{'└── ' if j == len(rows) - 1 else '├── '}{row}")
        for strategy in self.no_downgrade:
            lines.append(
                f"rollback: not possible for units of strategy {strategy} (it has no downgrade):"
                f" a rollback leaves what it did on {_names(self.hosts_of(strategy), width)}"
            )
        return "\n".join(lines)


def _unit_dict(u: Unit) -> dict[str, Any]:
    return {
        "id": u.id,
        "host": u.host,
        "role": u.role,
        "plane": u.plane,
        "drain": u.drain,
        "servers": u.servers,
        **({"move_volumes": True, "volumes": u.volumes} if u.move_volumes else {}),
        "reboot": u.reboot,
        "seconds": round(u.seconds, 1),
        "actions": [
            {"strategy": a.strategy, "services": list(a.services), "kind": a.kind}
            | ({"project": a.project} if a.project else {})
            for a in u.actions
        ],
    }


def _unit_from(u: Mapping[str, Any]) -> Unit:
    return Unit(
        id=u["id"],
        host=u["host"],
        role=u["role"],
        plane=u["plane"],
        drain=bool(u["drain"]),
        servers=int(u["servers"]),
        move_volumes=bool(u.get("move_volumes")),
        volumes=int(u.get("volumes") or 0),
        reboot=bool(u["reboot"]),
        seconds=float(u["seconds"]),
        actions=tuple(
            Action(a["strategy"], tuple(a["services"]), a["kind"], a.get("project", ""))
            for a in u["actions"]
        ),
    )


def _names(hosts: Sequence[str], width: int) -> str:
    shown = ", ".join(hosts[:width])
    return shown + (f" and {len(hosts) - width} more" if len(hosts) > width else "")


def _batch_line(n: int, batch: Batch, width: int) -> str:
    label = f"batch {n}" + (" (canary)" if batch.canary else "")
    if len(batch.units) <= width:
        body = "; ".join(u.describe() for u in batch.units)
    else:
        body = _names([u.host for u in batch.units], width)
    soak = f", then soak {duration(batch.soak)}" if batch.soak else ""
    return f"{label}, {duration(batch.seconds - batch.soak)}{soak}: {body}"


def duration(seconds: float) -> str:
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


# -- planning ---------------------------------------------------------------------------
class _Planner:
    def __init__(self, inventory: Inventory, spec: Spec) -> None:
        self.inv = inventory
        self.spec = spec
        self.project_rank = {p: i for i, p in enumerate(spec.projects)}

    def service_key(self, project: str, name: str) -> tuple[int, str, int, str]:
        """Projects in the specification's order (those it does not name after, each
        together), then conductors, schedulers, APIs, the rest, by name."""
        rank = next((i for i, word in enumerate(SERVICE_RANK) if word in name), len(SERVICE_RANK))
        return (self.project_rank.get(project, len(self.project_rank)), project, rank, name)

    def is_data(self, host: Host, service: str) -> bool:
        """Whether ``service`` is upgraded with ``host``'s data plane: the specification
        says so (``data_plane``), or the host is no controller (a compute's or a network
        node's agents never get a control-plane stage there)."""
        return self.spec.in_data_plane(service) or bool(
            host.roles and CONTROL_ROLE not in host.roles
        )

    def control_role(self, host: Host) -> str:
        if CONTROL_ROLE in host.roles or not host.roles:
            return CONTROL_ROLE
        return sorted(host.roles)[0]

    def limit(self, roles: Iterable[str]) -> int:
        return min((self.spec.rule(r).max_at_once for r in roles), default=1)

    def actions(self, host: Host, services: Sequence[str], role: str) -> tuple[Action, ...]:
        """The host's services, in order, grouped into consecutive calls per strategy."""
        out: list[Action] = []
        for name in services:
            strategy = self.spec.strategy_of(name, role)
            if out and out[-1].strategy == strategy:
                out[-1] = Action(strategy, (*out[-1].services, name))
            else:
                out.append(Action(strategy, (name,)))
        return tuple(out)

    def seconds(self, unit: Unit) -> float:
        e = self.spec.estimate
        total = e.gate
        for action in unit.actions:
            total += e.host if action.kind == "host" else e.service
        if unit.reboot:
            total += e.reboot
        if unit.drain and unit.servers:
            ev = self.spec.evacuation
            total += unit.servers * e.per_server / max(1, min(ev.concurrency, ev.per_host))
        if unit.move_volumes and unit.volumes:
            volumes = self.spec.volume_evacuation
            total += unit.volumes * e.per_volume / min(volumes.concurrency, volumes.per_pool)
        return total

    def finish(self, unit: Unit) -> Unit:
        return Unit(**{**vars(unit), "seconds": self.seconds(unit)})

    # -- control plane --------------------------------------------------------------
    def control_stages(self) -> list[Stage]:
        services: dict[str, tuple[int, str, int, str]] = {}
        for host in self.inv.hosts:
            for svc in host.services:
                if not self.is_data(host, svc.name):
                    services.setdefault(svc.name, self.service_key(svc.project, svc.name))
        ordered = sorted(services, key=lambda n: services[n])
        if self.spec.order == "node":
            return self._node_by_node(ordered)
        stages = []
        for name in ordered:
            hosts = [h for h in self.inv.hosts if h.runs(name) and not self.is_data(h, name)]
            units = [
                self.finish(
                    Unit(
                        id=f"control:{name}@{h.name}",
                        host=h.name,
                        role=self.control_role(h),
                        plane=CONTROL,
                        actions=self.actions(h, [name], self.control_role(h)),
                    )
                )
                for h in hosts
            ]
            stages.append(self._stage(f"control plane: {name}", CONTROL, CONTROL_ROLE, units))
        return stages

    def _node_by_node(self, ordered: list[str]) -> list[Stage]:
        rank = {name: i for i, name in enumerate(ordered)}
        units = []
        for host in self.inv.hosts:
            mine = sorted(
                (
                    s.name
                    for s in host.services
                    if s.name in rank and not self.is_data(host, s.name)
                ),
                key=rank.__getitem__,
            )
            if mine:
                role = self.control_role(host)
                units.append(
                    self.finish(
                        Unit(
                            id=f"control@{host.name}",
                            host=host.name,
                            role=role,
                            plane=CONTROL,
                            actions=self.actions(host, mine, role),
                        )
                    )
                )
        return (
            [self._stage("control plane: node by node", CONTROL, CONTROL_ROLE, units)]
            if units
            else []
        )

    # -- data plane -----------------------------------------------------------------
    def data_roles(self, wanted: set[str]) -> list[str]:
        """Roles in dependency order (``after``), ties by DATA_ROLE_RANK then name."""

        def tie(role: str) -> tuple[int, str]:
            rank = DATA_ROLE_RANK.index(role) if role in DATA_ROLE_RANK else len(DATA_ROLE_RANK)
            return (rank, role)

        deps = {r: {d for d in self.spec.rule(r).after if d in wanted} for r in wanted}
        done: list[str] = []
        while deps:
            ready = sorted((r for r, d in deps.items() if not d), key=tie)
            if not ready:
                cycle = ", ".join(sorted(deps))
                raise UsageError(f"roles wait for each other (after:): {cycle}")
            done.append(ready[0])
            del deps[ready[0]]
            for d in deps.values():
                d.discard(ready[0])
        return done

    def data_role(self, host: Host, services: Sequence[str]) -> str:
        roles = sorted(host.roles - {CONTROL_ROLE})
        if roles:
            return roles[0]
        for name in services:
            for prefix, role in ROLE_OF_SERVICE:
                if name.startswith(prefix):
                    return role
        return "storage"

    def data_stages(self) -> list[Stage]:
        spec = self.spec
        hu = spec.host_upgrade
        candidates: list[tuple[Host, list[str], bool]] = []
        for host in self.inv.hosts:
            mine = sorted(
                (s.name for s in host.services if self.is_data(host, s.name)),
                key=lambda n: self.service_key(_project(host, n), n),
            )
            upgrade_host = hu is not None and bool(host.roles & set(hu.roles))
            if mine or upgrade_host:
                candidates.append((host, mine, upgrade_host))
        provisional = {id(h): self.data_role(h, m) for h, m, _ in candidates}
        wanted = set(provisional.values())
        order = self.data_roles(
            wanted | {r for h, _, _ in candidates for r in h.roles} - {CONTROL_ROLE}
        )
        position = {r: i for i, r in enumerate(order)}
        per_role: dict[str, list[Unit]] = {}
        for host, mine, upgrade_host in candidates:
            roles = [r for r in host.roles if r in position] or [provisional[id(host)]]
            role = min(roles, key=lambda r: position.get(r, len(position)))
            rule = spec.rule(role)
            actions = self.actions(host, mine, role)
            if upgrade_host and hu is not None:
                actions = (*actions, Action(hu.strategy, (), "host"))
            unit = Unit(
                id=f"data@{host.name}",
                host=host.name,
                role=role,
                plane=DATA,
                actions=actions,
                drain=rule.drain and ("nova-compute" in mine or role == "compute"),
                move_volumes=rule.drain and "cinder-volume" in mine,
                volumes=host.volumes,
                servers=host.servers,
                reboot=upgrade_host and hu is not None and bool(hu.reboot),
            )
            per_role.setdefault(role, []).append(self.finish(unit))
        return [
            self._stage(f"data plane: {role}", DATA, role, per_role[role])
            for role in order
            if role in per_role
        ]

    def _stage(self, name: str, plane: str, role: str, units: list[Unit]) -> Stage:
        frozen = [u for u in units if self.spec.rule(u.role).max_at_once == 0]
        live = [u for u in units if self.spec.rule(u.role).max_at_once > 0]
        batches: list[Batch] = []
        rule = self.spec.rule(role)
        if plane == DATA and rule.canary and live:
            canary = live[0] if rule.canary == "first" else None
            for u in live:
                if u.host == rule.canary:
                    canary = u
            if canary is None:
                raise UsageError(
                    f"roles.{role}.canary: {rule.canary!r} is not a host of role {role} "
                    f"({_names([u.host for u in live], 6)})"
                )
            batches.append(Batch((canary,), canary=True, soak=rule.soak))
            live = [u for u in live if u is not canary]
        if plane == DATA:  # empty hosts first: nothing to move, the quickest to take down
            live.sort(key=lambda u: bool(u.servers or u.volumes))
        size = max(1, self.limit({u.role for u in live}) if live else 1)
        limits = dict(rule.per_domain)
        places = {
            u.id: topology.place_of(self.inv.host(u.host), self.spec.failure_domains) for u in live
        }
        batches += [Batch(b) for b in topology.cut(live, size, limits, lambda u: places[u.id])]
        kept = topology.describe(limits, places.values())
        return Stage(name, plane, role, tuple(batches), tuple(u.host for u in frozen), kept=kept)

    # -- a project's own stages -----------------------------------------------------
    def with_projects(self, control: list[Stage], data: list[Stage]) -> list[Stage]:
        """``control`` then ``data``, with the stages of each project that has
        ``project_steps``: its pins and database before its first control stage (before
        the data plane if it has none), its unpin and migrations after the data plane.
        Frozen hosts are left alone, and a project with one keeps its pins and runs no
        migration: its old release still runs there."""
        steps = self.spec.project_steps
        present = sorted(
            {s.project for h in self.inv.hosts for s in h.services if s.project in steps},
            key=lambda p: self.project_rank.get(p, len(self.project_rank)),
        )
        frozen = {host for stage in (*control, *data) for host in stage.frozen}
        out: list[Stage] = []
        begun: set[str] = set()

        def begin(projects: Iterable[str]) -> None:
            for project in projects:
                if project not in begun:
                    begun.add(project)
                    out.extend(self.before(project, frozen))

        for stage in control:
            inside = {self.project_of(u.host, n) for u in stage.units() for n in u.services}
            begin(p for p in present if p in inside)
            out.append(stage)
        begin(present)
        out += data
        for project in present:
            out += self.after(project, frozen)
        return out

    def project_of(self, host: str, service: str) -> str:
        return _project(self.inv.host(host), service)

    def project_hosts(self, project: str, frozen: Collection[str]) -> list[tuple[Host, list[str]]]:
        """Every host running a service of ``project``, with those services in order:
        control hosts first; none of the ``frozen``."""
        found = []
        for host in self.inv.hosts:
            names = [s.name for s in host.services if s.project == project]
            if names and host.name not in frozen:
                names.sort(key=lambda n: self.service_key(project, n))
                found.append((host, names))
        found.sort(key=lambda item: all(self.is_data(item[0], n) for n in item[1]))
        return found

    def _project_unit(self, stage: str, host: Host, actions: tuple[Action, ...]) -> Unit:
        return self.finish(
            Unit(
                id=f"{stage}@{host.name}",
                host=host.name,
                role=self.control_role(host),
                plane=CONTROL,
                actions=actions,
            )
        )

    def before(self, project: str, frozen: Collection[str]) -> list[Stage]:
        steps = self.spec.project_steps[project]
        hosts = self.project_hosts(project, frozen)
        stages: list[Stage] = []
        if not hosts:
            return stages
        if steps.pin is not None:
            units = [
                self._project_unit(f"pin:{project}", h, (Action("", (), PIN, project),))
                for h, _ in hosts
            ]
            stages.append(Stage(f"pin: {project}", CONTROL, "", (Batch(tuple(units)),)))
        if steps.sync:
            host, names = hosts[0]
            control = [n for n in names if not self.is_data(host, n)] or names
            role = self.control_role(host)
            install = Action(self.spec.strategy_of(control[0], role), tuple(control), INSTALL)
            unit = self._project_unit(
                f"database:{project}", host, (install, Action("", (), SYNC, project))
            )
            why = "" if steps.expand_only else f"the {project} schema migrations are not undone"
            stages.append(
                Stage(f"database: {project}", CONTROL, "", (Batch((unit,)),), no_return=why)
            )
        return stages

    def after(self, project: str, frozen: Collection[str]) -> list[Stage]:
        steps = self.spec.project_steps[project]
        hosts = self.project_hosts(project, frozen)
        stages: list[Stage] = []
        if not hosts or any(self.inv.host(h).runs_project(project) for h in frozen):
            return stages
        if steps.pin is not None:
            unpin = [
                self._project_unit(f"unpin:{project}", h, (Action("", tuple(n), UNPIN, project),))
                for h, n in hosts
            ]
            batches = tuple(Batch((unit,)) for unit in unpin)  # one host at a time
            stages.append(Stage(f"unpin: {project}", CONTROL, "", batches))
        if steps.migrate:
            unit = self._project_unit(
                f"migrate:{project}", hosts[0][0], (Action("", (), MIGRATE, project),)
            )
            why = f"the {project} online data migrations rewrite its data for the new release"
            stages.append(
                Stage(f"migrate: {project}", CONTROL, "", (Batch((unit,)),), no_return=why)
            )
        return stages


def _project(host: Host, service: str) -> str:
    return next((s.project for s in host.services if s.name == service), "")


def make_plan(inventory: Inventory, spec: Spec, start: datetime | None = None) -> Plan:
    """The upgrade of ``inventory`` that ``spec`` asks for; begun at ``start``, each
    stage in the maintenance window the estimate puts it in (with ``windows:``)."""
    planner = _Planner(inventory, spec)
    for role, rule in spec.roles.items():
        _check_rule(role, rule)
    stages = planner.with_projects(planner.control_stages(), planner.data_stages())
    stages = approvals.marked(stages, spec)
    if spec.windows and start is not None:
        stages = _in_windows(stages, spec, start)
    plan = Plan(release=spec.release, order=spec.order, stages=tuple(stages))
    return replace(plan, no_downgrade=_no_downgrade(plan, spec))


def _in_windows(stages: list[Stage], spec: Spec, start: datetime) -> list[Stage]:
    """Each stage with the window it starts in, as the estimate goes from ``start``."""
    slots = windows.schedule(spec.windows, [s.seconds for s in stages], start)
    where = spec.windows.zone
    return [
        replace(stage, window=slot.describe(where) if slot else "none opens")
        for stage, slot in zip(stages, slots, strict=True)
    ]


def _no_downgrade(plan: Plan, spec: Spec) -> tuple[str, ...]:
    """The strategies the plan's units call that cannot downgrade."""
    used = sorted({a.strategy for u in plan.units() for a in u.actions})
    return tuple(
        name
        for name in used
        if name in spec.strategies and not strategies.build(spec.strategies[name]).can_downgrade()
    )


def _check_rule(role: str, rule: RoleRule) -> None:
    if rule.soak and not rule.canary:
        raise UsageError(f"roles.{role}.soak: a soak time needs a canary (roles.{role}.canary)")
