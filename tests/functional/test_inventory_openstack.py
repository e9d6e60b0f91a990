"""The ``openstack`` source against real services: Nova (with Placement) and two Ironic
control planes. What it finds is compared with what the APIs list when asked directly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from oslo_utils import versionutils

from ephyra.cli.main import main
from ephyra.errors import CloudError, CloudNotFound
from ephyra.inventory import openstack as source
from ephyra.inventory.model import DISABLED, DOWN, UP, Inventory
from ephyra.inventory.source import discover
from testbed.ironic import Testbed, free_port
from testbed.nova import NovaTestbed
from testbed.seed import clear, seed_nodes

NOVA_ABSENT = {"identity", "image", "network", "block-storage", "baremetal"}
IRONIC_ABSENT = {"identity", "image", "placement", "compute", "network", "block-storage"}


@pytest.fixture
def nova_cloud(clean_nova: NovaTestbed, monkeypatch: pytest.MonkeyPatch) -> Iterator[NovaTestbed]:
    """The Nova testbed with servers on two hosts; emptied again afterwards."""
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clean_nova.clouds_yaml))
    clean_nova.boot("compute-1", 2, project="demo")
    clean_nova.boot("compute-3", 1, project="other")
    yield clean_nova
    clean_nova.clean()


def _status(service: Any) -> str:
    if service.state == "down":
        return DOWN
    return DISABLED if service.status == "disabled" else UP


def test_nova_as_its_apis_list_it(nova_cloud: NovaTestbed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "PAGE", 2)  # three servers: the listing takes two pages
    found = discover([f"openstack:{nova_cloud.cloud}"])
    compute = nova_cloud.connect().compute

    services = list(compute.services())
    assert {h.name for h in found.hosts} == {s.host for s in services}
    for s in services:
        (mine,) = [x for x in found.host(s.host).services if x.name == s.binary]
        assert (mine.project, mine.region, mine.status) == ("compute", "RegionOne", _status(s))
    versions = {
        h.service_details["host"]: versionutils.convert_version_to_str(h.hypervisor_version)
        for h in compute.hypervisors(details=True)
    }
    assert set(versions) == set(nova_cloud.hosts)
    for host, version in versions.items():
        (nova_compute,) = found.host(host).services
        assert (nova_compute.name, nova_compute.version) == ("nova-compute", version)
        assert found.host(host).roles == {"compute"}
        assert found.host(host).servers == len(nova_cloud.servers_on(host))
    assert [found.host(h).servers for h in nova_cloud.hosts] == [2, 0, 1]
    assert found.host("controller").roles == {"controller"}
    assert {s.name for s in found.host("controller").services} == {
        "nova-conductor",
        "nova-scheduler",
    }

    endpoints = {e.service: e for e in found.endpoints}
    assert set(endpoints) == {"compute", "placement"}
    compute_data = compute.get_endpoint_data()
    assert endpoints["compute"].version == ".".join(map(str, compute_data.max_microversion))
    placement_data = nova_cloud.connect().placement.get_endpoint_data()
    assert endpoints["placement"].version == ".".join(map(str, placement_data.max_microversion))
    assert endpoints["compute"].url.rstrip("/") == nova_cloud.api_url
    assert found.regions == ("RegionOne",)

    absent = found.fact["absent"]["nova/RegionOne"]
    assert set(absent) == NOVA_ABSENT  # Keystone, Neutron, Cinder, Glance, Ironic: not there
    assert "names no endpoint" in absent["block-storage"]
    assert "GET /v3/regions (HTTP 404)" in absent["identity"]


def test_nova_through_the_command_line(
    nova_cloud: NovaTestbed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--format", "json", "inventory", "show", "--os-cloud", "nova"]) == 0
    shown = Inventory.from_dict(json.loads(capsys.readouterr().out))
    assert {h.name for h in shown.hosts} == {"controller", *nova_cloud.hosts}
    assert shown.sources == ("openstack:nova",)

    code = main(["inventory", "show", "--source", "openstack:nova", "--role", "compute"])
    table = capsys.readouterr().out
    assert code == 0
    assert "compute-1" in table and "nova-compute:up" in table and "controller" not in table
    assert "absent: nova/RegionOne: network:" in table


@pytest.fixture
def ironic(clean_testbed: Testbed) -> Iterator[Testbed]:
    """cp1 with three nodes (two deployed, one in maintenance); cp2 with none."""
    cp1 = clean_testbed.connect("cp1")
    seed_nodes(cp1, 2, prefix="inv")
    (spare,) = seed_nodes(cp1, 1, prefix="inv", start_index=2, deployed=False)
    cp1.baremetal.set_node_maintenance(spare["create"]["uuid"], reason="disk")
    yield clean_testbed
    clear(cp1)


def test_ironic_nodes_and_conductors(ironic: Testbed) -> None:
    found = discover(["openstack:cp1"])
    api = ironic.connect("cp1").baremetal
    nodes = list(api.nodes(details=True))
    assert len(nodes) == 3
    conductors = list(api.conductors())
    assert {h.name for h in found.hosts} == {n.name for n in nodes} | {
        c.hostname for c in conductors
    }
    for node in nodes:
        host = found.host(node.name)
        assert host.roles == {"baremetal"}
        assert host.fact["ironic_uuid"] == node.id
        assert host.fact["provision_state"] == node.provision_state
        assert host.fact["power_state"] == node.power_state
        assert host.fact["maintenance"] is node.is_maintenance
    assert sorted(found.host(n.name).fact["provision_state"] for n in nodes) == [
        "active",
        "active",
        "available",
    ]
    assert sum(found.host(n.name).fact["maintenance"] for n in nodes) == 1
    for conductor in conductors:
        host = found.host(conductor.hostname)
        assert host.roles == {"controller"}
        (service,) = host.services
        assert (service.name, service.project) == ("ironic-conductor", "bare-metal")
        assert service.status == (UP if conductor.alive else DOWN)
    (endpoint,) = found.endpoints
    assert endpoint.service == "baremetal"
    assert endpoint.version == ".".join(map(str, api.get_endpoint_data().max_microversion))
    assert set(found.fact["absent"]["cp1"]) == IRONIC_ABSENT

    both = discover(["openstack:cp1", "openstack:cp2"])
    assert set(both.fact["absent"]) == {"cp1", "cp2"}
    assert {h.name for h in both.hosts} == {h.name for h in found.hosts} | {"cp2"}


def _clouds(tmp_path: Path, clouds: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))


def test_every_region_clouds_yaml_names(
    testbed: Testbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = testbed.services["cp1"].url
    _clouds(
        tmp_path,
        {"two": {"auth_type": "none", "baremetal_endpoint_override": url, "regions": ["R1", "R2"]}},
        monkeypatch,
    )
    found = discover(["openstack:two"])
    assert found.regions == ("R1", "R2")
    assert {e.region for e in found.endpoints} == {"R1", "R2"}
    assert {s.region for s in found.host("cp1").services} == {"R1", "R2"}
    assert set(found.fact["absent"]) == {"two/R1", "two/R2"}


def test_an_unreachable_endpoint_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    _clouds(
        tmp_path, {"dead": {"auth_type": "none", "baremetal_endpoint_override": dead}}, monkeypatch
    )
    with pytest.raises(
        CloudError, match=f"^dead: the baremetal endpoint {dead} unreachable: connection refused$"
    ):
        discover(["openstack:dead"])
    with pytest.raises(CloudNotFound):
        discover(["openstack:nowhere"])
