"""The environment model, the serializers of the three modes (one test per acceptance
criterion of the isolated-deployment design, for Linux bridges and Open vSwitch), the
state changes and the applier's plan."""

from __future__ import annotations

from functools import reduce
from typing import Any

import pytest
import sqlalchemy as sa

from ephyra.errors import EnvironmentNotFound, IllegalTransition, UsageError
from ephyra.netscheme import applier
from ephyra.netscheme.lifecycle import installed, node_status, upgrade
from ephyra.netscheme.model import Environment
from ephyra.netscheme.serializers import deployment_info, detect_mode
from ephyra.netscheme.store import Environments

PROVIDERS = ("lnx", "ovs")


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


def actions(info: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [a for a in info["network_scheme"]["transformations"] if a["action"] == kind]


def joins(info: dict[str, Any], bridge: str) -> list[dict[str, Any]]:
    """The actions that join ``bridge`` to a physical interface."""
    return [
        a
        for a in info["network_scheme"]["transformations"]
        if (a["action"] == "add-port" and a.get("bridge") == bridge)
        or (a["action"] == "add-patch" and bridge in a["bridges"])
    ]


# -- the acceptance criteria ---------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_default_info_is_there_for_the_primary_controller_under_upgrade(provider: str) -> None:
    info = deployment_info(env(provider, upgrade(2)), "ctl-1")
    assert info["roles"] == ["primary-controller"] and info["release_id"] == 2
    assert info["cluster"]["status"] == "upgrade"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_holds_no_facts_of_other_nodes(provider: str) -> None:
    info = deployment_info(env(provider, upgrade(2)), "ctl-1")
    assert list(info["network_metadata"]["nodes"]) == ["ctl-1"]
    assert deployment_info(env(provider), "ctl-1")["network_metadata"]["nodes"].keys() == {
        "ctl-1",
        "ctl-2",
        "ctl-3",
        "cmp-1",
    }


def test_isolated_ovs_has_no_patch_to_the_physical_network_for_vip_networks() -> None:
    usual = deployment_info(env("ovs"), "ctl-1")
    isolated = deployment_info(env("ovs", upgrade(2)), "ctl-1")
    assert isolated["deployment_mode"] == "isolated"
    for bridge in ("br-mgmt", "br-ex"):
        assert joins(usual, bridge) and not joins(isolated, bridge)
    assert joins(isolated, "br-fw-admin") == joins(usual, "br-fw-admin")  # no VIP: kept
    assert {a["name"] for a in actions(isolated, "add-port")} == {"eth0", "eth3"}  # br-ethN
    assert actions(isolated, "add-patch") == [
        {"action": "add-patch", "bridges": ["br-fw-admin", "br-eth0"], "provider": "ovs"}
    ]


def test_isolated_linux_bridge_adds_no_physical_interface_to_vip_bridges() -> None:
    usual = deployment_info(env("lnx"), "ctl-1")
    isolated = deployment_info(env("lnx", upgrade(2)), "ctl-1")
    assert [a["name"] for a in joins(usual, "br-mgmt")] == ["bond0.101"]
    assert [a["name"] for a in joins(usual, "br-ex")] == ["eth3"]
    assert not joins(isolated, "br-mgmt") and not joins(isolated, "br-ex")
    assert {(a["name"], a["bridge"]) for a in actions(isolated, "del-port")} == {
        ("bond0.101", "br-mgmt"),
        ("eth3", "br-ex"),
    }
    # the bridges and addresses are there: the VIPs come up on them, unseen outside
    assert {a["name"] for a in actions(isolated, "add-br")} == {"br-fw-admin", "br-mgmt", "br-ex"}
    assert isolated["network_scheme"]["endpoints"]["br-mgmt"]["IP"] == ["192.168.0.11/24"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_old_release_nodes_are_left_out_in_isolated_mode(provider: str) -> None:
    e = env(provider, upgrade(2, ["ctl-1", "ctl-2"]))
    info = deployment_info(e, "ctl-2")
    assert info["deployment_mode"] == "isolated"
    assert set(info["network_metadata"]["nodes"]) == {"ctl-1", "ctl-2"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_info_is_there_for_the_upgraded_primary_controller(provider: str) -> None:
    e = env(provider, upgrade(2), installed("ctl-1"))
    info = deployment_info(e, "ctl-1")
    assert info["release_id"] == 2
    assert info["deployment_mode"] == "isolated"  # ctl-2 and ctl-3 still hold the VIPs


@pytest.mark.parametrize("provider", PROVIDERS)
def test_old_controllers_get_cutover_info_once_the_new_primary_is_ready(provider: str) -> None:
    e = env(provider, upgrade(2))
    assert detect_mode(e, e.node("ctl-2"))[0] == "default"  # ctl-1 not installed yet
    e = installed("ctl-1")(e)
    info = deployment_info(e, "ctl-2")
    assert info["deployment_mode"] == "cutover" and info["release_id"] == 1


def test_cutover_info_deletes_the_old_controllers_linux_ports() -> None:
    info = deployment_info(env("lnx", upgrade(2), installed("ctl-1")), "ctl-3")
    assert actions(info, "del-port") == [
        {"action": "del-port", "name": "bond0.101", "bridge": "br-mgmt", "provider": "lnx"},
        {"action": "del-port", "name": "eth3", "bridge": "br-ex", "provider": "lnx"},
    ]
    assert not joins(info, "br-mgmt") and not joins(info, "br-ex")


def test_cutover_info_deletes_the_old_controllers_ovs_patches() -> None:
    info = deployment_info(env("ovs", upgrade(2), installed("ctl-1")), "ctl-3")
    assert actions(info, "del-port") == [
        {"action": "del-port", "bridges": ["br-mgmt", "br-bond0"], "provider": "ovs"},
        {"action": "del-port", "bridges": ["br-ex", "br-eth3"], "provider": "ovs"},
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_upgraded_controller_is_serialized_as_usual_after_the_cutover(provider: str) -> None:
    e = env(provider, upgrade(2), installed("ctl-1"), node_status(["ctl-2", "ctl-3"], "detached"))
    info = deployment_info(e, "ctl-1")
    assert info["deployment_mode"] == "default"
    usual = deployment_info(env(provider), "ctl-1")
    assert info["network_scheme"] == usual["network_scheme"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_other_controllers_are_reinstalled_as_usual_nodes(provider: str) -> None:
    e = env(provider, upgrade(2), installed("ctl-1"), node_status(["ctl-2", "ctl-3"], "detached"))
    assert detect_mode(e, e.node("ctl-2"))[0] == "cutover"  # detached, not reinstalled yet
    e = upgrade(2, ["ctl-2", "ctl-3"])(e)
    for name in ("ctl-2", "ctl-3"):
        info = deployment_info(e, name)
        assert info["deployment_mode"] == "default" and info["release_id"] == 2
        assert len(info["network_metadata"]["nodes"]) == 4
    e = installed("ctl-3")(installed("ctl-2")(e))
    assert e.status == "upgrade"  # cmp-1 is still on release 1


def test_nodes_without_vips_and_operational_environments_are_never_isolated() -> None:
    e = env("lnx", upgrade(2, ["ctl-1", "cmp-1"]))
    assert detect_mode(e, e.node("cmp-1")) == ("default", "cmp-1 holds no VIP")
    plain = env("lnx")
    assert detect_mode(plain, plain.node("ctl-1"))[0] == "default"


# -- state changes ---------------------------------------------------------------------
def test_upgrade_refuses_what_makes_no_sense() -> None:
    with pytest.raises(UsageError, match="already runs release 1"):
        env("lnx", upgrade(1))
    with pytest.raises(IllegalTransition, match="already being upgraded to release 2"):
        env("lnx", upgrade(2), upgrade(3))
    with pytest.raises(UsageError, match="no node nope"):
        env("lnx", upgrade(2, ["nope"]))
    with pytest.raises(IllegalTransition, match="no pending release"):
        env("lnx", installed("ctl-2"))


def test_the_last_node_installed_makes_the_environment_operational() -> None:
    e = env("lnx", upgrade(2, ["ctl-1", "ctl-2", "ctl-3", "cmp-1"]))
    for name in ("ctl-1", "ctl-2", "ctl-3"):
        e = installed(name)(e)
        assert e.status == "upgrade"
    e = installed("cmp-1")(e)
    assert e.status == "operational" and {n.release_id for n in e.nodes} == {2}


def test_a_bad_environment_is_refused_with_what_is_wrong() -> None:
    bad = doc()
    bad["vips"][0]["address"] = "10.0.0.2"
    with pytest.raises(UsageError, match=r"is not in 192\.168\.0\.0/24"):
        Environment.parse(bad)
    bad = doc()
    bad["nodes"][1]["addresses"]["management"] = "192.168.0.2"
    with pytest.raises(UsageError, match="also VIP management's"):
        Environment.parse(bad)
    bad = doc()
    bad["networks"][0]["bridge"] = "a-bridge-name-too-long"
    with pytest.raises(UsageError, match=r"networks\.0\.bridge"):
        Environment.parse(bad)


def test_the_store_keeps_environments_and_refuses_clashes() -> None:
    store = Environments(sa.create_engine("sqlite://"))
    assert store.put(env()) is True
    with pytest.raises(UsageError, match="--replace"):
        store.put(env())
    assert store.put(env(), replace=True) is False
    changed = store.change("env1", upgrade(2))
    assert store.get("1") == changed and store.get("env1").status == "upgrade"
    with pytest.raises(EnvironmentNotFound):
        store.get("env2")


def test_a_change_made_meanwhile_is_not_lost() -> None:
    store = Environments(sa.create_engine("sqlite://"))
    store.put(env())

    def racing(e: Environment) -> Environment:
        if e.status == "operational":  # another caller changes it between read and write
            store.change("env1", upgrade(2))
        return node_status(["ctl-2"], "detached")(e)

    done = store.change("env1", racing)
    assert done.status == "upgrade" and done.node("ctl-2").status == "detached"


# -- the applier's plan -----------------------------------------------------------------
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
