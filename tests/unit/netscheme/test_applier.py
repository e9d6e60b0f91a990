"""The applier's plan."""

from __future__ import annotations

from typing import Any, cast

import pytest

from ephyra.errors import UsageError
from ephyra.netscheme import applier
from ephyra.netscheme.lifecycle import installed, upgrade
from ephyra.netscheme.model import Environment
from ephyra.netscheme.serializers import deployment_info
from tests.unit.netscheme.sample import env


def host(**links: applier.Link) -> applier.Host:
    return applier.Host(dict(links))


def scheme(e: Environment, name: str) -> dict[str, Any]:
    info: dict[str, Any] = deployment_info(e, name)["network_scheme"]
    return info


def test_the_plan_makes_what_is_missing_and_nothing_twice() -> None:
    e = env("lnx")
    live = host(**{n: applier.Link("veth", up=True) for n in ("eth0", "eth1", "eth2", "eth3")})
    first = [str(c) for c in applier.plan(scheme(e, "ctl-1"), live)]
    assert "create bond bond0 (802.3ad)" in first
    assert "create VLAN bond0.101 on bond0" in first
    assert "attach bond0.101 to br-mgmt" in first
    assert "add 192.168.0.11/24 to br-mgmt" in first
    assert "default route via 172.16.0.1 on br-ex" in first
    assert applier.plan(scheme(e, "ctl-1"), live) == []  # the host now is as planned


def test_the_plan_of_a_cutover_detaches_and_downs_the_port() -> None:
    e = env("lnx", upgrade(2), installed("ctl-1"))
    live = host(
        eth3=applier.Link("veth", master="br-ex", up=True),
        **{"br-ex": applier.Link("bridge", up=True, addresses={"172.16.0.13/24"})},
    )
    only_public = {**scheme(e, "ctl-3")}
    only_public["transformations"] = [
        a for a in only_public["transformations"] if "br-ex" in (a.get("name"), a.get("bridge"))
    ]
    only_public["endpoints"] = {"br-ex": {"IP": ["172.16.0.13/24"]}}
    assert [str(c) for c in applier.plan(only_public, live)] == [
        "detach eth3 from br-ex",
        "set eth3 down",
    ]


def test_the_plan_refuses_open_vswitch_and_missing_interfaces() -> None:
    with pytest.raises(UsageError, match="Open vSwitch"):
        applier.plan(scheme(env("ovs"), "ctl-1"), host())
    with pytest.raises(UsageError, match="no interface eth0"):
        applier.plan(scheme(env("lnx"), "ctl-1"), host())


class Link(dict[str, Any]):
    """A netlink link message: ``flags`` by key, attributes by ``get``."""


class Netlink:
    """A bridge that is up and gets its carrier at the ``carrier_at``-th look."""

    def __init__(self, carrier_at: int | None) -> None:
        self.carrier_at, self.looks = carrier_at, 0

    def link_lookup(self, ifname: str) -> list[int]:
        return [3] if ifname == "br-mgmt" else []

    def get_links(self, index: int) -> list[Link]:
        self.looks += 1
        carries = self.carrier_at is not None and self.looks >= self.carrier_at
        return [Link(flags=applier.IFF_UP, operstate="UP" if carries else "DOWN")]


def test_a_bridge_carries_once_up_with_a_carrier_and_is_waited_for() -> None:
    soon = Netlink(carrier_at=3)
    assert applier.wait_carrying(cast(Any, soon), "br-mgmt", timeout=5.0)
    assert soon.looks == 3
    never = Netlink(carrier_at=None)
    assert not applier.wait_carrying(cast(Any, never), "br-mgmt", timeout=0.05)
    assert never.looks > 1
    assert not applier.carrying(cast(Any, Netlink(carrier_at=1)), "br-ex")  # no such link
