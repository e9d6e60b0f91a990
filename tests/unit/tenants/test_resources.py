"""A tenant's resources described without ids: equal on two clouds holding the same tenant."""

from __future__ import annotations

import copy
from typing import Any

from ephyra.tenants.resources import KINDS, describe


def _tenant(ids: str) -> dict[str, list[dict[str, Any]]]:
    """One tenant as collect() reads it, every id prefixed by ``ids``."""

    def i(name: str) -> str:
        return f"{ids}-{name}"

    return {
        "quota": [{"name": "compute", "instances": 10, "cores": 20}],
        "flavor": [
            {
                "id": i("f"),
                "name": "m1.pin",
                "vcpus": 2,
                "ram": 512,
                "disk": 1,
                "swap": 0,
                "ephemeral": 0,
                "is_public": False,
                "extra_specs": {"hw:cpu_policy": "dedicated"},
            },
        ],
        "keypair": [
            {"name": "ops", "user": "alice", "type": "ssh", "public_key": "ssh-ed25519 AAA\n"}
        ],
        "server_group": [
            {
                "id": i("g"),
                "name": "ha",
                "policy": "anti-affinity",
                "rules": {},
                "project_id": i("p"),
                "member_ids": [i("s1"), i("s2")],
            },
        ],
        "security_group": [
            {
                "id": i("sg"),
                "name": "web",
                "description": "",
                "security_group_rules": [
                    {
                        "direction": "ingress",
                        "ether_type": "IPv4",
                        "protocol": "tcp",
                        "port_range_min": 80,
                        "port_range_max": 80,
                        "remote_ip_prefix": "0.0.0.0/0",
                        "remote_group_id": None,
                    },
                    {
                        "direction": "ingress",
                        "ether_type": "IPv4",
                        "protocol": None,
                        "port_range_min": None,
                        "port_range_max": None,
                        "remote_ip_prefix": None,
                        "remote_group_id": i("sg"),
                    },
                ],
            },
        ],
        "network": [
            {
                "id": i("n"),
                "name": "net",
                "is_admin_state_up": True,
                "is_shared": False,
                "mtu": 1450,
            }
        ],
        "subnet": [
            {
                "id": i("sn"),
                "name": "sub",
                "network_id": i("n"),
                "cidr": "10.0.0.0/24",
                "ip_version": 4,
                "gateway_ip": "10.0.0.1",
                "is_dhcp_enabled": True,
                "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.254"}],
                "dns_nameservers": [],
                "host_routes": [],
            }
        ],
        "router": [
            {"id": i("r"), "name": "rt", "is_admin_state_up": True, "external_gateway_info": None}
        ],
        "port": [
            {
                "device_id": i("r"),
                "device_owner": "network:router_interface",
                "network_id": i("n"),
                "fixed_ips": [{"subnet_id": i("sn")}],
            },
            {
                "device_id": i("s1"),
                "device_owner": "compute:nova",
                "network_id": i("n"),
                "fixed_ips": [{"subnet_id": i("sn")}],
            },
        ],
        "image": [
            {
                "id": i("img"),
                "name": "cirros",
                "status": "active",
                "size": 1024,
                "disk_format": "qcow2",
                "container_format": "bare",
                "os_hash_value": "abc",
                "visibility": "private",
                "min_disk": 0,
                "min_ram": 0,
                "properties": {"os_distro": "cirros", "owner_specified.openstack.md5": "x"},
            },
        ],
        "server": [
            {
                "id": i("s1"),
                "name": "web-1",
                "status": "ACTIVE",
                "key_name": "ops",
                "metadata": {"role": "web"},
                "image": {"id": i("img")},
                "flavor": {"original_name": "m1.pin", "disk": 1},
                "security_groups": [{"name": "web"}],
            },
            {
                "id": i("s2"),
                "name": "web-2",
                "status": "ERROR",
                "key_name": "ops",
                "metadata": {},
                "image": {"id": i("img")},
                "flavor": {"original_name": "m1.pin", "disk": 1},
                "security_groups": [],
            },
        ],
    }


def test_the_same_tenant_under_other_ids_exports_the_same() -> None:
    a = describe("demo", _tenant("a"))
    b = describe("demo", _tenant("b"))
    assert a.export == b.export
    assert list(a.export) == list(KINDS)
    web1 = a.export["server"][0]
    assert web1 == {
        "name": "web-1",
        "flavor": "m1.pin",
        "key_name": "ops",
        "metadata": {"role": "web"},
        "server_groups": ["ha"],
        "networks": ["net"],
        "security_groups": ["web"],
        "status": "ACTIVE",
    }
    assert a.export["router"][0]["interfaces"] == ["sub"]
    assert a.export["subnet"][0]["network"] == "net"
    rules = a.export["security_group"][0]["rules"]
    assert {r["remote_group"] for r in rules} == {"", "web"}
    assert a.export["image"][0]["properties"] == {"os_distro": "cirros"}


def test_a_difference_in_content_shows_in_the_export() -> None:
    raw = _tenant("b")
    changed = copy.deepcopy(raw)
    changed["flavor"][0]["extra_specs"] = {}
    assert describe("demo", raw).export != describe("demo", changed).export


def test_what_cannot_move_says_why_and_weighs_nothing() -> None:
    raw = _tenant("a")
    raw["server"].append(
        {
            "id": "a-s3",
            "name": "db",
            "status": "ACTIVE",
            "image": "",
            "flavor": {"disk": 0},
            "metadata": {},
        }
    )
    raw["image"].append({"id": "a-q", "name": "queued", "status": "queued", "size": None})
    tenant = describe("demo", raw)
    blocked = {r.name: r.blocker for r in tenant.blocked()}
    assert blocked == {
        "web-2": "status ERROR: only ACTIVE, SHUTOFF, SUSPENDED, PAUSED servers move",
        "db": "boots from a volume: volumes are not moved",
        "queued": "status queued: only active images are copied",
    }
    assert tenant.size() == 1024 + 1024**3  # the image and web-1's disk
    row = next(r for r in tenant.resources if r.name == "web-1").to_dict()
    assert row == {
        "kind": "server",
        "name": "web-1",
        "id": "a-s1",
        "size": 1024**3,
        "movable": True,
        "blocker": "",
    }
