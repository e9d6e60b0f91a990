"""The testbed's clouds whose bare-metal nodes Nova owns: each cloud's Ironic validates
Keystone tokens, its nodes become Nova's hypervisors with a provider of their resource
class and their traits, a server boots on a chosen node and its deletion gives the node
back; the two clouds' Ironics are apart."""

from __future__ import annotations

import pytest
import requests

from testbed import baremetal
from testbed.tenantclouds import TwoClouds

pytestmark = pytest.mark.functional


def test_a_server_boots_on_the_node_chosen_and_gives_it_back(
    bare_two_clouds: TwoClouds,
) -> None:
    two_clouds = bare_two_clouds
    a, b = two_clouds.a, two_clouds.b
    assert a.ironic is not None and b.ironic is not None and a.nova is not None
    assert requests.get(f"{a.ironic.url}/v1/nodes", timeout=10).status_code == 401

    conn = a.nova.connect()
    nodes = baremetal.enroll(conn, ["bm-a-0", "bm-a-1"])
    conn.baremetal.add_node_trait(nodes[1], "CUSTOM_GPU")
    baremetal.wait_offered(conn, nodes)
    assert b.nova is not None and list(b.nova.connect().baremetal.nodes()) == []  # apart

    (provider,) = [p for p in conn.placement.resource_providers() if p.name == nodes[1]]
    traits = conn.placement.get(f"/resource_providers/{provider.id}/traits", microversion="1.6")
    assert "CUSTOM_GPU" in traits.json()["traits"]  # Nova copies the node's traits

    flavor = baremetal.flavor(conn, "bm.small")
    image = baremetal.image(conn)
    server = baremetal.boot_on(
        conn, "ironic-a", nodes[1], "web-0", flavor, image, metadata={"role": "web"}
    )
    shown = conn.compute.get_server(server)
    assert (shown.hypervisor_hostname, shown.metadata) == (nodes[1], {"role": "web"})
    node = conn.baremetal.get_node(nodes[1])
    assert (node.provision_state, node.instance_id) == ("active", server)
    assert conn.baremetal.get_node(nodes[0]).instance_id is None

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(conn.compute.get_server(server), interval=1, wait=120)
    node = conn.baremetal.get_node(nodes[1])
    assert (node.provision_state, node.instance_id) == ("available", None)
    baremetal.wait_offered(conn, nodes)  # free again

    two_clouds.clean()
    assert list(conn.baremetal.nodes()) == []
