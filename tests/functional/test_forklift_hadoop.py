"""The forklift with the ``hadoop`` workload: HDFS vetoes a move while blocks are
under-replicated, and the nodes go once it is healthy. Hadoop is the simulator of its
documented NameNode and ResourceManager endpoints (no Hadoop runs here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from testbed.hadoop_sim import HadoopSimulator, refresh_command
from testbed.ironic import Testbed
from testbed.seed import seed_nodes, snapshot, write_credentials
from tests.functional.ephyra_cli import Ephyra
from tests.functional.invariants import assert_home

pytestmark = pytest.mark.functional
HOSTS = ["node-0000", "node-0001", "node-0002"]


@pytest.fixture
def hadoop(tmp_path: Path) -> Iterator[HadoopSimulator]:
    hosts_file, exclude_file = tmp_path / "dfs.hosts.json", tmp_path / "yarn.exclude"
    hosts_file.write_text(json.dumps([{"hostName": h} for h in HOSTS]))
    exclude_file.write_text("")
    with HadoopSimulator(HOSTS, hosts_file, exclude_file, delay=0.1) as sim:
        yield sim


def workload_options(sim: HadoopSimulator, tmp_path: Path) -> list[str]:
    refresh = refresh_command(sim.url)
    options = {
        "namenode_url": sim.url,
        "resourcemanager_url": sim.url,
        "hosts_file": str(tmp_path / "dfs.hosts.json"),
        "yarn_exclude_file": str(tmp_path / "yarn.exclude"),
        "hdfs_refresh_command": f"{refresh} --service hdfs",
        "yarn_refresh_command": f"{refresh} --service yarn -g {{timeout}}",
        "poll_interval": "0.05",
        "wait_timeout": "30",
    }
    return [arg for k, v in options.items() for arg in ("--workload-opt", f"{k}={v}")]


def test_hdfs_vetoes_until_blocks_are_replicated(
    clean_testbed: Testbed, hadoop: HadoopSimulator, tmp_path: Path
) -> None:
    specs = seed_nodes(clean_testbed.connect("cp1"), len(HOSTS))
    creds = write_credentials(tmp_path / "c.yaml", specs)
    original = snapshot(clean_testbed.connect("cp1"))
    requests.post(f"{hadoop.url}/_sim/state", json={"under_replicated_blocks": 7}, timeout=5)
    ephyra = Ephyra(clean_testbed.clouds_yaml, tmp_path / "state")
    run = ephyra.background(
        "forklift",
        "start",
        "--from",
        "cp1",
        "--to",
        "cp2",
        "--credentials",
        f"file:{creds}",
        "--workload",
        "hadoop",
        *workload_options(hadoop, tmp_path),
        "--defer-wait",
        "0.5",
        "--yes",
    )
    vetoed = run.wait_for(lambda line: "node-0000 deferred" in line)
    assert "7" in vetoed  # the veto says why, with the numbers
    assert_home(clean_testbed, original, "cp1")  # nothing touched while HDFS says no
    requests.post(f"{hadoop.url}/_sim/state", json={"under_replicated_blocks": 0}, timeout=5)
    result = run.finish(timeout=120)
    assert result.code == 0, result.err
    assert_home(clean_testbed, original, "cp2")
    hosts = requests.get(f"{hadoop.url}/_sim/state", timeout=5).json()["hosts"]
    assert {h["admin"] for h in hosts.values()} == {"In Service"}
    assert {h["nm"] for h in hosts.values()} == {"RUNNING"}
