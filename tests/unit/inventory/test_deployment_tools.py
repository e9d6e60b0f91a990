"""The inventories deployment tools ship, read as they are and planned: Kolla-Ansible's
``multinode`` and ``all-in-one`` (kolla-ansible 22.2.0) and OpenStack-Ansible's example
configurations with its env.d (see ``data/README.md``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ephyra.inventory.model import Inventory
from ephyra.inventory.source import discover
from ephyra.upgrade.plan import CONTROL, DATA, Plan, make_plan
from ephyra.upgrade.spec import parse

DATA_DIR = Path(__file__).parent / "data"
KOLLA = DATA_DIR / "kolla-ansible"
OSA = DATA_DIR / "openstack-ansible"
ROLES = {"controller", "network", "compute", "storage", "monitoring"}
#: Groups of both tools that are where infrastructure runs, never what a host is for.
INFRASTRUCTURE = {
    "common",
    "baremetal",
    "kolla-logs",
    "kolla-toolbox",
    "tls-backend",
    "bifrost",
    "deployment",
    "openvswitch",
    "mariadb",
    "rabbitmq",
    "haproxy",
}


def kolla(name: str) -> Inventory:
    return discover([f"ansible:{KOLLA / name}"])


def osa(example: str) -> Inventory:
    return discover([f"osa:{OSA / example / 'openstack_user_config.yml'}?env_d={OSA / 'env.d'}"])


def plan(found: Inventory) -> Plan:
    spec = parse(
        {
            "release": "2026.2",
            "strategies": {"tool": {"type": "command", "upgrade": "true"}},
            "strategy": "tool",
            "roles": {"controller": {"max_at_once": 1}, "compute": {"max_at_once": 1}},
        }
    )
    return make_plan(found, spec)


def services(found: Inventory, host: str) -> set[str]:
    return {s.name for s in found.host(host).services}


def test_kolla_multinode_roles_are_the_host_groups_only() -> None:
    found = kolla("multinode")
    roles = {h.name: set(h.roles) for h in found.hosts}
    assert roles == {
        "control01": {"controller", "storage"},  # Kolla's cinder-volume runs there
        "control02": {"controller", "storage"},
        "control03": {"controller", "storage"},
        "network01": {"network"},
        "network02": {"network"},
        "compute01": {"compute"},
        "monitoring01": {"monitoring"},
        "storage01": {"storage"},
        "localhost": set(),  # the deployment host
    }


def test_kolla_multinode_service_groups_are_services_known_or_not() -> None:
    found = kolla("multinode")
    compute = services(found, "compute01")
    # nova-compute has no group of its own: Kolla runs it on the compute group
    assert {"nova-compute", "ovn-controller", "neutron-ovn-metadata-agent"} <= compute
    assert {"masakari-instancemonitor", "cyborg-agent"} <= compute  # projects Ephyra lacks
    assert "ovn-controller-compute" not in compute  # a variant of ovn-controller's group
    control = {s.name: s.project for s in found.host("control01").services}
    assert control["neutron-server"] == "network"
    assert control["nova-api"] == "compute"
    assert control["blazar-api"] == "blazar"
    assert control["masakari-api"] == "masakari"
    assert control["skyline-apiserver"] == "skyline"
    assert "blazar" not in control and "nova" not in control  # project groups: nothing
    assert services(found, "storage01") == {"cinder-volume", "cinder-backup"}
    every = {s.name for h in found.hosts for s in h.services}
    assert not every & INFRASTRUCTURE
    assert not {h for h in found.hosts for r in h.roles if r not in ROLES}


def test_kolla_all_in_one_is_every_role_on_one_host() -> None:
    found = kolla("all-in-one")
    (host,) = found.hosts
    assert set(host.roles) == ROLES
    assert {"nova-compute", "neutron-server", "ovn-controller", "keystone"} <= services(
        found, host.name
    )


def test_osa_hosts_run_what_env_d_places_on_their_groups() -> None:
    found = osa("prod")
    assert {h.name: set(h.roles) for h in found.hosts} == {
        "infra1": {"controller", "storage"},  # the example's cinder-volume is on infra hosts
        "infra2": {"controller", "storage"},
        "infra3": {"controller", "storage"},
        "net1": {"network"},
        "net2": {"network"},
        "net3": {"network"},
        "compute1": {"compute"},
        "compute2": {"compute"},
    }
    assert {"nova-compute", "ovn-controller"} <= services(found, "compute1")
    assert {"nova-api", "nova-conductor", "neutron-server", "keystone", "ovn-northd"} <= (
        services(found, "infra1")
    )
    assert services(found, "net1") == {"ovn-controller"}
    assert found.host("infra1").fact["ip"] == "172.29.236.11"
    every = {s.name for h in found.hosts for s in h.services}
    assert not every & {"galera", "rabbitmq", "memcached", "haproxy", "utility", "pkg-repo"}


def test_osa_test_example_and_an_override_in_the_deployments_env_d(tmp_path: Path) -> None:
    config = tmp_path / "openstack_user_config.yml"
    config.write_text((OSA / "test" / "openstack_user_config.yml").read_text())
    (tmp_path / "env.d").mkdir()
    (tmp_path / "env.d" / "cinder.yml").write_text(
        "container_skel:\n  cinder_volumes_container:\n    contains: [cinder_volume]\n"
    )
    found = discover([f"osa:{config}?env_d={OSA / 'env.d'}"])
    assert services(found, "storage1") == {"cinder-volume"}  # the override drops backup
    assert {"neutron-l3-agent", "neutron-server"} <= services(found, "infra1")


@pytest.mark.parametrize(
    "found",
    [
        pytest.param(lambda: kolla("multinode"), id="kolla-multinode"),
        pytest.param(lambda: kolla("all-in-one"), id="kolla-all-in-one"),
        pytest.param(lambda: osa("prod"), id="osa-prod"),
        pytest.param(lambda: osa("test"), id="osa-test"),
    ],
)
def test_plans_keep_each_projects_order(found: object) -> None:
    inv = found()  # type: ignore[operator]
    made = plan(inv)
    stages = list(made.stages)
    agent = lambda name: name.startswith("neutron-") and name.endswith("agent")  # noqa: E731
    server_stages = [i for i, s in enumerate(stages) if "neutron-server" in _names(s)]
    agent_stages = [
        i for i, s in enumerate(stages) if any(agent(n) or n == "ovn-controller" for n in _names(s))
    ]
    assert server_stages and agent_stages
    # every Neutron agent and ovn-controller after neutron-server, with its host's data plane
    assert min(agent_stages) > max(server_stages)
    assert all(stages[i].plane == DATA for i in agent_stages)
    for stage in stages:
        for unit in stage.units():
            host = inv.host(unit.host)
            if stage.plane == CONTROL and unit.services:
                assert "controller" in host.roles or not host.roles, (stage.name, unit.host)
            assert unit.role not in INFRASTRUCTURE
    assert {r for s in stages for u in s.units() for r in [u.role]} <= ROLES


def _names(stage: object) -> set[str]:
    return {n for u in stage.units() for n in u.services}  # type: ignore[attr-defined]
