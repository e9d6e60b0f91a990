"""Bare-metal nodes that Nova owns, in a cloud of :mod:`testbed.tenantclouds` started with
``baremetal=True``: its Ironic enrolls them, Nova's ironic driver offers each as one unit of
its resource class, and a server boots onto a chosen node.

- :func:`enroll` makes nodes ``available`` (enrolled, managed, provided, powered off: a
  node whose power state Ironic does not know yet is one Nova holds back) with a resource
  class;
- :func:`flavor` is a flavor asking for one unit of that class and no VCPU, memory or
  disk, as Nova's guide for Ironic says;
- :func:`wait_offered` waits until Nova lists each node as a hypervisor and Placement has
  its provider with a free unit of the class;
- :func:`boot_on` boots a server on one node (``host`` and ``hypervisor_hostname``, the
  compute API's 2.74) and waits until it is active.

Every call takes an openstacksdk connection of the cloud's admin (Keystone auth, region of
the cloud): Ironic, Nova and Placement are found in the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from testbed.ironic import TestbedError
from testbed.nova_watch import wait_until

#: How long a node takes, at most, to become available or be offered by Nova (s).
WAIT_S = 120.0
#: The compute microversion that boots onto a named host and node.
PINNED_MICROVERSION = "2.74"
#: The flavor and image of the servers :func:`with_servers` boots.
FLAVOR = "bm.small"
IMAGE = "baremetal-image"
#: The BIOS settings, lessee and RAID configuration of the nodes :func:`with_servers`
#: makes with ``carried``.
BIOS = {"BootMode": "uefi", "HyperThreading": "Disabled"}
LESSEE = "5c1f3c0d7a3a4b0e9d6f2a1b3c4d5e6f"
RAID = {"logical_disks": [{"size_gb": 100, "raid_level": "1", "is_root_volume": True}]}
#: The metadata of the servers :func:`with_servers` boots.
ROLE = {"role": "web"}


def custom_class(resource_class: str) -> str:
    """Placement's name of an Ironic resource class (``baremetal-small`` ->
    ``CUSTOM_BAREMETAL_SMALL``), as Nova's ironic driver names it."""
    return "CUSTOM_" + "".join(c if c.isalnum() else "_" for c in resource_class.upper())


def enroll(
    conn: Any,
    names: Iterable[str],
    resource_class: str = "baremetal-small",
    bios: Mapping[str, str] | None = None,
    **fields: Any,
) -> list[str]:
    """Enroll a fake-hardware node per name with ``resource_class`` (and ``fields``, e.g.
    ``owner`` or ``properties``), and make each available; their UUIDs. ``bios``: BIOS
    settings given to each by manual cleaning while it is manageable (the fake BIOS
    interface keeps what it is given)."""
    baremetal = conn.baremetal
    made = []
    for name in names:
        node = baremetal.create_node(
            name=name, driver="fake-hardware", resource_class=resource_class, **fields
        )
        made.append(str(node.id))
    for uuid in made:
        baremetal.set_node_provision_state(uuid, "manage", wait=False)
    for uuid in made:
        wait_until(partial(_in_state, baremetal, uuid, "manageable"), WAIT_S, f"{uuid} manageable")
    if bios:
        step = {
            "interface": "bios",
            "step": "apply_configuration",
            "args": {"settings": [{"name": k, "value": v} for k, v in bios.items()]},
        }
        for uuid in made:
            baremetal.set_node_provision_state(uuid, "clean", clean_steps=[step], wait=False)
        for uuid in made:
            wait_until(partial(_cleaned, baremetal, uuid), WAIT_S, f"{uuid} BIOS settings")
    for uuid in made:
        baremetal.set_node_provision_state(uuid, "provide", wait=False)
    for uuid in made:
        wait_until(partial(_in_state, baremetal, uuid, "available"), WAIT_S, f"{uuid} available")
        baremetal.set_node_power_state(uuid, "power off")
    for uuid in made:
        wait_until(partial(_powered_off, baremetal, uuid), WAIT_S, f"{uuid} powered off")
    return made


def _cleaned(baremetal: Any, uuid: str) -> bool:
    node = baremetal.get_node(uuid)
    if node.last_error:
        raise TestbedError(f"node {uuid}: {node.last_error}")
    return bool(node.provision_state == "manageable" and not node.target_provision_state)


def bios_settings(conn: Any, uuid: str) -> dict[str, str]:
    """The node's BIOS settings as its Ironic has them."""
    found = conn.baremetal.get(f"/nodes/{uuid}/bios", microversion="1.40").json()
    return {str(s["name"]): str(s["value"]) for s in found.get("bios", [])}


def _powered_off(baremetal: Any, uuid: str) -> bool:
    return bool(baremetal.get_node(uuid).power_state == "power off")


def _in_state(baremetal: Any, uuid: str, state: str) -> bool:
    node = baremetal.get_node(uuid)
    if node.last_error:
        raise TestbedError(f"node {uuid}: {node.last_error}")
    return bool(node.provision_state == state)


def flavor(conn: Any, name: str, resource_class: str = "baremetal-small") -> str:
    """Id of flavor ``name`` for one node of ``resource_class``, created if missing."""
    compute = conn.compute
    found = compute.find_flavor(name, ignore_missing=True)
    if found is None:
        found = compute.create_flavor(name=name, ram=1024, vcpus=1, disk=1)
        compute.create_flavor_extra_specs(
            found,
            {
                f"resources:{custom_class(resource_class)}": "1",
                "resources:VCPU": "0",
                "resources:MEMORY_MB": "0",
                "resources:DISK_GB": "0",
            },
        )
    return str(found.id)


def offered(conn: Any, uuids: Iterable[str]) -> set[str]:
    """Which of the nodes ``uuids`` Nova offers: a hypervisor, and a provider whose only
    inventory is one free unit of a custom resource class."""
    wanted = set(uuids)
    listed = {str(h.name) for h in conn.compute.hypervisors()} & wanted
    ready = set()
    placement = conn.placement
    for provider in placement.resource_providers():
        if provider.name not in listed:
            continue
        inventory = placement.resource_provider_inventories(provider)
        # (class prefix, total, reserved) of each resource class it has
        if [(i.resource_class[:7], i.total, i.reserved) for i in inventory] == [("CUSTOM_", 1, 0)]:
            ready.add(str(provider.name))
    return ready


def wait_offered(conn: Any, uuids: Iterable[str], timeout: float = WAIT_S) -> None:
    """Wait until Nova offers every node of ``uuids`` (see :func:`offered`)."""
    wanted = set(uuids)
    wait_until(
        lambda: offered(conn, wanted) == wanted, timeout, f"{sorted(wanted)} offered by Nova"
    )


def image(conn: Any, name: str = "baremetal-image") -> str:
    """Id of a small public image ``name`` in the cloud's Glance, uploaded if missing."""
    found = conn.image.find_image(name, ignore_missing=True)
    if found is None:
        found = conn.image.create_image(
            name=name,
            data=b"\0" * 4096,
            disk_format="raw",
            container_format="bare",
            visibility="public",
        )
    return str(found.id)


def boot_on(
    conn: Any,
    host: str,
    node: str,
    name: str,
    flavor_id: str,
    image_id: str,
    *,
    metadata: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    timeout: float = WAIT_S,
    wait: bool = True,
) -> str:
    """Boot server ``name`` on ``node`` of bare-metal compute ``host`` (no network) and
    wait until it is active (unless not ``wait``); its id. ``extra``: more fields of the
    request's ``server`` (``key_name``, ``config_drive``...)."""
    body: dict[str, Any] = {
        "name": name,
        "flavorRef": flavor_id,
        "imageRef": image_id,
        "networks": "none",
        "host": host,
        "hypervisor_hostname": node,
        "metadata": dict(metadata or {}),
        **dict(extra or {}),
    }
    answer = conn.compute.post("/servers", json={"server": body}, microversion=PINNED_MICROVERSION)
    if answer.status_code != 202:
        raise TestbedError(f"boot of {name} on {node}: {answer.status_code} {answer.text}")
    server_id = str(answer.json()["server"]["id"])
    if wait:
        wait_active(conn, server_id, timeout)
    return server_id


def wait_active(conn: Any, server_id: str, timeout: float = WAIT_S) -> None:
    """Until server ``server_id`` is active (TestbedError once it is in error)."""

    def active() -> bool:
        server = conn.compute.get_server(server_id)
        if server.status == "ERROR":
            raise TestbedError(f"server {server.name} failed: {server.fault}")
        return bool(server.status == "ACTIVE")

    wait_until(active, timeout, f"server {server_id} active")


def with_servers(
    conn: Any,
    host: str,
    count: int,
    *,
    prefix: str = "bm",
    carried: bool = False,
    others: Iterable[Any] = (),
) -> list[str]:
    """``count`` nodes ``<prefix>-00``... enrolled and offered in ``conn``'s cloud, each
    with a server ``web-<i>`` (flavor FLAVOR, image IMAGE, metadata ``role=web``) booted
    on it through compute ``host``; with ``carried``, each node also has BIOS settings
    and what :func:`carry` gives it. The flavor and image are made in the clouds of ``others`` too
    (where the servers may move). Their UUIDs."""
    names = [f"{prefix}-{i:02d}" for i in range(count)]
    nodes = enroll(conn, names, bios=BIOS if carried else None)
    if carried:
        for index, node in enumerate(nodes):
            carry(conn, node, index)
    wait_offered(conn, nodes)
    for other in others:
        flavor(other, FLAVOR)
        image(other, IMAGE)
    flavor_id, image_id = flavor(conn, FLAVOR), image(conn, IMAGE)
    booted = [
        boot_on(conn, host, node, f"web-{i}", flavor_id, image_id, metadata=ROLE, wait=False)
        for i, node in enumerate(nodes)
    ]
    for server_id in booted:  # all built at once
        wait_active(conn, server_id)
    return nodes


def carry(conn: Any, node: str, index: int) -> None:
    """What a node carries besides its server: a trait, a lessee, a RAID configuration
    asked for, a bond of two ports (a port group), a volume connector and a volume
    target."""
    ironic = conn.baremetal
    ironic.add_node_trait(node, "CUSTOM_RACK_A")
    ironic.update_node(node, lessee=LESSEE)
    raid = ironic.put(f"/nodes/{node}/states/raid", json=RAID, microversion="1.12")
    if raid.status_code != 204:
        raise TestbedError(f"RAID configuration of {node}: {raid.status_code} {raid.text}")
    group = ironic.create_port_group(
        node_id=node,
        name=f"bond-{index:02d}",
        address=f"52:54:01:00:{index:02x}:00",
        mode="802.3ad",
    )
    for nic in (1, 2):
        ironic.create_port(
            node_id=node, address=f"52:54:01:00:{index:02x}:{nic:02x}", port_group_id=group.id
        )
    ironic.create_volume_connector(
        node_id=node, type="iqn", connector_id=f"iqn.2026-12.org.example:node-{index:02d}"
    )
    ironic.create_volume_target(
        node_id=node, volume_type="iscsi", boot_index=0, volume_id=f"volume-{index:02d}"
    )
