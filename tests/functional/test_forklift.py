"""The forklift against two real Ironic control planes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.ironic import Testbed
from testbed.seed import seed_nodes, snapshot, write_credentials
from tests.functional.ephyra_cli import Ephyra
from tests.functional.invariants import assert_exactly_one, assert_home, stored_secret

pytestmark = pytest.mark.functional


@pytest.fixture
def ephyra(clean_testbed: Testbed, tmp_path: Path) -> Ephyra:
    return Ephyra(clean_testbed.clouds_yaml, tmp_path / "state")


def seed(
    tb: Testbed, tmp_path: Path, count: int
) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    specs = seed_nodes(tb.connect("cp1"), count)
    creds = write_credentials(tmp_path / "credentials.yaml", specs)
    return specs, f"file:{creds}", snapshot(tb.connect("cp1"))


def test_twenty_nodes_there_and_back(
    clean_testbed: Testbed, ephyra: Ephyra, tmp_path: Path
) -> None:
    specs, creds, original = seed(clean_testbed, tmp_path, 20)
    metrics = tmp_path / "metrics.prom"
    moved = ephyra(
        "forklift",
        "start",
        "--from",
        "cp1",
        "--to",
        "cp2",
        "--concurrency",
        "4",
        "--credentials",
        creds,
        "--metrics-textfile",
        str(metrics),
    )
    assert moved.code == 0, moved.err
    assert_home(clean_testbed, original, "cp2")
    for spec in specs:  # the BMC password arrived, though every API answer masks it
        password = spec["create"]["driver_info"]["ipmi_password"]
        assert stored_secret(clean_testbed, "cp2", spec["create"]["uuid"]) == password
        assert password not in moved.out + moved.err
    assert 'ephyra_nodes_total{kind="forklift",result="moved"' in metrics.read_text()

    back = ephyra("forklift", "rollback")
    assert back.code == 0, back.err
    assert_home(clean_testbed, original, "cp1")
    journal = ephyra.journal_file.read_bytes()
    for spec in specs:
        assert spec["create"]["driver_info"]["ipmi_password"].encode() not in journal

    status = ephyra("--format", "json", "forklift", "status")
    assert status.code == 0
    data = yaml.safe_load(status.out)
    assert data["state"] == "rolled-back"
    assert {n["rollback"] for n in data["nodes"]} == {"moved"}


def test_plan_is_a_dry_run(clean_testbed: Testbed, ephyra: Ephyra, tmp_path: Path) -> None:
    _, creds, original = seed(clean_testbed, tmp_path, 3)
    plan = ephyra(
        "--format",
        "json",
        "forklift",
        "plan",
        "--from",
        "cp1",
        "--to",
        "cp2",
        "--credentials",
        creds,
        "--concurrency",
        "2",
    )
    assert plan.code == 0, plan.err
    data = yaml.safe_load(plan.out)
    assert [len(b) for b in data["batches"]] == [2, 1]
    assert data["steps"][0] == "record" and data["steps"][-1] == "return"
    table = ephyra("forklift", "plan", "--from", "cp1", "--to", "cp2", "--credentials", creds)
    assert "node-0000" in table.out and "then application health gate" in table.out
    assert_home(clean_testbed, original, "cp1")


def test_masked_secrets_without_a_source_are_refused(
    clean_testbed: Testbed, ephyra: Ephyra, tmp_path: Path
) -> None:
    _, _, original = seed(clean_testbed, tmp_path, 2)
    result = ephyra("forklift", "start", "--from", "cp1", "--to", "cp2", "--yes")
    assert result.code == 2
    assert "masks ipmi_password" in result.err and "node-0001" in result.err
    unmasked = ephyra(
        "forklift", "start", "--from", "cp1", "--to", "cp2", "--credentials", "source"
    )
    assert unmasked.code == 2 and "needs a policy that shows them" in unmasked.err
    assert_home(clean_testbed, original, "cp1")


def test_nodes_that_cannot_move_are_refused_with_every_reason(
    clean_testbed: Testbed, ephyra: Ephyra, tmp_path: Path
) -> None:
    specs, creds, _ = seed(clean_testbed, tmp_path, 3)
    cp1, cp2 = clean_testbed.connect("cp1"), clean_testbed.connect("cp2")
    cp1.baremetal.set_node_maintenance(specs[0]["create"]["uuid"], reason="disk replacement")
    cp1.baremetal.create_node(driver="fake-hardware", name="fresh")  # still 'enroll'
    taken = cp2.baremetal.create_node(driver="fake-hardware", name="squatter")
    mac = specs[1]["ports"][0]["address"]
    cp2.baremetal.create_port(node_id=taken.id, address=mac)
    before = snapshot(cp1)
    result = ephyra("forklift", "start", "--from", "cp1", "--to", "cp2", "--credentials", creds)
    assert result.code == 2
    assert "node-0000: in maintenance ('disk replacement')" in result.err
    assert f"node-0001: MAC {mac} already used in cp2" in result.err
    assert "fresh: is 'enroll'; only active, available, manageable nodes can move" in result.err
    assert "node-0002" not in result.err
    assert snapshot(cp1) == before
    unknown = ephyra("forklift", "plan", "--from", "cp1", "--to", "cp2", "--nodes", "ghost")
    assert unknown.code == 2 and "not enrolled in cp1: ghost" in unknown.err


def test_unknown_and_unreachable_clouds(
    clean_testbed: Testbed, ephyra: Ephyra, tmp_path: Path
) -> None:
    result = ephyra("forklift", "plan", "--from", "cp1", "--to", "nowhere")
    assert result.code == 2 and "cloud 'nowhere' is not in clouds.yaml" in result.err
    clouds = yaml.safe_load(clean_testbed.clouds_yaml.read_text())
    clouds["clouds"]["dead"] = {
        "auth_type": "none",
        "baremetal_endpoint_override": "http://127.0.0.1:9",
    }
    dead_yaml = tmp_path / "clouds.yaml"
    dead_yaml.write_text(yaml.safe_dump(clouds))
    other = Ephyra(dead_yaml, tmp_path / "state2")
    result = other("forklift", "plan", "--from", "cp1", "--to", "dead")
    assert result.code == 1 and result.err == (
        "ephyra: error: dead: cannot list nodes: bare metal (Ironic) at http://127.0.0.1:9: "
        "unreachable, or it serves no API version document\n"
    )
    assert "Traceback" not in result.err


def test_a_node_that_fails_health_is_moved_back(
    clean_testbed: Testbed, ephyra: Ephyra, tmp_path: Path
) -> None:
    specs, creds, original = seed(clean_testbed, tmp_path, 3)
    bad = specs[1]["create"]["uuid"]
    result = ephyra(
        "forklift",
        "start",
        "--from",
        "cp1",
        "--to",
        "cp2",
        "--credentials",
        creds,
        "--workload",
        "command",
        "--workload-opt",
        "node_health=test $EPHYRA_NODE_NAME != node-0001",
        "--health-timeout",
        "1",
        "--max-failures",
        "1",
    )
    assert result.code == 1
    assert "node-0001 failed" in result.err and "reverting" in result.err
    places = assert_exactly_one(clean_testbed, list(original))
    assert places == {u: ("cp1" if u == bad else "cp2") for u in original}
    assert snapshot(clean_testbed.connect("cp1"))[bad] == original[bad]
    status = yaml.safe_load(ephyra("--format", "yaml", "forklift", "status").out)
    assert status["state"] == "failed" and status["counts"] == {"moved": 2, "failed": 1}


def test_secrets_from_a_source_that_shows_them(clean_slow_testbed: Testbed, tmp_path: Path) -> None:
    """``--credentials source``: the control plane holding the node answers unmasked."""
    tb = clean_slow_testbed
    specs = seed_nodes(tb.connect("cp1"), 2)
    original = snapshot(tb.connect("cp1"))
    assert all(v["driver_info"]["ipmi_password"] != "******" for v in original.values())
    ephyra = Ephyra(tb.clouds_yaml, tmp_path / "state")
    moved = ephyra(
        "forklift",
        "start",
        "--from",
        "cp1",
        "--to",
        "cp2",
        "--credentials",
        "source",
        "--concurrency",
        "2",
    )
    assert moved.code == 0, moved.err
    assert_home(tb, original, "cp2")  # passwords included: this API shows them
    back = ephyra("forklift", "rollback")
    assert back.code == 0, back.err
    assert_home(tb, original, "cp1")
    journal = ephyra.journal_file.read_bytes()
    for spec in specs:
        password = spec["create"]["driver_info"]["ipmi_password"]
        assert password.encode() not in journal
        assert password not in moved.out + moved.err + back.out + back.err
