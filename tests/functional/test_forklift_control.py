"""Controlling a forklift run from other processes: pause, resume, abort, the lock, and a
control plane that dies mid-run."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from testbed.ironic import Testbed, free_port
from testbed.seed import seed_nodes, snapshot, write_credentials
from tests.functional.ephyra_cli import Ephyra
from tests.functional.holds import Gate, for_node
from tests.functional.invariants import assert_exactly_one, assert_home, where

pytestmark = pytest.mark.functional


def setup(tb: Testbed, tmp_path: Path, count: int) -> tuple[Ephyra, list[str], dict[str, Any]]:
    specs = seed_nodes(tb.connect("cp1"), count)
    creds = write_credentials(tmp_path / "c.yaml", specs)
    start = ["forklift", "start", "--from", "cp1", "--to", "cp2", "--credentials", f"file:{creds}"]
    return Ephyra(tb.clouds_yaml, tmp_path / "state"), start, snapshot(tb.connect("cp1"))


def status(ephyra: Ephyra) -> dict[str, Any]:
    result = ephyra("--format", "yaml", "forklift", "status")
    assert result.code == 0, result.err
    data: dict[str, Any] = yaml.safe_load(result.out)
    return data


def test_pause_then_resume_in_a_new_process(clean_testbed: Testbed, tmp_path: Path) -> None:
    ephyra, start, original = setup(clean_testbed, tmp_path, 6)
    port = free_port()
    gate = Gate(tmp_path / "node-0002-ready")  # node-0002's prepare waits for the pause
    prepare = ["--workload", "command", "--workload-opt"]
    prepare.append(f"prepare={for_node('node-0002', gate.wait_command())}")
    run = ephyra.background(*start, *prepare, "--metrics-port", str(port))
    run.wait_for(lambda line: "node-0002: prepare started" in line)
    scraped = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert re.search(r'ephyra_run_state\{.*state="running"\} 1\.0', scraped)
    assert re.search(r'ephyra_nodes_total\{.*result="moved".*\} 2\.0', scraped)
    paused = ephyra("forklift", "pause")
    assert paused.code == 0 and "pause of run" in paused.out
    run.wait_for(lambda line: "pause requested" in line)
    gate.open()  # node-0002 is prepared; the pause stops it before it leaves cp1
    result = run.finish()
    assert result.code == 130, result.err
    state = status(ephyra)
    assert state["state"] == "paused"
    assert state["counts"].get("moved", 0) == 2
    places = assert_exactly_one(clean_testbed, list(original))
    moved = {u for u, node in original.items() if node["name"] in ("node-0000", "node-0001")}
    assert {u for u, p in places.items() if p == "cp2"} == moved
    resumed = ephyra("forklift", "resume")
    assert resumed.code == 0, resumed.err
    assert "2/6 done" in resumed.err  # it carried on, not over
    assert_home(clean_testbed, original, "cp2")
    assert status(ephyra)["state"] == "succeeded"


def test_abort_returns_the_node_in_flight(clean_testbed: Testbed, tmp_path: Path) -> None:
    ephyra, start, original = setup(clean_testbed, tmp_path, 3)
    healthy = Gate(tmp_path / "node-0001-healthy")
    # node-0001 stays in flight (its move's last step waits for it to be healthy) until
    # the gate opens, which the test does only once the abort has stopped the move
    health = for_node("node-0001", f"[ -e {healthy.path} ]")
    workload = ["--workload", "command", "--workload-opt", f"node_health={health}"]
    run = ephyra.background(*start, *workload, "--health-timeout", "300")
    run.wait_for(lambda line: "node-0001: return started" in line)
    held = {n["name"]: n["forward"] for n in status(ephyra)["nodes"]}
    assert held == {"node-0000": "moved", "node-0001": "moving", "node-0002": "pending"}
    uuid_1 = next(u for u, node in original.items() if node["name"] == "node-0001")
    assert where(clean_testbed, [uuid_1]) == {uuid_1: ["cp2"]}  # gone from cp1, deployed

    aborted = ephyra("forklift", "abort")
    assert aborted.code == 0 and "abort of run" in aborted.out
    run.wait_for(lambda line: "abort: returning node-0001 to cp1" in line)
    healthy.open()  # the abort landed while node-0001 was in flight; its return may finish
    result = run.finish()
    assert result.code == 130, result.err
    lines = result.err.splitlines()
    asked = next(i for i, line in enumerate(lines) if "abort requested" in line)
    assert not any("node-0001: return done" in line for line in lines[:asked])
    state = status(ephyra)
    assert state["state"] == "aborted"
    outcomes = {n["name"]: n["forward"] for n in state["nodes"]}
    assert outcomes == {"node-0000": "moved", "node-0001": "returned", "node-0002": "pending"}
    places = assert_exactly_one(clean_testbed, list(original))
    now = snapshot(clean_testbed.connect("cp1"))
    for uuid, plane in places.items():  # only what was done stays done
        assert plane == ("cp2" if original[uuid]["name"] == "node-0000" else "cp1")
        if plane == "cp1":
            assert now[uuid] == original[uuid]
    assert ephyra("forklift", "resume").code == 2  # an aborted run does not resume
    back = ephyra("forklift", "rollback")
    assert back.code == 0, back.err
    assert_home(clean_testbed, original, "cp1")
    shown = ephyra("forklift", "status")  # where the nodes are now, not where they went
    assert shown.out.splitlines()[0] == (
        f"run {state['id']}: rolled back: 1 node back in cp1 (moved cp1 -> cp2, then back), "
        "1 node returned to cp1 by the abort, 1 node never moved"
    )


def test_one_forklift_per_pair_of_control_planes(clean_testbed: Testbed, tmp_path: Path) -> None:
    ephyra, start, original = setup(clean_testbed, tmp_path, 3)
    gate = Gate(tmp_path / "go")  # the first node's prepare holds the run (and its lock)
    held = ["--workload", "command", "--workload-opt", f"prepare={gate.wait_command()}"]
    run = ephyra.background(*start, *held)
    run.wait_for(lambda line: "prepare started" in line)
    run_id = status(ephyra)["id"]
    for args in (
        start,
        ["forklift", "start", "--from", "cp2", "--to", "cp1"],
        ["forklift", "rollback"],
    ):
        second = ephyra(*args)
        assert second.code == 3, second.err
        assert "forklift cp1<->cp2 is locked" in second.err and run_id in second.err
    assert run.proc.poll() is None  # still held: every refusal came from the lock
    gate.open()
    assert run.finish().code == 0
    assert_home(clean_testbed, original, "cp2")


def test_target_dying_mid_run_pauses_with_every_node_placed(
    clean_testbed: Testbed, tmp_path: Path
) -> None:
    ephyra, start, original = setup(clean_testbed, tmp_path, 4)
    run = ephyra.background(*start)
    run.wait_for(lambda line: "node-0001: enroll-target done" in line)
    clean_testbed["cp2"].kill()
    result = run.finish()
    assert result.code == 1
    assert "cp2" in result.err and "unreachable" in result.err
    state = status(ephyra)
    assert state["state"] == "paused" and "unreachable" in state["reason"]
    cp1_nodes = {n.id for n in clean_testbed.connect("cp1").baremetal.nodes()}
    moved = {n["uuid"] for n in state["nodes"] if n["forward"] == "moved"}
    assert cp1_nodes | moved == set(original)  # nothing lost while cp2 is down
    clean_testbed["cp2"].start()
    resumed = ephyra("forklift", "resume")
    assert resumed.code == 0, resumed.err
    assert_home(clean_testbed, original, "cp2")


def test_ctrl_c_pauses_and_resume_finishes(clean_testbed: Testbed, tmp_path: Path) -> None:
    ephyra, start, original = setup(clean_testbed, tmp_path, 4)
    run = ephyra.background(*start)
    run.wait_for(lambda line: "[1/4]" in line)
    run.proc.send_signal(signal.SIGINT)
    result = run.finish()
    assert result.code == 130, result.err
    assert "SIGINT: pausing at the next step" in result.err
    assert status(ephyra)["state"] == "paused"
    assert_exactly_one(clean_testbed, list(original))
    resumed = ephyra("forklift", "resume")
    assert resumed.code == 0, resumed.err
    assert_home(clean_testbed, original, "cp2")


def test_health_gate_pauses_between_batches(clean_testbed: Testbed, tmp_path: Path) -> None:
    ephyra, start, original = setup(clean_testbed, tmp_path, 3)
    healthy = tmp_path / "healthy"
    gate = [
        "--workload",
        "command",
        "--workload-opt",
        f"app_health=test -f {healthy}",
        "--gate-timeout",
        "1",
        "--batch-size",
        "2",
    ]
    result = ephyra(*start, *gate)
    assert result.code == 1
    assert "application health gate failed" in result.err
    state = status(ephyra)
    assert state["state"] == "paused" and "health gate" in state["reason"]
    assert state["counts"] == {"moved": 2, "pending": 1}  # the first batch, no further
    healthy.touch()
    resumed = ephyra("forklift", "resume")
    assert resumed.code == 0, resumed.err
    assert_home(clean_testbed, original, "cp2")
    assert status(ephyra)["reason"] == ""
