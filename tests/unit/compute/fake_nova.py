"""A compute cloud in memory, for unit tests of the drain and the planner only.

Moves take a number of polls to finish; the proof against real Nova is in the
functional tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from ephyra.compute.nova import Server, Service
from ephyra.errors import CloudError


@dataclass
class Move:
    how: str
    polls_left: int
    dest: str


@dataclass
class FakeCloud:
    hosts: list[str]
    servers: dict[str, Server] = field(default_factory=dict)
    moves: dict[str, Move] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    live_polls: int = 2
    cold_polls: int = 1
    stuck: set[str] = field(default_factory=set)  # servers whose moves never end
    refuse_live: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)
    moving_peak: int = 0
    record_lag: int = 0  # polls during which a finished move's record still says running
    lagging: dict[str, int] = field(default_factory=dict)
    records: dict[str, str] = field(default_factory=dict)  # latest migration status
    confirm_lag: int = 0  # polls a confirmed server stays VERIFY_RESIZE
    confirming: dict[str, int] = field(default_factory=dict)
    list_lag: int = 0  # polls during which the host-filtered list still shows a moved server
    departed: dict[str, tuple[Server, int]] = field(default_factory=dict)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> its properties
    name: str = "fake"
    anti: frozenset[str] = frozenset()  # the anti-affinity groups
    aggregate: dict[str, list[str]] = field(default_factory=dict)  # name -> hosts

    def __post_init__(self) -> None:
        for host in self.hosts:
            self.services[host] = Service(host, host, True, True, False, "")

    def add(
        self,
        sid: str,
        host: str,
        project: str = "p",
        status: str = "ACTIVE",
        groups: tuple[str, ...] = (),
    ) -> None:
        self.servers[sid] = Server(sid, sid, project, status, None, host, 512, 1, 1, groups)

    # -- the interface the drain uses ----------------------------------------------
    def _tick(self) -> None:
        self.lagging = {sid: n - 1 for sid, n in self.lagging.items() if n > 1}
        self.departed = {k: (v, n - 1) for k, (v, n) in self.departed.items() if n > 1}
        for sid, n in list(self.confirming.items()):
            if n > 1:
                self.confirming[sid] = n - 1
            else:
                del self.confirming[sid]
                self.servers[sid] = replace(self.servers[sid], status="ACTIVE")
        for sid, move in list(self.moves.items()):
            if sid in self.stuck:
                continue
            move.polls_left -= 1
            if move.polls_left > 0:
                continue
            server = self.servers[sid]
            if move.how == "stop":
                self.servers[sid] = replace(server, status="SHUTOFF", task_state=None)
            elif move.how == "cold":
                self.servers[sid] = replace(
                    server, status="VERIFY_RESIZE", task_state=None, host=move.dest
                )
                self.records[sid] = "finished"
            else:
                self.servers[sid] = replace(server, task_state=None, host=move.dest)
                self.records[sid] = "completed"
                if self.list_lag:
                    self.departed[sid] = (replace(server, task_state=None), self.list_lag)
            del self.moves[sid]
            if self.record_lag:
                self.lagging[sid] = self.record_lag

    def servers_on(self, host: str, groups: Any = None) -> list[Server]:
        self._tick()
        self.moving_peak = max(self.moving_peak, self.busy_records())
        listed = {s.id: s for s in self.servers.values() if s.host == host}
        for sid, (stale, _) in self.departed.items():
            if stale.host == host:
                listed[sid] = stale
        return list(listed.values())

    def server(self, sid: str) -> Server | None:
        return self.servers.get(sid)

    def service(self, host: str) -> Service:
        return self.services[host]

    def group_index(self) -> dict[str, tuple[str, ...]]:
        return {}

    def anti_affinity(self) -> frozenset[str]:
        return self.anti

    def aggregates(self) -> list[dict[str, Any]]:
        return [{"name": n, "hosts": hosts} for n, hosts in sorted(self.aggregate.items())]

    def disable(self, service: Service, reason: str) -> None:
        self.calls.append(("disable", service.host))
        self.services[service.host] = replace(service, enabled=False, reason=reason)

    def enable(self, service: Service) -> None:
        self.calls.append(("enable", service.host))
        self.services[service.host] = replace(service, enabled=True, reason="")

    def image_properties(self, image: str) -> dict[str, Any]:
        return self.images.get(image, {})

    def _dest(self, server: Server, host: str | None) -> str:
        return host or next(h for h in self.hosts if h != server.host)

    def _begin(self, sid: str, how: str, polls: int, task: str, dest: str | None) -> None:
        server = self.servers[sid]
        self.calls.append((how, sid))
        self.servers[sid] = replace(server, task_state=task)
        self.moves[sid] = Move(how, polls, self._dest(server, dest))
        if how != "stop":
            self.records[sid] = "running"

    def live_migrate(self, sid: str, host: str | None = None) -> None:
        if sid in self.refuse_live:
            raise CloudError(f"fake: cannot live-migrate {sid}: HTTP 400")
        self._begin(sid, "live", self.live_polls, "migrating", host)

    def cold_migrate(self, sid: str, host: str | None = None) -> None:
        self._begin(sid, "cold", self.cold_polls, "resize_migrating", host)

    def evacuate(self, sid: str, host: str | None = None) -> None:
        self._begin(sid, "evacuate", 1, "rebuilding", host)

    def stop(self, sid: str) -> None:
        self._begin(sid, "stop", 1, "powering-off", self.servers[sid].host)

    def start(self, sid: str) -> None:
        self.calls.append(("start", sid))
        self.servers[sid] = replace(self.servers[sid], status="ACTIVE")

    def confirm_resize(self, sid: str) -> None:
        self.calls.append(("confirm", sid))
        if self.records.get(sid) != "finished":
            raise CloudError(f"fake: cannot confirm {sid}: HTTP 400: not resized")
        self.records[sid] = "confirmed"  # before the server leaves VERIFY_RESIZE, as Nova
        if self.confirm_lag:
            self.confirming[sid] = self.confirm_lag
        else:
            self.servers[sid] = replace(self.servers[sid], status="ACTIVE")

    def live_migration(self, sid: str) -> dict[str, Any] | None:
        move = self.moves.get(sid)
        return {"id": 1} if move and move.how == "live" else None

    def abort_live_migration(self, sid: str, migration: int) -> None:
        self.calls.append(("abort", sid))
        self.moves.pop(sid, None)
        self.stuck.discard(sid)
        self.servers[sid] = replace(self.servers[sid], task_state=None)
        self.records[sid] = "cancelled"

    def force_complete(self, sid: str, migration: int) -> None:
        self.calls.append(("force", sid))
        self.moves[sid].polls_left = 1
        self.stuck.discard(sid)

    def migrations(self, server: str) -> list[dict[str, Any]]:
        if server in self.lagging:
            return [{"id": 2, "status": "running"}]
        return [{"id": 1, "status": self.records[server]}] if server in self.records else []

    def busy_records(self) -> int:
        """Moves a watcher of the migrations API sees under way."""
        return len(self.moves) + len(self.lagging)


@dataclass
class PlacementCloud:
    """What planning reads of a :class:`FakeCloud`: its services, the servers on a host,
    their server groups, and Placement (a resource provider per host, its inventory, its
    usage: what its servers' flavors take)."""

    compute: FakeCloud
    rooms: dict[str, dict[str, int]]  # host -> resource class -> total

    @property
    def name(self) -> str:
        return self.compute.name

    def services(self) -> list[Service]:
        return list(self.compute.services.values())

    def group_index(self) -> dict[str, tuple[str, ...]]:
        return {s.id: s.groups for s in self.compute.servers.values() if s.groups}

    def anti_affinity(self) -> frozenset[str]:
        return self.compute.anti_affinity()

    def aggregates(self) -> list[dict[str, Any]]:
        return self.compute.aggregates()

    def image_properties(self, image: str) -> dict[str, Any]:
        return self.compute.image_properties(image)

    def servers_on(self, host: str, groups: Any = None) -> list[Server]:
        on = [s for s in self.compute.servers.values() if s.host == host]
        return [replace(s, groups=(groups or {}).get(s.id, ())) for s in on]

    def hypervisors(self) -> dict[str, str]:
        return {host: f"rp-{host}" for host in self.rooms}

    def inventories(self, provider: str) -> dict[str, dict[str, Any]]:
        room = self.rooms[provider.removeprefix("rp-")]
        return {
            rc: {"total": total, "reserved": 0, "allocation_ratio": 1.0}
            for rc, total in room.items()
        }

    def usages(self, provider: str) -> dict[str, int]:
        used: Counter[str] = Counter()
        for server in self.compute.servers.values():
            if f"rp-{server.host}" == provider:
                used.update(flavor(server))
        return dict(used)

    def allocations(self, consumer: str) -> dict[str, dict[str, int]]:
        server = self.compute.servers[consumer]
        return {f"rp-{server.host}": flavor(server)}


def flavor(server: Server) -> dict[str, int]:
    """What a server's flavor takes of its host."""
    return {"MEMORY_MB": server.ram, "VCPU": server.vcpus, "DISK_GB": server.disk}
