"""Will the servers of the hosts being emptied fit on the others? From Placement.

Each remaining host's room is, per resource class, ``(total - reserved) *
allocation_ratio - used``, and no single server may ask more than ``max_unit``. The
servers, largest first, go to the host with the most free memory that holds them
(the way Nova's default weighers spread). A server that fits nowhere is reported
with the numbers; the plan is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ephyra.compute.nova import ComputeCloud, Server, Service

SHOWN = ("MEMORY_MB", "VCPU", "DISK_GB")


def capacity_of(inventory: Mapping[str, Any]) -> float:
    """What a provider's inventory of one resource class can hold."""
    reserved = inventory.get("reserved", 0)
    return float((inventory["total"] - reserved) * inventory.get("allocation_ratio", 1.0))


@dataclass
class Room:
    host: str
    free: dict[str, float]
    max_unit: dict[str, float]

    @classmethod
    def from_placement(
        cls, host: str, inventories: Mapping[str, Mapping[str, Any]], usages: Mapping[str, int]
    ) -> Room:
        free: dict[str, float] = {}
        max_unit: dict[str, float] = {}
        for rc, inv in inventories.items():
            free[rc] = capacity_of(inv) - usages.get(rc, 0)
            max_unit[rc] = inv.get("max_unit", inv["total"])
        return cls(host, free, max_unit)

    def holds(self, need: Mapping[str, int]) -> bool:
        return all(
            self.free.get(rc, 0) >= amount and self.max_unit.get(rc, 0) >= amount
            for rc, amount in need.items()
            if amount
        )

    def place(self, need: Mapping[str, int]) -> None:
        for rc, amount in need.items():
            self.free[rc] = self.free.get(rc, 0) - amount


@dataclass(frozen=True)
class Need:
    server: Server
    source: str
    resources: dict[str, int]

    def describe(self) -> str:
        return ", ".join(f"{self.resources.get(rc, 0)} {rc}" for rc in SHOWN)


@dataclass
class CapacityReport:
    needs: list[Need]
    rooms: list[Room]  # free room before placing anything
    placed: dict[str, str] = field(default_factory=dict)  # server id -> host
    unplaced: list[Need] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return not self.unplaced

    def totals(self) -> dict[str, dict[str, float]]:
        needed = {rc: float(sum(n.resources.get(rc, 0) for n in self.needs)) for rc in SHOWN}
        free = {rc: float(sum(max(r.free.get(rc, 0), 0) for r in self.rooms)) for rc in SHOWN}
        return {"needed": needed, "free": free}

    def to_dict(self) -> dict[str, Any]:
        return {
            "fits": self.fits,
            **self.totals(),
            "hosts": {r.host: {rc: r.free.get(rc, 0) for rc in SHOWN} for r in self.rooms},
            "unplaced": [
                {"server": n.server.label, "host": n.source, **n.resources} for n in self.unplaced
            ],
        }

    def summary(self) -> str:
        totals = self.totals()
        parts = [f"{totals['needed'][rc]:.0f}/{totals['free'][rc]:.0f} {rc}" for rc in SHOWN]
        return f"{len(self.needs)} servers need/free elsewhere: " + ", ".join(parts)

    def refusal(self) -> str:
        lines = [f"not enough room elsewhere: {self.summary()}"]
        lines += [
            f"  {r.host} has free " + ", ".join(f"{r.free.get(rc, 0):.0f} {rc}" for rc in SHOWN)
            for r in self.rooms
        ] or ["  no other host is enabled, up and outside the plan"]
        lines += [
            f"  {n.server.label} on {n.source} needs {n.describe()}: fits nowhere"
            for n in self.unplaced
        ]
        return "\n".join(lines)


def fit(needs: Iterable[Need], rooms: Iterable[Room]) -> CapacityReport:
    """Place every need, largest first, on the room with the most free memory."""
    needs = list(needs)
    report = CapacityReport(needs, [Room(r.host, dict(r.free), dict(r.max_unit)) for r in rooms])
    working = [Room(r.host, dict(r.free), dict(r.max_unit)) for r in report.rooms]
    order = sorted(needs, key=lambda n: tuple(n.resources.get(rc, 0) for rc in SHOWN), reverse=True)
    for need in order:
        fitting = [r for r in working if r.holds(need.resources)]
        if not fitting:
            report.unplaced.append(need)
            continue
        best = max(fitting, key=lambda r: r.free.get("MEMORY_MB", 0))
        best.place(need.resources)
        report.placed[need.server.id] = best.host
    return report


def check(
    cloud: ComputeCloud,
    servers: Mapping[str, list[Server]],
    services: Iterable[Service],
    unavailable: Iterable[str] = (),
    target: str | None = None,
) -> CapacityReport:
    """Capacity for moving ``servers`` (source host -> its servers) off their hosts.

    The room counted is that of hosts whose service is enabled and up, outside
    ``servers`` and ``unavailable`` (other hosts planned to be in maintenance); only
    ``target`` when one is given.
    """
    away = set(servers) | set(unavailable)
    providers = cloud.hypervisors()
    rooms = []
    for svc in services:
        if svc.host in away or not svc.enabled or not svc.up or svc.host not in providers:
            continue
        if target is not None and svc.host != target:
            continue
        rp = providers[svc.host]
        rooms.append(Room.from_placement(svc.host, cloud.inventories(rp), cloud.usages(rp)))
    needs = []
    for source, on_host in servers.items():
        home = providers.get(source, "")
        for server in on_host:
            allocated = cloud.allocations(server.id).get(home, {})
            resources = allocated or {
                "MEMORY_MB": server.ram,
                "VCPU": server.vcpus,
                "DISK_GB": server.disk,
            }
            needs.append(Need(server, source, {k: int(v) for k, v in resources.items()}))
    return fit(needs, sorted(rooms, key=lambda r: r.host))


def room_of(cloud: ComputeCloud, provider: str) -> dict[str, dict[str, float]]:
    """Per shown resource class, a provider's ``capacity`` and what is ``used`` of it."""
    inventories, usages = cloud.inventories(provider), cloud.usages(provider)
    found: dict[str, dict[str, float]] = {}
    for rc in SHOWN:
        inv = inventories.get(rc)
        if inv is not None:
            found[rc] = {"capacity": capacity_of(inv), "used": float(usages.get(rc, 0))}
    return found


def cloud_room(cloud: ComputeCloud, services: Iterable[Service]) -> dict[str, dict[str, float]]:
    """Per shown resource class, the capacity and use of the hosts whose nova-compute is
    enabled and up: what its scheduler can place servers on."""
    providers = cloud.hypervisors()
    total: dict[str, dict[str, float]] = {rc: {"capacity": 0.0, "used": 0.0} for rc in SHOWN}
    for svc in services:
        if svc.enabled and svc.up and svc.host in providers:
            add_room(total, room_of(cloud, providers[svc.host]))
    return total


def add_room(total: dict[str, dict[str, float]], more: Mapping[str, Mapping[str, float]]) -> None:
    for rc, values in more.items():
        for key in ("capacity", "used"):
            total.setdefault(rc, {"capacity": 0.0, "used": 0.0})[key] += values[key]
