"""The forklift where Nova owns the nodes, against the session's two clouds (Nova on
Ironic in each, Keystone auth everywhere): each node's server is deleted in a, the node
moves to b, and a server of the same name, flavor, image and metadata boots on it there;
the rollback brings every node and server back to a."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testbed import baremetal
from testbed.tenantclouds import TwoClouds
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional

NODES = 2


def servers_on(conn: Any, nodes: list[str]) -> dict[str, dict[str, Any]]:
    """What a user checks of each node's server: name, flavor, image, metadata, status."""
    found = {}
    for server in conn.compute.servers(all_projects=True, details=True):
        if server.hypervisor_hostname in nodes:
            found[server.hypervisor_hostname] = {
                "name": server.name,
                "flavor": server.flavor.get("original_name"),
                "image": conn.image.get_image(server.image.id).name,
                "metadata": dict(server.metadata),
                "status": server.status,
            }
    return found


def test_servers_move_with_their_nodes_to_b_and_back(two_clouds: TwoClouds, tmp_path: Path) -> None:
    two_clouds.clean()
    a, b = two_clouds.connect("a"), two_clouds.connect("b")
    nodes = baremetal.enroll(a, [f"bm-{i}" for i in range(NODES)])
    baremetal.wait_offered(a, nodes)
    for conn in (a, b):  # what the servers need, on both sides
        baremetal.flavor(conn, "bm.small")
        baremetal.image(conn)
    flavor, image = baremetal.flavor(a, "bm.small"), baremetal.image(a)
    for index, node in enumerate(nodes):
        baremetal.boot_on(
            a, "ironic-a", node, f"web-{index}", flavor, image, metadata={"role": "web"}
        )
    before = servers_on(a, nodes)
    assert [s["status"] for s in before.values()] == ["ACTIVE"] * NODES

    ephyra = Ephyra(two_clouds.clouds_yaml, tmp_path / "state")
    planned = ephyra("--format", "json", "forklift", "plan", "--from", "a", "--to", "b", "--nova")
    assert planned.code == 0, planned.err
    plan = json.loads(planned.out)
    shown = {n["uuid"]: n["server"] for batch in plan["batches"] for n in batch}
    assert {u: (s["name"], s["flavor"], s["image_name"]) for u, s in shown.items()} == {
        node: (before[node]["name"], "bm.small", "baremetal-image") for node in nodes
    }
    assert "delete-server" in plan["steps"] and "boot-server" in plan["steps"]

    moved = ephyra("forklift", "start", "--from", "a", "--to", "b", "--nova", "--concurrency", "2")
    assert moved.code == 0, moved.err + moved.out
    assert list(a.baremetal.nodes()) == [] and servers_on(a, nodes) == {}
    assert servers_on(b, nodes) == before  # same node, name, flavor, image, metadata
    for node in nodes:
        assert b.baremetal.get_node(node).provision_state == "active"

    back = ephyra("forklift", "rollback")
    assert back.code == 0, back.err + back.out
    assert list(b.baremetal.nodes()) == [] and servers_on(b, nodes) == {}
    assert servers_on(a, nodes) == before
