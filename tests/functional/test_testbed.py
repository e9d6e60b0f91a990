"""The testbed itself: real Ironic control planes, seeding, clearing, crash and restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import openstack
import pytest
import yaml
from keystoneauth1.exceptions import ClientException
from openstack.exceptions import SDKException

from testbed.ironic import Testbed, connect
from testbed.seed import clear, node_spec, provision, seed_nodes, snapshot, write_credentials

if TYPE_CHECKING:
    from openstack.connection import Connection


def test_seeded_nodes_are_active_with_ports_owner_and_lessee(
    clean_testbed: Testbed, cp1: Connection, cp2: Connection
) -> None:
    specs = seed_nodes(cp1, 5)

    nodes = snapshot(cp1)
    assert len(nodes) == 5 and snapshot(cp2) == {}
    for spec in specs:
        node = nodes[spec["create"]["uuid"]]
        assert node["name"] == spec["create"]["name"]
        assert node["provision_state"] == "active" and node["maintenance"] is False
        assert (node["owner"], node["lessee"]) == (spec["owner"], spec["lessee"])
        assert node["driver_info"]["ipmi_password"] == "******"
        assert node["instance_info"] == spec["instance_info"]
        assert node["extra"] == spec["create"]["extra"]
        expected = [(p["uuid"], p["address"], p["pxe_enabled"], p["extra"]) for p in spec["ports"]]
        assert node["ports"] == sorted(expected)
    passwords = {spec["create"]["driver_info"]["ipmi_password"] for spec in specs}
    assert len(passwords) == 5


def test_clear_removes_every_node_and_port(clean_testbed: Testbed, cp1: Connection) -> None:
    seed_nodes(cp1, 3)
    cp1.baremetal.set_node_maintenance(next(cp1.baremetal.nodes()).id, reason="broken BMC")

    assert clear(cp1) == 3
    assert list(cp1.baremetal.nodes()) == [] and list(cp1.baremetal.ports()) == []


def test_kill_and_restart_keep_the_database(clean_testbed: Testbed, cp2: Connection) -> None:
    seed_nodes(cp2, 2, deployed=False)
    before = snapshot(cp2)
    service = clean_testbed["cp2"]

    service.kill()
    try:
        assert not service.is_running
        with pytest.raises((SDKException, ClientException)):  # connection refused
            list(connect(clean_testbed.clouds_yaml, "cp2").baremetal.nodes())
    finally:
        service.restart()

    assert service.is_running
    assert snapshot(connect(clean_testbed.clouds_yaml, "cp2")) == before


def test_clouds_yaml_and_env(testbed: Testbed) -> None:
    clouds = yaml.safe_load(testbed.clouds_yaml.read_text())["clouds"]
    assert clouds["cp1"] == {
        "auth_type": "none",
        "baremetal_endpoint_override": testbed["cp1"].url,
    }
    assert testbed.env() == {"OS_CLIENT_CONFIG_FILE": str(testbed.clouds_yaml)}
    assert testbed["cp1"].url.startswith("http://127.0.0.1:")
    list(openstack.connect(cloud="cp2").baremetal.nodes())  # found through the environment


def test_write_credentials(tmp_path: Path) -> None:
    specs = [node_spec(i) for i in range(3)]
    path = write_credentials(tmp_path / "creds.yaml", specs)

    data = yaml.safe_load(path.read_text())
    assert data == {
        "nodes": {
            s["create"]["name"]: {"ipmi_password": s["create"]["driver_info"]["ipmi_password"]}
            for s in specs
        }
    }
    assert path.stat().st_mode & 0o777 == 0o600


def test_fake_delay_slows_deploy_and_show_secrets_unmasks(tmp_path: Path) -> None:
    with Testbed(tmp_path, names=("slow",), fake_delay=1.0, show_secrets=True) as bed:
        conn = bed.connect("slow")
        (spec,) = seed_nodes(conn, 1, deployed=False)
        node_id = spec["create"]["uuid"]
        conn.baremetal.update_node(node_id, instance_info=spec["instance_info"])

        started = time.monotonic()
        provision(conn, node_id, "active", "active")

        assert time.monotonic() - started >= 1.0
        node = conn.baremetal.get_node(node_id)
        assert node.driver_info["ipmi_password"] == spec["create"]["driver_info"]["ipmi_password"]
    assert not bed["slow"].is_running
