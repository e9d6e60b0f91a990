"""The inventory every discovery source produces, frozen, and how several merge.

A :class:`Host` has roles (``controller``, ``compute``, ``network``, ``storage``,
``baremetal``...) and services (``nova-compute``, ``keystone``...), each with the
project it belongs to (``compute``, ``identity``...), its health and, where a source
knows it, its version. Sources that know different things about the same host merge:
roles and services add up; for a fact or a service field both know, the later source
wins, except that a known value never gives way to an unknown one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ephyra.names import check_name

#: Health of a service as its API reports it.
UP, DOWN, DISABLED, UNKNOWN = "up", "down", "disabled", "unknown"


@dataclass(frozen=True, order=True)
class Service:
    name: str  # binary or API service: nova-compute, nova-api, keystone, ironic-conductor
    project: str  # identity, image, placement, compute, network, block-storage, bare-metal...
    region: str = ""
    status: str = UNKNOWN
    version: str = ""
    source: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.region)


@dataclass(frozen=True)
class Host:
    name: str
    roles: frozenset[str] = frozenset()
    services: tuple[Service, ...] = ()
    facts: tuple[tuple[str, Any], ...] = ()  # sorted (name, value) pairs
    sources: frozenset[str] = frozenset()
    servers: int = 0  # tenant servers (instances) on the host, where a source knows
    volumes: int = 0  # tenant volumes in the host's storage pools, where a source knows

    @property
    def fact(self) -> dict[str, Any]:
        return dict(self.facts)

    def runs(self, service: str) -> bool:
        return any(s.name == service for s in self.services)

    def runs_project(self, project: str) -> bool:
        return any(s.project == project for s in self.services)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": sorted(self.roles),
            "services": [
                {
                    "name": s.name,
                    "project": s.project,
                    "region": s.region,
                    "status": s.status,
                    "version": s.version,
                    "source": s.source,
                }
                for s in self.services
            ],
            "facts": dict(self.facts),
            "sources": sorted(self.sources),
            "servers": self.servers,
            "volumes": self.volumes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Host:
        return make_host(
            str(data["name"]),
            roles=data.get("roles") or (),
            services=[Service(**s) for s in data.get("services") or ()],
            facts=data.get("facts") or {},
            sources=data.get("sources") or (),
            servers=int(data.get("servers") or 0),
            volumes=int(data.get("volumes") or 0),
        )


def make_host(
    name: str,
    *,
    roles: Iterable[str] = (),
    services: Iterable[Service] = (),
    facts: Mapping[str, Any] | None = None,
    sources: Iterable[str] = (),
    servers: int = 0,
    volumes: int = 0,
) -> Host:
    """A host with its collections normalised (sorted, deduplicated)."""
    by_key: dict[tuple[str, str], Service] = {}
    for service in services:
        by_key[service.key] = _merge_service(by_key.get(service.key), service)
    return Host(
        name=name,
        roles=frozenset(roles),
        services=tuple(sorted(by_key.values())),
        facts=tuple(sorted((facts or {}).items())),
        sources=frozenset(sources),
        servers=servers,
        volumes=volumes,
    )


def _merge_service(old: Service | None, new: Service) -> Service:
    if old is None:
        return new
    return replace(
        old,
        project=new.project or old.project,
        status=new.status if new.status != UNKNOWN else old.status,
        version=new.version or old.version,
        source=",".join(sorted({*old.source.split(","), *new.source.split(",")} - {""})),
    )


def merge_hosts(old: Host, new: Host) -> Host:
    return make_host(
        old.name,
        roles=old.roles | new.roles,
        services=[*old.services, *new.services],
        facts={**old.fact, **{k: v for k, v in new.facts if v is not None}},
        sources=old.sources | new.sources,
        servers=new.servers or old.servers,
        volumes=new.volumes or old.volumes,
    )


@dataclass(frozen=True)
class Endpoint:
    service: str  # the catalog type: identity, compute, baremetal...
    interface: str  # public, internal, admin
    region: str
    url: str
    version: str = ""  # the API's maximum (micro)version, from its version document


@dataclass(frozen=True)
class Inventory:
    hosts: tuple[Host, ...] = ()  # sorted by name, one per name
    endpoints: tuple[Endpoint, ...] = ()
    regions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    #: What a source found about the cloud rather than a host, sorted (name, value) pairs:
    #: ``absent`` (service types a cloud does not have, and why), ...
    facts: tuple[tuple[str, Any], ...] = ()
    _index: dict[str, Host] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update((h.name, h) for h in self.hosts)

    def host(self, name: str) -> Host:
        return self._index[name]

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def with_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts if role in h.roles]

    def roles(self) -> dict[str, list[str]]:
        """Role -> names of its hosts."""
        out: dict[str, list[str]] = {}
        for h in self.hosts:
            for role in sorted(h.roles):
                out.setdefault(role, []).append(h.name)
        return dict(sorted(out.items()))

    @property
    def fact(self) -> dict[str, Any]:
        return dict(self.facts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "regions": list(self.regions),
            "hosts": [h.to_dict() for h in self.hosts],
            "endpoints": [vars(e) for e in self.endpoints],
            "facts": dict(self.facts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Inventory:
        return inventory(
            (Host.from_dict(h) for h in data.get("hosts") or ()),
            endpoints=[Endpoint(**e) for e in data.get("endpoints") or ()],
            regions=data.get("regions") or (),
            sources=data.get("sources") or (),
            facts=data.get("facts") or {},
        )


def inventory(
    hosts: Iterable[Host],
    *,
    endpoints: Iterable[Endpoint] = (),
    regions: Iterable[str] = (),
    sources: Iterable[str] = (),
    facts: Mapping[str, Any] | None = None,
) -> Inventory:
    """An inventory from hosts in any order (same-named hosts merged).

    Every host name must be a valid name (:data:`ephyra.names.NAME`): one that is not
    refuses the whole inventory, whichever source it came from, with a UsageError naming
    the source (a host skipped silently would be a host never upgraded).

    Endpoints are one per (region, service, interface): a later one with a URL or a
    version wins over an earlier one, and keeps the earlier version if it has none.
    """
    by_name: dict[str, Host] = {}
    for host in hosts:
        check_name(host.name, f"host name from {', '.join(sorted(host.sources)) or 'a source'}")
        old = by_name.get(host.name)
        by_name[host.name] = host if old is None else merge_hosts(old, host)
    by_place: dict[tuple[str, str, str], Endpoint] = {}
    for endpoint in endpoints:
        place = (endpoint.region, endpoint.service, endpoint.interface)
        earlier = by_place.get(place)
        if earlier is not None:
            endpoint = replace(
                endpoint,
                url=endpoint.url or earlier.url,
                version=endpoint.version or earlier.version,
            )
        by_place[place] = endpoint
    return Inventory(
        hosts=tuple(by_name[n] for n in sorted(by_name)),
        endpoints=tuple(by_place[p] for p in sorted(by_place)),
        regions=tuple(sorted(set(regions))),
        sources=tuple(dict.fromkeys(sources)),
        facts=tuple(sorted((facts or {}).items())),
    )


def merge_facts(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``new`` over ``old``: mappings merge key by key, a None never replaces a value."""
    out = dict(old)
    for key, value in new.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_facts(out[key], value)
        else:
            out[key] = value
    return out


def merge(inventories: Iterable[Inventory]) -> Inventory:
    """One inventory from several sources, later sources winning on conflicts."""
    parts = list(inventories)
    facts: dict[str, Any] = {}
    for part in parts:
        facts = merge_facts(facts, part.fact)
    return inventory(
        (h for inv in parts for h in inv.hosts),
        endpoints=(e for inv in parts for e in inv.endpoints),
        regions=(r for inv in parts for r in inv.regions),
        sources=(s for inv in parts for s in inv.sources),
        facts=facts,
    )
