"""Two clouds on one Keystone (testbed.tenantclouds): what a project's member and reader may
do in cloud ``a`` through Keystone, cloud ``b`` answering on its own, and a project in
maintenance (``ephyra tenant maintenance on``) refused every write by Nova, Glance and
Neutron until ``off``."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openstack.connection import Connection
from openstack.exceptions import ForbiddenException

from testbed import catalog
from testbed.tenantclouds import TwoClouds
from tests.functional.crash import ok
from tests.functional.ephyra_cli import Ephyra

PROJECT = "tenant-clouds"
IMAGE_BYTES = b"ephyra testbed image\n" * 64
WAIT_S = 120.0
POLL_S = 0.1


@pytest.fixture(scope="module")
def clouds(two_clouds: TwoClouds) -> TwoClouds:
    two_clouds.add_project(PROJECT)
    return two_clouds


def connect(clouds: TwoClouds, cloud: str, role: str) -> Connection:
    return clouds.connect(TwoClouds.entry_name(cloud, PROJECT, role))


def flavor(admin: Connection) -> str:
    found = admin.compute.find_flavor("tenant-tiny", ignore_missing=True)
    if found is None:
        found = admin.compute.create_flavor(name="tenant-tiny", ram=256, vcpus=1, disk=1)
    return str(found.id)


def image(member: Connection, name: str) -> Any:
    created = member.image.create_image(
        name=name,
        data=io.BytesIO(IMAGE_BYTES),
        disk_format="raw",
        container_format="bare",
        visibility="private",
    )
    return member.image.get_image(created.id)


def wait_status(conn: Connection, server_id: str, status: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        server = conn.compute.get_server(server_id)
        if server.status == "ERROR":
            raise AssertionError(f"server {server_id} went to ERROR: {server.fault}")
        if server.status == status and not server.task_state:
            return server
        assert time.monotonic() < deadline, f"server {server_id} still {server.status}"
        time.sleep(POLL_S)


def wait_gone(conn: Connection, server_id: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while conn.compute.find_server(server_id, ignore_missing=True) is not None:
        assert time.monotonic() < deadline, f"server {server_id} not deleted"
        time.sleep(POLL_S)


def forbidden(call: Callable[[], object]) -> int:
    with pytest.raises(ForbiddenException) as refused:
        call()
    return int(refused.value.status_code or 0)


def test_a_member_boots_suspends_and_deletes_a_reader_only_reads(clouds: TwoClouds) -> None:
    admin = clouds.connect("a")
    member, reader = connect(clouds, "a", "member"), connect(clouds, "a", "reader")
    flavor_id = flavor(admin)
    glance_image = image(member, "tenant-image")
    assert glance_image.status == "active"
    network = member.network.create_network(name="tenant-net")
    subnet = member.network.create_subnet(
        network_id=network.id, cidr="10.20.0.0/24", ip_version=4, name="tenant-subnet"
    )
    server = member.compute.create_server(
        name="tenant-vm",
        flavor_id=flavor_id,
        image_id=glance_image.id,
        networks=[{"uuid": network.id}],
    )
    active = wait_status(member, server.id, "ACTIVE")
    assert active.image.id == glance_image.id
    [address] = active.addresses["tenant-net"]
    assert address["addr"].startswith("10.20.0.")
    [port] = admin.network.ports(device_id=server.id)
    assert port.fixed_ips[0]["subnet_id"] == subnet.id
    assert port.binding_host_id == admin.compute.get_server(server.id).compute_host
    assert port.binding_vif_type == "ovs"

    assert [s.id for s in reader.compute.servers()] == [server.id]
    assert reader.compute.get_server(server.id).status == "ACTIVE"
    assert [i.id for i in reader.image.images(name="tenant-image")] == [glance_image.id]
    boot = {"name": "refused", "flavor_id": flavor_id, "image_id": glance_image.id}
    assert forbidden(lambda: reader.compute.create_server(**boot, networks="none")) == 403
    assert forbidden(lambda: reader.compute.suspend_server(server.id)) == 403
    assert forbidden(lambda: reader.compute.delete_server(server.id)) == 403

    member.compute.suspend_server(server.id)
    wait_status(member, server.id, "SUSPENDED")
    assert forbidden(lambda: reader.compute.delete_server(server.id)) == 403
    assert [s.status for s in reader.compute.servers()] == ["SUSPENDED"]

    member.compute.delete_server(server.id)
    wait_gone(member, server.id)
    assert list(reader.compute.servers()) == []
    assert list(admin.network.ports(device_id=server.id)) == []
    member.network.delete_network(network.id)
    member.image.delete_image(glance_image.id)


def test_cloud_b_has_its_own_services_servers_and_images(clouds: TwoClouds) -> None:
    a, b = connect(clouds, "a", "member"), connect(clouds, "b", "member")
    for service in ("compute", "image", "network", "placement"):
        assert getattr(a, service).get_endpoint() != getattr(b, service).get_endpoint()
    hosts_a = {h.name for h in clouds.connect("a").compute.hypervisors()}
    hosts_b = {h.name for h in clouds.connect("b").compute.hypervisors()}
    assert (hosts_a, hosts_b) == ({"compute-1", "compute-2"}, {"compute-3", "compute-4"})

    only_b = image(b, "only-in-b")
    group = b.compute.create_server_group(name="only-in-b", policy="anti-affinity")
    server = b.compute.create_server(
        name="only-in-b",
        flavor_id=flavor(clouds.connect("b")),
        image_id=only_b.id,
        networks="none",
        scheduler_hints={"group": group.id},
    )
    wait_status(b, server.id, "ACTIVE")
    assert [s.id for s in b.compute.servers()] == [server.id]
    assert list(a.compute.servers()) == []
    assert [i.id for i in b.image.images(name="only-in-b")] == [only_b.id]
    assert list(a.image.images(name="only-in-b")) == []

    clouds.clean()
    assert list(b.compute.servers()) == []
    assert list(clouds.connect("b").compute.server_groups(all_projects=True)) == []
    b.image.delete_image(only_b.id)


def test_each_region_has_its_cloud_in_the_catalog_once(clouds: TwoClouds) -> None:
    keystone = clouds.keystone
    identity = catalog.admin(keystone).identity
    for cloud in clouds.clouds.values():
        wanted = {kind: url for kind, (_name, url) in cloud.endpoints().items()}
        assert catalog.endpoints(keystone, cloud.region) == wanted
        before = catalog.register_region(keystone, cloud.region, cloud.endpoints())
        assert catalog.register_region(keystone, cloud.region, cloud.endpoints()) == before
        public = [e for e in identity.endpoints(interface="public") if e.region_id == cloud.region]
        assert sorted(e.url for e in public) == sorted(wanted.values())


def assignments(admin: Connection, project: str) -> list[tuple[str, str, str]]:
    """Every role assignment on the project: (role, user, group)."""
    found = admin.identity.role_assignments(scope_project_id=project)
    return sorted(
        (a.role["id"], (a.user or {}).get("id", ""), (a.group or {}).get("id", "")) for a in found
    )


def test_maintenance_refuses_every_write_with_403_and_off_gives_them_back(
    clouds: TwoClouds, tmp_path: Path
) -> None:
    admin = clouds.connect("a")
    member = connect(clouds, "a", "member")  # its token is taken before the freeze
    flavor_id = flavor(admin)
    glance_image = image(member, "frozen-image")
    server = member.compute.create_server(
        name="frozen-vm", flavor_id=flavor_id, image_id=glance_image.id, networks="none"
    )
    wait_status(member, server.id, "ACTIVE")
    network = member.network.create_network(name="frozen-net")
    project = admin.identity.find_project(PROJECT).id
    before = assignments(admin, project)
    ephyra = Ephyra(clouds.clouds_yaml, tmp_path / "state")

    ok(ephyra("tenant", "maintenance", "on", PROJECT, "--os-cloud", "a"))
    assert assignments(admin, project) != before
    # every read works
    assert [s.id for s in member.compute.servers()] == [server.id]
    assert member.image.get_image(glance_image.id).status == "active"
    assert [n.id for n in member.network.networks(name="frozen-net")] == [network.id]
    # every write is refused
    boot = {"name": "refused", "flavor_id": flavor_id, "image_id": glance_image.id}
    assert forbidden(lambda: member.compute.create_server(**boot, networks="none")) == 403
    assert forbidden(lambda: member.compute.suspend_server(server.id)) == 403
    assert forbidden(lambda: member.compute.delete_server(server.id)) == 403
    assert forbidden(lambda: member.network.create_network(name="refused")) == 403
    new_image = {"name": "refused", "disk_format": "raw", "container_format": "bare"}
    assert forbidden(lambda: member.image.create_image(**new_image)) == 403
    assert member.compute.get_server(server.id).status == "ACTIVE"

    ok(ephyra("tenant", "maintenance", "off", PROJECT, "--os-cloud", "a"))
    assert assignments(admin, project) == before
    # and every write works again, with the same token
    member.compute.suspend_server(server.id)
    wait_status(member, server.id, "SUSPENDED")
    thawed = member.network.create_network(name="thawed-net")
    again = image(member, "thawed-image")
    assert again.status == "active"
    member.compute.delete_server(server.id)
    wait_gone(member, server.id)
    for net in (thawed, network):
        member.network.delete_network(net.id)
    for img in (again, glance_image):
        member.image.delete_image(img.id)
