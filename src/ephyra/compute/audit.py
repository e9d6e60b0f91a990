"""The Placement audit: allocations against compute nodes that nothing holds any more.

An allocation against a compute node's resource provider is held by a server on that
node, or by a migration under way (the source's, while the server moves). Anything else
leaks: the allocation of a server that no longer exists, or of one that now runs on
another host (an evacuation or a migration that did not clean up). Leaks make a host
look fuller than it is, and a drained host not empty to Placement.

:func:`leaks` finds them, on some hosts or all; :func:`heal` removes one as ``nova-manage
placement audit --delete`` does: only the allocation against that provider, the
consumer's others kept.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

from ephyra.compute.nova import ComputeCloud


@dataclass(frozen=True)
class Leak:
    consumer: str
    provider: str
    host: str  # the host of the provider's nova-compute
    resources: dict[str, int]
    why: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        held = ", ".join(f"{rc} {n}" for rc, n in sorted(self.resources.items()))
        return f"consumer {self.consumer} holds {held} on {self.host}: {self.why}"


def leaks(cloud: ComputeCloud, hosts: Collection[str] | None = None) -> list[Leak]:
    """The leaked allocations against the compute nodes of ``hosts`` (None: all)."""
    providers = {
        uuid: host
        for uuid, host in cloud.compute_providers().items()
        if hosts is None or host in hosts
    }
    if not providers:
        return []
    servers = cloud.servers()
    moving = cloud.migrations_under_way()
    moving_servers = set(moving.values())
    found = []
    for provider, host in sorted(providers.items(), key=lambda item: item[1]):
        for consumer, resources in sorted(cloud.allocations_on(provider).items()):
            if consumer in moving:
                continue
            if consumer in servers:
                where = servers[consumer]
                if where == host or consumer in moving_servers:
                    continue
                why = f"server {consumer} is on {where or 'no host'}"
            else:
                why = "no server or migration under way has this id"
            found.append(Leak(consumer, provider, host, resources, why))
    return found


def heal(cloud: ComputeCloud, leak: Leak) -> None:
    """Remove the leaked allocation (and only it)."""
    cloud.drop_allocation(leak.consumer, leak.provider)
