"""The ``static`` source: the saved form round-trips, the short form is read, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ephyra.errors import UsageError
from ephyra.inventory.model import UNKNOWN, UP, Endpoint, Service, inventory, make_host
from ephyra.inventory.source import discover
from ephyra.inventory.static import StaticSource


def _write(path: Path, data: object) -> str:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def test_what_to_dict_gives_reads_back_equal(tmp_path: Path) -> None:
    saved = inventory(
        [
            make_host(
                "compute-1",
                roles=["compute"],
                services=[Service("nova-compute", "compute", "R1", UP, "1.0.0", "openstack:c")],
                facts={"hypervisor_type": "fake", "os": {"name": "Debian", "release": "12"}},
                sources=["openstack:c"],
                servers=3,
            ),
            make_host("node-1", roles=["baremetal"], facts={"maintenance": False}),
        ],
        endpoints=[Endpoint("compute", "public", "R1", "http://nova/v2.1", "2.95")],
        regions=["R1"],
        sources=["openstack:c"],
        facts={"absent": {"c/R1": {"network": "no endpoint in the catalog"}}},
    )
    path = _write(tmp_path / "inv.yaml", saved.to_dict())
    assert discover([f"static:{path}"]) == saved


def test_the_short_form(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "inv.yaml",
        """
hosts:
  ctl-1: {roles: [controller], services: [nova-api, nova-conductor, keystone]}
  cmp-1:
    services: [nova-compute, {name: neutron-openvswitch-agent, status: up, version: "24.0"}]
    facts: {rack: r1}
    servers: 4
  stor-1: {services: [cinder-volume]}
  spare:
roles:
  compute: [cmp-2, cmp-3]
""",
    )
    found = StaticSource.from_argument(path, None).discover()
    assert [h.name for h in found.hosts] == ["cmp-1", "cmp-2", "cmp-3", "ctl-1", "spare", "stor-1"]
    ctl = found.host("ctl-1")
    assert ctl.roles == {"controller"}
    assert {(s.name, s.project, s.status) for s in ctl.services} == {
        ("nova-api", "compute", UNKNOWN),
        ("nova-conductor", "compute", UNKNOWN),
        ("keystone", "identity", UNKNOWN),
    }
    cmp1 = found.host("cmp-1")
    assert cmp1.roles == {"compute"}  # from nova-compute
    assert cmp1.fact == {"rack": "r1"} and cmp1.servers == 4
    ovs = next(s for s in cmp1.services if s.name == "neutron-openvswitch-agent")
    assert (ovs.project, ovs.status, ovs.version) == ("network", UP, "24.0")
    assert found.host("stor-1").roles == {"storage"}
    assert found.host("cmp-3").roles == {"compute"}
    assert found.host("spare").roles == frozenset()
    assert found.sources == (f"static:{path}",)
    assert cmp1.sources == {f"static:{path}"}


def test_the_list_form_with_partial_services(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "inv.yaml",
        {
            "hosts": [
                {
                    "name": "controller",
                    "roles": ["controller"],
                    "services": [{"name": "nova-conductor", "project": "compute"}],
                }
            ]
        },
    )
    (host,) = discover([f"static:{path}"]).hosts
    assert host.name == "controller"
    assert host.services[0].name == "nova-conductor"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hosts: [", "not YAML"),
        ("- a\n- b\n", "top level: expected a mapping, got a list"),
        ("hostz: {}\n", "hostz: unknown key"),
        ("hosts: {cmp-1: {role: [compute]}}\n", "hosts.cmp-1.role: unknown key"),
        ("hosts: {cmp-1: {servers: many}}\n", "hosts.cmp-1.servers: expected a count"),
        ("hosts: {cmp-1: {services: nova-compute}}\n", "hosts.cmp-1.services: expected a list"),
        (
            "hosts: {cmp-1: {services: [{name: nova-compute, status: sleepy}]}}\n",
            "hosts.cmp-1.services[0].status: 'sleepy' is not one of",
        ),
        (
            "hosts: {cmp-1: {services: [{project: compute}]}}\n",
            "hosts.cmp-1.services[0].name: expected a string",
        ),
        ("hosts: [{roles: [compute]}]\n", "hosts[0].name: expected a string"),
        ("hosts: {cmp-1: {roles: {a: b}}}\n", "hosts.cmp-1.roles: expected a list of strings"),
        ("endpoints: [{service: compute}]\n", "endpoints[0].url: expected a string"),
    ],
)
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = _write(tmp_path / "bad.yaml", content)
    with pytest.raises(UsageError) as caught:
        discover([f"static:{path}"])
    assert str(caught.value).startswith(f"static inventory {path}: ")
    assert message in str(caught.value)


def test_a_missing_file_or_argument_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read it"):
        discover([f"static:{tmp_path / 'none.yaml'}"])
    with pytest.raises(UsageError, match="static:FILE"):
        discover(["static"])
