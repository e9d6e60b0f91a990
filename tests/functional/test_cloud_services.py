"""The testbed's Glance and Neutron behind a real Keystone (cloud ``a`` of the session's two
clouds, a project of their own): a project member builds an image (its bytes round-trip),
a network, a subnet, a router with an interface, a security group and a rule, and a port
that the service user binds to a host without it failing; a project reader of the same
project lists and shows all of it (but may not download the image's bytes: Glance's
default) and gets 403 on every create; a member turned reader loses write access at once
(auth_token caches no token)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
import requests
from openstack import exceptions

from testbed.tenantclouds import TwoClouds

pytestmark = pytest.mark.functional

PROJECT = "cloud-services"
HOST = "compute-1"
#: An image of a little more than one MiB, not a multiple of any chunk size.
PAYLOAD = bytes(range(256)) * 4099


@pytest.fixture(scope="module")
def clouds(two_clouds: TwoClouds) -> TwoClouds:
    """The session's two clouds, with project PROJECT, its member and its reader."""
    two_clouds.add_project(PROJECT)
    return two_clouds


@pytest.fixture(scope="module")
def member(clouds: TwoClouds) -> Any:
    return clouds.connect(clouds.entry_name("a", PROJECT, "member"))


@pytest.fixture(scope="module")
def reader(clouds: TwoClouds) -> Any:
    return clouds.connect(clouds.entry_name("a", PROJECT, "reader"))


@pytest.fixture(scope="module")
def admin(clouds: TwoClouds) -> Any:
    """The cloud's admin (Nova binds ports with the admin's application credential)."""
    return clouds.connect("a")


def forbidden(create: Callable[[], object]) -> int | None:
    """The status code of the refused ``create``."""
    with pytest.raises(exceptions.ForbiddenException) as refused:
        create()
    return refused.value.status_code


def test_member_image_round_trips_and_reader_only_reads(member: Any, reader: Any) -> None:
    image = member.image.create_image(
        "cirros-like", data=PAYLOAD, disk_format="raw", container_format="bare", wait=True
    )
    stored = member.image.get_image(image.id)
    assert (stored.status, stored.size, stored.owner) == ("active", len(PAYLOAD), image.owner)
    assert stored.checksum == hashlib.md5(PAYLOAD).hexdigest()
    assert member.image.download_image(image.id).content == PAYLOAD

    assert image.id in {seen.id for seen in reader.image.images()}
    assert reader.image.get_image(image.id).checksum == stored.checksum
    # Glance's own default (download_image: member of the owning project) keeps the bytes
    # from a reader; openstacksdk's download_image does not raise on it, hence the raw GET.
    assert reader.image.get(f"/images/{image.id}/file").status_code == 403
    assert (
        forbidden(
            lambda: reader.image.create_image(
                "refused", disk_format="raw", container_format="bare", allow_duplicates=True
            )
        )
        == 403
    )
    assert forbidden(lambda: reader.image.delete_image(image.id)) == 403
    assert member.image.get_image(image.id).status == "active"


def test_member_network_and_reader_only_reads(member: Any, reader: Any) -> None:
    network = member.network.create_network(name="tenant-net")
    subnet = member.network.create_subnet(
        network_id=network.id, cidr="10.20.0.0/24", ip_version=4, name="tenant-subnet"
    )
    router = member.network.create_router(name="tenant-router")
    member.network.add_interface_to_router(router, subnet_id=subnet.id)
    group = member.network.create_security_group(name="tenant-ssh")
    rule = member.network.create_security_group_rule(
        security_group_id=group.id,
        direction="ingress",
        ethertype="IPv4",
        protocol="tcp",
        port_range_min=22,
        port_range_max=22,
        remote_ip_prefix="0.0.0.0/0",
    )

    assert network.id in {seen.id for seen in reader.network.networks()}
    assert subnet.id in {seen.id for seen in reader.network.subnets()}
    assert router.id in {seen.id for seen in reader.network.routers()}
    assert group.id in {seen.id for seen in reader.network.security_groups()}
    assert rule.id in {seen.id for seen in reader.network.security_group_rules()}
    interfaces = reader.network.ports(device_id=router.id)
    assert [ip["subnet_id"] for port in interfaces for ip in port.fixed_ips] == [subnet.id]

    refused = {
        "network": lambda: reader.network.create_network(name="refused"),
        "subnet": lambda: reader.network.create_subnet(
            network_id=network.id, cidr="10.21.0.0/24", ip_version=4
        ),
        "router": lambda: reader.network.create_router(name="refused"),
        "security group": lambda: reader.network.create_security_group(name="refused"),
        "rule": lambda: reader.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="icmp"
        ),
        "port": lambda: reader.network.create_port(network_id=network.id),
    }
    assert {what: forbidden(create) for what, create in refused.items()} == dict.fromkeys(
        refused, 403
    )
    assert [seen.name for seen in member.network.networks(name="refused")] == []


def test_port_bound_to_a_host_does_not_fail(member: Any, reader: Any, admin: Any) -> None:
    network = member.network.create_network(name="boot-net")
    member.network.create_subnet(network_id=network.id, cidr="10.30.0.0/24", ip_version=4)
    port = member.network.create_port(network_id=network.id, name="server-port")

    admin.network.update_port(port, binding_host_id=HOST, device_owner="compute:nova")
    bound = admin.network.get_port(port.id)
    assert (bound.binding_host_id, bound.binding_vif_type, bound.status) == (
        HOST,
        "ovs",
        "ACTIVE",
    )
    assert port.id in {seen.id for seen in reader.network.ports(network_id=network.id)}


def test_member_turned_reader_loses_write_access_at_once(clouds: TwoClouds, admin: Any) -> None:
    keystone = clouds.keystone
    user = "cloud-services-frozen"
    password = keystone.add_user(user, PROJECT, "member")
    token = keystone.token(user, password, PROJECT)
    assert clouds.a.neutron is not None
    networks = f"{clouds.a.neutron.url}/v2.0/networks"

    def create(with_token: str) -> int:
        body = {"network": {"name": "frozen"}}
        reply = requests.post(networks, json=body, headers={"X-Auth-Token": with_token}, timeout=30)
        return reply.status_code

    assert create(token) == 201
    project = admin.identity.find_project(PROJECT)
    found = admin.identity.find_user(user)
    roles = {role: admin.identity.find_role(role) for role in ("member", "reader")}
    admin.identity.unassign_project_role_from_user(project, found, roles["member"])
    admin.identity.assign_project_role_to_user(project, found, roles["reader"])

    # Keystone gives the same token the roles of the moment; auth_token caching nothing,
    # Neutron sees them at the next request (with a cache, the member's role would linger).
    assert create(token) == 403
    listed = requests.get(networks, headers={"X-Auth-Token": token}, timeout=30)
    assert listed.status_code == 200
    assert [net["name"] for net in listed.json()["networks"]].count("frozen") == 1
