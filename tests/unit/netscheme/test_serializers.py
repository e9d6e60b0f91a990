"""The serializers of the three modes: one test per acceptance criterion of the
isolated-deployment design, for Linux bridges and Open vSwitch."""

from __future__ import annotations

from typing import Any

import pytest

from ephyra.netscheme.lifecycle import installed, node_status, upgrade
from ephyra.netscheme.serializers import deployment_info, detect_mode
from tests.unit.netscheme.sample import env

PROVIDERS = ("lnx", "ovs")


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
