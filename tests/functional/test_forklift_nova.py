"""The forklift where Nova owns the nodes, against the session's two clouds (Nova on
Ironic in each, Keystone auth on every service): ten nodes, each with a server, a trait, a
lessee, a RAID configuration, BIOS settings, a bond of two ports, a volume connector and a
volume target, move from a to b and back. Each node's server is deleted in a, the node
moves to b, and a server of the same name, flavor, image and metadata boots on it there;
every node field is as it was both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed import baremetal
from testbed.tenantclouds import TwoClouds
from tests.functional import nova_nodes
from tests.functional.ephyra_cli import Ephyra
from tests.functional.nova_nodes import Planes, assert_home, node_views, servers_on

pytestmark = pytest.mark.functional

NODES = 10


def test_ten_nodes_move_with_their_servers_to_b_and_back(
    bare_two_clouds: TwoClouds, tmp_path: Path
) -> None:
    two_clouds = bare_two_clouds
    planes = Planes(two_clouds)
    a = planes.connect("a")
    nodes = nova_nodes.make(two_clouds, NODES, carried=True)
    views, before = node_views(a, nodes), servers_on(a, nodes)
    assert [s["status"] for s in before.values()] == ["ACTIVE"] * NODES
    assert all(v["targets"] and len(v["ports"]) == 2 for v in views.values())
    assert all(v["bios"] == baremetal.BIOS for v in views.values())
    carried = {(v["lessee"], json.dumps(v["raid"])) for v in views.values()}
    assert carried == {(baremetal.LESSEE, json.dumps(baremetal.RAID))}

    ephyra = Ephyra(two_clouds.clouds_yaml, tmp_path / "state")
    planned = ephyra("--format", "json", "forklift", "plan", "--from", "a", "--to", "b", "--nova")
    assert planned.code == 0, planned.err
    plan = json.loads(planned.out)
    shown = {n["uuid"]: n["server"] for batch in plan["batches"] for n in batch}
    assert {u: (s["name"], s["flavor"], s["image_name"]) for u, s in shown.items()} == {
        node: (before[node]["name"], baremetal.FLAVOR, baremetal.IMAGE) for node in nodes
    }
    assert "delete-server" in plan["steps"] and "boot-server" in plan["steps"]

    moved = ephyra("forklift", "start", "--from", "a", "--to", "b", "--nova", "--concurrency", "10")
    assert moved.code == 0, moved.err + moved.out
    assert_home(planes, views, before, "b")  # same node fields, same servers, on b only

    back = ephyra("forklift", "rollback")
    assert back.code == 0, back.err + back.out
    assert_home(planes, views, before, "a")
