"""A sample environment: three controllers and a compute node, a bond, a VLAN and two
VIPs, for Linux bridges (``lnx``) or Open vSwitch (``ovs``)."""

from __future__ import annotations

from functools import reduce
from typing import Any

from ephyra.netscheme.model import Environment


def doc(provider: str = "lnx") -> dict[str, Any]:
    def node(i: int, name: str, roles: list[str]) -> dict[str, Any]:
        return {
            "id": i,
            "name": name,
            "roles": roles,
            "release_id": 1,
            "addresses": {
                "fw-admin": f"10.20.0.{10 + i}",
                "management": f"192.168.0.{10 + i}",
                "public": f"172.16.0.{10 + i}",
            },
        }

    return {
        "id": 1,
        "name": "env1",
        "release_id": 1,
        "provider": provider,
        "networks": [
            {
                "name": "fw-admin",
                "bridge": "br-fw-admin",
                "cidr": "10.20.0.0/24",
                "interface": "eth0",
            },
            {
                "name": "management",
                "bridge": "br-mgmt",
                "cidr": "192.168.0.0/24",
                "interface": "bond0",
                "vlan": 101,
            },
            {
                "name": "public",
                "bridge": "br-ex",
                "cidr": "172.16.0.0/24",
                "interface": "eth3",
                "gateway": "172.16.0.1",
            },
        ],
        "bonds": [{"name": "bond0", "interfaces": ["eth1", "eth2"], "mode": "802.3ad"}],
        "vips": [
            {"name": "management", "network": "management", "address": "192.168.0.2"},
            {"name": "public", "network": "public", "address": "172.16.0.2"},
        ],
        "nodes": [
            node(1, "ctl-1", ["primary-controller"]),
            node(2, "ctl-2", ["controller"]),
            node(3, "ctl-3", ["controller"]),
            node(4, "cmp-1", ["compute"]),
        ],
    }


def env(provider: str = "lnx", *changes: Any) -> Environment:
    return reduce(lambda e, how: how(e), changes, Environment.parse(doc(provider)))
