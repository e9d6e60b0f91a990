"""Nodes that Nova owns in cloud ``a`` of the session's two clouds, each carrying a
server, for the forklift's ``--nova`` tests; and what an operator checks after a move:
each node in one plane with every field it had, and its server there and nowhere else."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from testbed import baremetal
from testbed.seed import node_fields
from testbed.tenantclouds import TwoClouds

PLANES = ("a", "b")


class Planes:
    """The two clouds' Ironic as :mod:`tests.functional.invariants` reads control planes."""

    names = PLANES

    def __init__(self, clouds: TwoClouds) -> None:
        self.conns = {name: clouds.connect(name) for name in PLANES}

    def connect(self, name: str) -> Any:
        return self.conns[name]


def make(clouds: TwoClouds, count: int, *, carried: bool = False) -> list[str]:
    """``count`` nodes in ``a`` with their servers (:func:`testbed.baremetal.with_servers`),
    the flavor and image made in ``b`` too."""
    return baremetal.with_servers(
        clouds.connect("a"), "ironic-a", count, carried=carried, others=[clouds.connect("b")]
    )


def node_views(conn: Any, nodes: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per node of ``nodes`` in ``conn``'s Ironic, every field a move keeps and what it
    carries (traits, RAID configuration asked for, conductor group, port groups, ports,
    volume connectors and targets, BIOS settings);
    not ``instance_info`` nor ``instance_uuid``, which Nova sets anew with each server."""
    ironic = conn.baremetal
    views = {}
    for uuid in nodes:
        node = ironic.get_node(uuid)
        views[uuid] = {
            **node_fields(node),
            "traits": sorted(node.traits or ()),
            "raid": node.target_raid_config,
            "conductor_group": node.conductor_group,
            "port_groups": sorted(
                (g.id, g.name, g.address, g.mode)
                for g in ironic.port_groups(node=uuid, details=True)
            ),
            "ports": sorted(
                (p.id, p.address, p.port_group_id) for p in ironic.ports(node=uuid, details=True)
            ),
            "connectors": sorted(
                (c.id, c.type, c.connector_id)
                for c in ironic.volume_connectors(node=uuid, details=True)
            ),
            "bios": baremetal.bios_settings(conn, uuid),
            "targets": sorted(
                (t.id, t.volume_type, t.boot_index, t.volume_id)
                for t in ironic.volume_targets(node=uuid, details=True)
            ),
        }
    return views


def servers_on(conn: Any, nodes: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per node of ``nodes`` that carries a server in ``conn``'s Nova, what a user checks of
    it: name, flavor, image, metadata, status."""
    wanted, found = set(nodes), {}
    for server in conn.compute.servers(all_projects=True, details=True):
        if server.hypervisor_hostname in wanted:
            assert server.hypervisor_hostname not in found, (
                f"two servers on {server.hypervisor_hostname}"
            )
            found[server.hypervisor_hostname] = {
                "name": server.name,
                "flavor": server.flavor.get("original_name"),
                "image": conn.image.get_image(server.image.id).name,
                "metadata": dict(server.metadata),
                "status": server.status,
            }
    return found


def never_two_servers(planes: Planes, nodes: Iterable[str]) -> None:
    """No node carries a server in both clouds."""
    nodes = list(nodes)
    carrying = {name: set(servers_on(planes.connect(name), nodes)) for name in PLANES}
    both = carrying["a"] & carrying["b"]
    assert not both, f"nodes with a server in both clouds: {sorted(both)}"


def assert_home(
    planes: Planes,
    views: dict[str, dict[str, Any]],
    servers: dict[str, dict[str, Any]],
    home: str,
) -> None:
    """Every node of ``views`` enrolled in ``home`` only, with every field it had, and its
    server (``servers``, as :func:`servers_on` saw it) there, active, and in no other."""
    from tests.functional.invariants import assert_exactly_one

    places = assert_exactly_one(planes, list(views))
    assert set(places.values()) == {home}, places
    now = node_views(planes.connect(home), views)
    for uuid, before in views.items():
        assert now[uuid] == before, f"{uuid} changed:\n{before}\n{now[uuid]}"
    assert servers_on(planes.connect(home), views) == servers
    other = next(name for name in PLANES if name != home)
    assert servers_on(planes.connect(other), views) == {}
