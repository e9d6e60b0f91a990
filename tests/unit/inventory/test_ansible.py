"""The ``ansible`` source on real inventory files, read by ansible-core itself."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ephyra.errors import UsageError
from ephyra.inventory.source import discover

KOLLA_INI = """\
# A Kolla-Ansible multinode inventory, cut down: host groups, then service groups.
[control]
ctl-[1:2] ansible_host=10.0.0.1 database_password=s3cret

[network]
net-1

[compute]
cmp-[1:3]

[storage]
stor-1

[monitoring]
ctl-1

[deployment]
localhost ansible_connection=local

[baremetal:children]
control
network
compute
storage

[mariadb:children]
control

[rabbitmq:children]
control

[nova:children]
control

[nova-api:children]
nova

[nova-conductor:children]
nova

[nova-scheduler:children]
nova

[nova-compute:children]
compute

[neutron:children]
network

[neutron-l3-agent:children]
neutron

[neutron-dhcp-agent:children]
neutron

[neutron-openvswitch-agent:children]
network
compute

[cinder-volume:children]
storage

[gpu]
cmp-3

[all:vars]
openstack_release=2024.1
kolla_internal_vip_address=10.0.0.250
"""

OSA_YAML = """\
# OpenStack-Ansible style, in YAML, groups nested three deep.
all:
  vars:
    deployment: osa
  children:
    shared-infra_hosts:
      hosts:
        infra1: {ansible_host: 172.29.236.11}
        infra2: {ansible_host: 172.29.236.12}
    compute_hosts:
      hosts:
        compute1:
        compute2:
          ephyra_roles: [compute, gpu]
          service_token: abc
    network_hosts:
      children:
        network-gateway_hosts:
          hosts:
            net1:
    storage_hosts:
      hosts:
        storage1:
    nova_compute:
      children:
        compute_hosts:
    cinder_volume:
      children:
        storage_hosts:
    rack_a:
      hosts:
        compute1:
        infra1:
      vars:
        rack: a
"""


def _inventory(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_kolla_ini_inventory(tmp_path: Path) -> None:
    path = _inventory(tmp_path, "multinode", KOLLA_INI)
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "cmp-1.yml").write_text("rack: r7\nipmi_password: x\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "compute.yml").write_text("rack: r1\nnova_api_key: k\n")

    found = discover([f"ansible:{path}"])

    names = [h.name for h in found.hosts]
    assert names == ["cmp-1", "cmp-2", "cmp-3", "ctl-1", "ctl-2", "localhost", "net-1", "stor-1"]
    ctl = found.host("ctl-1")
    assert ctl.roles == {"controller", "monitoring"}  # not mariadb, rabbitmq, nova, baremetal
    assert {s.name for s in ctl.services} == {"nova-api", "nova-conductor", "nova-scheduler"}
    assert {s.project for s in ctl.services} == {"compute"}
    cmp3 = found.host("cmp-3")
    assert cmp3.roles == {"compute", "gpu"}
    assert {s.name for s in cmp3.services} == {"nova-compute", "neutron-openvswitch-agent"}
    net = found.host("net-1")
    assert net.roles == {"network"}
    assert {s.name for s in net.services} == {
        "neutron-l3-agent",
        "neutron-dhcp-agent",
        "neutron-openvswitch-agent",
    }
    assert found.host("stor-1").roles == {"storage"}
    assert found.host("localhost").roles == frozenset()  # deployment gives no role
    # variables: host over group over all; secrets and Ansible's own variables left out
    assert found.host("cmp-1").fact["rack"] == "r7"
    assert found.host("cmp-2").fact["rack"] == "r1"
    assert found.host("cmp-2").fact["openstack_release"] == 2024.1
    assert ctl.fact["ansible_host"] == "10.0.0.1"
    for host in found.hosts:
        assert not {"database_password", "ipmi_password", "nova_api_key"} & set(host.fact)
        assert "inventory_hostname" not in host.fact and "groups" not in host.fact
    assert "nova-compute" in found.host("cmp-1").fact["ansible_groups"]
    assert found.sources == (f"ansible:{path}",)


def test_an_osa_yaml_inventory_with_nested_groups(tmp_path: Path) -> None:
    path = _inventory(tmp_path, "inventory.yml", OSA_YAML)
    found = discover([f"ansible:{path}"])
    assert found.host("infra1").roles == {"controller", "rack-a"}
    assert found.host("infra1").fact["rack"] == "a"
    assert found.host("compute1").roles == {"compute", "rack-a"}
    assert [s.name for s in found.host("compute1").services] == ["nova-compute"]
    compute2 = found.host("compute2")
    assert compute2.roles == {"compute", "gpu"}  # exactly its ephyra_roles
    assert "service_token" not in compute2.fact and "ephyra_roles" not in compute2.fact
    assert found.host("net1").roles == {"network"}  # a parent's parent: network_hosts
    assert found.host("storage1").roles == {"storage"}
    assert [s.name for s in found.host("storage1").services] == ["cinder-volume"]
    assert found.host("compute1").fact["deployment"] == "osa"


def test_an_operator_mapping_of_groups(tmp_path: Path) -> None:
    path = _inventory(
        tmp_path,
        "hosts.ini",
        """
        [hv]
        a1
        [edge_routers]
        r1
        [monitoring]
        a1
        [lab]
        a1
        """,
    )
    roles = tmp_path / "roles.yaml"
    roles.write_text("hv: compute\nedge_*: [network, edge]\nmonitoring: null\n")
    found = discover([f"ansible:{path}?roles={roles}"])
    assert found.host("a1").roles == {"compute", "lab"}
    assert found.host("r1").roles == {"network", "edge"}


def test_ephyra_roles_as_a_group_variable(tmp_path: Path) -> None:
    path = _inventory(
        tmp_path,
        "hosts.yml",
        """
        all:
          children:
            hypervisors:
              vars: {ephyra_roles: "compute, gpu", ephyra_services: [nova-compute]}
              hosts: {h1: {}, h2: {}}
        """,
    )
    found = discover([f"ansible:{path}"])
    for name in ("h1", "h2"):
        host = found.host(name)
        assert host.roles == {"compute", "gpu"}
        assert [(s.name, s.project) for s in host.services] == [("nova-compute", "compute")]


def test_a_vault_encrypted_variable_is_left_out(tmp_path: Path) -> None:
    path = _inventory(
        tmp_path,
        "hosts.yml",
        """
        all:
          hosts:
            h1:
              rack: r1
              opaque: !vault |
                $ANSIBLE_VAULT;1.1;AES256
                6331326564313563316362366165366138336363363966383064373563366165
        """,
    )
    host = discover([f"ansible:{path}"]).host("h1")
    assert host.fact["rack"] == "r1"
    assert "opaque" not in host.fact


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[control\nctl-1\n", "ansible-core cannot read it"),
        ("all:\n  children:\n    x: [1, 2]\n", "ansible-core cannot read it"),
        ("all:\n  hosts:\n    h1: {ephyra_roles: {a: 1}}\n", "ephyra_roles: expected a list"),
    ],
)
def test_bad_inventories_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = _inventory(tmp_path, "bad.yml" if content.startswith("all") else "bad.ini", content)
    with pytest.raises(UsageError, match=message) as caught:
        discover([f"ansible:{path}"])
    assert str(path) in str(caught.value)


def test_missing_files_and_options_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        discover([f"ansible:{tmp_path / 'none.ini'}"])
    hosts = _inventory(tmp_path, "hosts.ini", "[a]\nh1\n")
    with pytest.raises(UsageError, match="unknown option 'role'"):
        discover([f"ansible:{hosts}?role=x.yaml"])
    with pytest.raises(UsageError, match=r"role mapping .*cannot read it"):
        discover([f"ansible:{hosts}?roles={tmp_path / 'none.yaml'}"])
