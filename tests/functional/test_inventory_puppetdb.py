"""The ``puppetdb`` source against a simulation of PuppetDB's documented v4 query API
(:mod:`testbed.puppetdb_sim`): there is no PuppetDB here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ephyra.errors import CloudError, UsageError
from ephyra.inventory import puppetdb
from ephyra.inventory.source import discover
from testbed.ironic import free_port
from testbed.puppetdb_sim import PuppetDBSim

HOSTS = {
    "ctl-1.example.com": {
        "classes": ["Role::Controller", "Profile::Nova::Api", "Nova::Conductor", "Keystone"],
        "facts": {
            "os": {"name": "Debian", "release": {"full": "12.5", "major": "12"}},
            "kernel": "Linux",
            "kernelrelease": "6.1.0-18-amd64",
            "networking": {
                "fqdn": "ctl-1.example.com",
                "ip": "10.0.0.11",
                "interfaces": {"eth0": {"mac": "52:54:00:00:00:01"}},
            },
            "uptime_seconds": 1234,
            "rabbit_password": "never shown",
        },
    },
    "cmp-1.example.com": {
        "classes": ["Role::Compute_node", "Nova::Compute", "Neutron::Agents::Ml2::Ovs"],
        "facts": {"kernel": "Linux", "virtual": "physical"},
    },
    "cmp-2.example.com": {
        "classes": ["Tripleo::Profile::Base::Nova::Compute", "Gpu::Drivers"],
        "facts": {"kernel": "Linux"},
    },
    "net-1.example.com": {
        "classes": ["Profile::Neutron::Agents::L3", "Neutron::Agents::Dhcp"],
        "facts": {"kernel": "Linux"},
    },
    "stor-1.example.com": {"classes": ["Cinder::Volume"], "facts": {}},
    "db-1.example.com": {"classes": ["Profile::Mysql"], "facts": {"kernel": "Linux"}},
    "gone.example.com": {"classes": ["Role::Compute"], "facts": {"kernel": "Linux"}},
}


@pytest.fixture
def sim() -> Iterator[PuppetDBSim]:
    with PuppetDBSim.from_hosts(HOSTS, deactivated=["gone.example.com"]) as served:
        yield served


def test_nodes_classes_and_facts(sim: PuppetDBSim) -> None:
    found = discover([f"puppetdb:{sim.url}"])
    assert [h.name for h in found.hosts] == [
        "cmp-1.example.com",
        "cmp-2.example.com",
        "ctl-1.example.com",
        "db-1.example.com",
        "net-1.example.com",
        "stor-1.example.com",
    ]  # the deactivated node is not there
    ctl = found.host("ctl-1.example.com")
    assert ctl.roles == {"controller"}
    assert {(s.name, s.project) for s in ctl.services} == {
        ("nova-api", "compute"),
        ("nova-conductor", "compute"),
        ("keystone", "identity"),
    }
    assert ctl.fact["os"] == {"name": "Debian", "release": {"full": "12.5", "major": "12"}}
    assert ctl.fact["kernelrelease"] == "6.1.0-18-amd64"
    assert ctl.fact["networking"] == {"fqdn": "ctl-1.example.com", "ip": "10.0.0.11"}
    assert "uptime_seconds" not in ctl.fact  # not asked for
    assert "rabbit_password" not in ctl.fact
    assert ctl.fact["puppet_environment"] == "production"
    assert ctl.fact["puppet_certname"] == "ctl-1.example.com"
    assert found.host("cmp-1.example.com").roles == {"compute"}
    cmp2 = found.host("cmp-2.example.com")
    assert cmp2.roles == {"compute"} and [s.name for s in cmp2.services] == ["nova-compute"]
    net = found.host("net-1.example.com")
    assert net.roles == {"network"}
    assert {s.name for s in net.services} == {"neutron-l3-agent", "neutron-dhcp-agent"}
    assert found.host("stor-1.example.com").roles == {"storage"}
    assert found.host("db-1.example.com").roles == frozenset()
    assert found.sources == (f"puppetdb:{sim.url}",)


def test_the_queries_sent_and_paging(sim: PuppetDBSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(puppetdb, "PAGE", 2)
    found = discover([f"puppetdb:{sim.url}?facts=kernel,virtual"])
    assert len(found.hosts) == 6
    assert found.host("cmp-1.example.com").fact["virtual"] == "physical"
    assert "os" not in found.host("ctl-1.example.com").fact
    paths = [path for path, _ in sim.requests]
    assert paths.count("/pdb/query/v4/nodes") == 4  # 6 nodes, 2 a page, and an empty one
    assert paths.count("/pdb/query/v4/resources") > 3
    resources = next(p for path, p in sim.requests if path.endswith("/resources"))
    assert json.loads(resources["query"]) == [
        "extract",
        ["certname", "title"],
        ["=", "type", "Class"],
    ]
    facts = next(p for path, p in sim.requests if path.endswith("/facts"))
    assert json.loads(facts["query"]) == ["in", "name", ["array", ["kernel", "virtual"]]]
    assert [int(p["offset"]) for path, p in sim.requests if path.endswith("/nodes")] == [
        0,
        2,
        4,
        6,
    ]


def test_short_names_and_an_operator_mapping(sim: PuppetDBSim, tmp_path: Path) -> None:
    roles = tmp_path / "roles.yaml"
    roles.write_text("Gpu::*: gpu\nProfile::Mysql: [database]\nRole::Controller: null\n")
    found = discover([f"puppetdb:{sim.url}?short=true&roles={roles}"])
    assert found.host("cmp-2").roles == {"compute", "gpu"}
    assert found.host("db-1").roles == {"database"}
    assert found.host("ctl-1").roles == {"controller"}  # still, from its Nova services
    assert found.host("ctl-1").fact["puppet_certname"] == "ctl-1.example.com"


def test_the_simulation_refuses_what_puppetdb_refuses(sim: PuppetDBSim) -> None:
    base = f"{sim.url}/pdb/query/v4"
    bad = requests.get(f"{base}/nodes", params={"query": '["=", "colour", "red"]'}, timeout=5)
    assert bad.status_code == 400 and "is not a queryable object for nodes" in bad.text
    assert requests.get(f"{base}/nodes", params={"query": "[="}, timeout=5).status_code == 400
    typed = requests.get(f"{base}/resources/Class", params={"limit": 1}, timeout=5)
    assert typed.status_code == 200 and typed.json()[0]["type"] == "Class"
    total = requests.get(f"{base}/facts", params={"include_total": "true", "limit": 1}, timeout=5)
    assert int(total.headers["X-Records"]) > 1 and len(total.json()) == 1
    posted = requests.post(f"{base}/nodes", json={"query": ["~", "certname", "^cmp-"]}, timeout=5)
    assert sorted(n["certname"] for n in posted.json()) == [
        "cmp-1.example.com",
        "cmp-2.example.com",
    ]


def test_errors_name_puppetdb(sim: PuppetDBSim, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = r"^PuppetDB http://127\.0\.0\.1:\d+: unreachable: connection refused$"
    with pytest.raises(CloudError, match=refused):
        discover([f"puppetdb:http://127.0.0.1:{free_port()}?timeout=2"])
    monkeypatch.setattr(puppetdb, "FACTS", ("kernel",))
    monkeypatch.setattr(puppetdb, "API", "/pdb/query/v5")
    with pytest.raises(CloudError, match=r"/pdb/query/v5/nodes answered HTTP 404"):
        discover([f"puppetdb:{sim.url}"])
    with pytest.raises(UsageError, match="expected PuppetDB's URL"):
        discover(["puppetdb:puppetdb.example.com"])
    with pytest.raises(UsageError, match="give both cert= and key="):
        discover([f"puppetdb:{sim.url}?cert=/c.pem"])
