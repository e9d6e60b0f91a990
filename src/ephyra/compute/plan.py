"""The evacuation plan: which hosts are emptied, how, within which limits, and whether
the rest of the cloud has room; each server's fate (:mod:`ephyra.compute.fate`), and
room counted for those that move only. Planning reads the cloud and changes nothing; it
refuses, with every reason at once, what cannot be done safely."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from ephyra.compute import capacity, topology
from ephyra.compute import fate as fates
from ephyra.compute.budget import Settings
from ephyra.compute.nova import ComputeCloud, Server, Service
from ephyra.compute.steps import FORWARD, ROLLBACK
from ephyra.errors import PlanRefused, UsageError

#: The fates of servers that leave their host.
MOVES = frozenset({fates.Fate.LIVE.value, fates.Fate.COLD.value, fates.EVACUATE})


@dataclass(frozen=True)
class PlannedHost:
    service: Service
    servers: tuple[Server, ...]
    fates: Mapping[str, fates.Decision] = field(default_factory=dict, compare=False)

    @property
    def moving(self) -> list[Server]:
        """The servers that leave the host (the others stay: stopped, left, skipped)."""
        return [s for s in self.servers if self.fates[s.id].fate in MOVES]

    @property
    def host(self) -> str:
        return self.service.host

    @property
    def mode(self) -> str:
        """live: the host runs; evacuate: it is down and fenced (forced down)."""
        return "evacuate" if self.service.forced_down and not self.service.up else "live"


@dataclass(frozen=True)
class Batching:
    """How the hosts of an evacuation drain: at most ``at_once`` together (None: all),
    at most ``limits`` (zone, aggregate -> K) hosts of one zone or aggregate together;
    never two hosts whose servers share an anti-affinity group; empty hosts first."""

    at_once: int | None = None
    limits: tuple[tuple[str, int], ...] = ()


#: Every host at once (anti-affine servers' hosts apart, empty hosts first).
ALL_AT_ONCE = Batching()


@dataclass(frozen=True)
class EvacuationPlan:
    cloud: str
    hosts: tuple[PlannedHost, ...]
    settings: Settings
    capacity: capacity.CapacityReport
    also_down: tuple[str, ...] = ()
    compute: ComputeCloud | None = field(default=None, compare=False, repr=False)
    #: The hosts drained together, batch after batch (every host disabled first).
    batches: tuple[tuple[str, ...], ...] = ()
    #: The topology rules the batches keep, in words.
    kept: str = ""

    @property
    def servers(self) -> int:
        return sum(len(h.servers) for h in self.hosts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "limits": self.settings.to_meta(),
            "also_down": list(self.also_down),
            "batches": [list(b) for b in self.batches],
            **({"kept": self.kept} if self.kept else {}),
            "steps": [s.title for s in FORWARD],
            "rollback": [s.title for s in ROLLBACK],
            "hosts": [
                {
                    "host": h.host,
                    "mode": h.mode,
                    "service": "enabled" if h.service.enabled else f"disabled: {h.service.reason}",
                    "fates": fates.counts(h.fates),
                    "servers": [
                        {
                            "id": s.id,
                            "name": s.name,
                            "project": s.project,
                            "status": s.status,
                            "groups": list(s.groups),
                            "to": self.capacity.placed.get(s.id),
                            **h.fates[s.id].to_dict(),
                        }
                        for s in h.servers
                    ],
                }
                for h in self.hosts
            ],
            "capacity": self.capacity.to_dict(),
        }

    def tree(self) -> Tree:
        root = Tree(f"[bold]evacuate[/] {len(self.hosts)} host(s) of {self.cloud}")
        root.add(f"limits: {self.settings.describe()}")
        root.add(f"capacity: {self.capacity.summary()}")
        if len(self.batches) > 1:
            shown = "; ".join(f"{n}: {', '.join(b)}" for n, b in enumerate(self.batches, 1))
            kept = f" (keeping {self.kept})" if self.kept else ""
            root.add(escape(f"batches{kept}, every host disabled first: {shown}"))
        for h in self.hosts:
            branch = root.add(
                f"{h.host} ({h.mode}): {' -> '.join(s.title for s in FORWARD)}; "
                f"undo: {' -> '.join(s.title for s in ROLLBACK)}"
            )
            for s in h.servers:
                where = self.capacity.placed.get(s.id, "stays")
                fate = h.fates[s.id].describe()
                branch.add(escape(f"{s.label} [{s.project}] {s.status} {fate} -> {where}"))
        return root


def make_plan(
    cloud: ComputeCloud,
    hosts: Sequence[str],
    settings: Settings,
    also_down: Sequence[str] = (),
    batching: Batching = ALL_AT_ONCE,
) -> EvacuationPlan:
    if not hosts:
        raise UsageError("name at least one host to evacuate")
    services = {s.host: s for s in cloud.services()}
    problems: list[str] = []
    for host in [*hosts, *also_down]:
        if host not in services:
            problems.append(f"{host}: no nova-compute service on this host")
    if len(set(hosts)) != len(hosts):
        problems.append("a host is named twice")
    target = settings.target
    if target is not None:
        svc = services.get(target)
        if svc is None or target in hosts or target in also_down:
            problems.append(f"--target {target}: not a compute host outside the plan")
        elif not svc.enabled or not svc.up:
            problems.append(f"--target {target}: its nova-compute is disabled or down")
    planned: list[PlannedHost] = []
    if not problems:
        groups = cloud.group_index()
        for host in hosts:
            svc = services[host]
            if not svc.up and not svc.forced_down:
                problems.append(
                    f"{host}: nova-compute is down but not forced down. Fence the host, then "
                    f"`openstack compute service set --down {host} nova-compute` to evacuate it"
                )
            servers = tuple(cloud.servers_on(host, groups))
            evacuating = svc.forced_down and not svc.up
            decided = {
                s.id: fates.decide(s, cloud.image_properties(s.image), settings, evacuating)
                for s in servers
            }
            planned.append(PlannedHost(svc, servers, decided))
    if problems:
        raise PlanRefused("cannot evacuate:\n  " + "\n  ".join(problems))
    report = capacity.check(
        cloud,
        {h.host: h.moving for h in planned},
        services.values(),
        also_down,
        target,
    )
    if not report.fits:
        raise PlanRefused(report.refusal())
    limits = dict(batching.limits)
    places = _places(cloud, planned, services, limits)
    batches = topology.cut(
        sorted(planned, key=lambda h: bool(h.servers)),  # empty hosts first
        batching.at_once or len(planned),
        limits,
        lambda h: places[h.host],
    )
    return EvacuationPlan(
        cloud.name,
        tuple(planned),
        settings,
        report,
        tuple(also_down),
        cloud,
        tuple(tuple(h.host for h in b) for b in batches),
        topology.describe(limits, places.values()),
    )


def _places(
    cloud: ComputeCloud,
    planned: Sequence[PlannedHost],
    services: Mapping[str, Service],
    limits: Mapping[str, int],
) -> dict[str, topology.Place]:
    """Each host's zone and aggregates (read when a limit asks), and the anti-affinity
    groups of its servers."""
    several = len(planned) > 1
    grouped = several and any(s.groups for h in planned for s in h.servers)
    anti = cloud.anti_affinity() if grouped else frozenset()
    aggregates = cloud.aggregates() if several and "aggregate" in limits else []
    return {
        h.host: topology.Place(
            domains=frozenset({("zone", services[h.host].zone)} if services[h.host].zone else set())
            | {("aggregate", a["name"]) for a in aggregates if h.host in a.get("hosts", ())},
            groups=frozenset(g for s in h.servers for g in s.groups if g in anti),
        )
        for h in planned
    }
