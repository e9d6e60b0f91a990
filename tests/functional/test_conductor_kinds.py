"""Every kind on the distributed engine: forklift and evacuation runs posted with
``--board`` and driven by ``ephyra conductor``, a rollback queued with ``rollback
--board``, a conductor's metrics, and a conductor that loses its claim mid-command.

Real etcd (the board and the runs' locks), a real PostgreSQL journal, real Ironic and
Nova; every process the real ``ephyra`` command line. The board, the journal and the
conductors are those of ``test_conductor`` (its ``Cluster``); the clouds are the
testbed's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testbed.ironic import Testbed
from testbed.nova import NovaTestbed
from testbed.nova_watch import migrations_of
from testbed.seed import seed_nodes, snapshot, write_credentials
from tests.functional import test_conductor as base
from tests.functional.invariants import assert_home
from tests.functional.test_conductor import Cluster
from tests.functional.test_host import hosts_of, service

pytestmark = pytest.mark.functional

#: The journal's PostgreSQL (one per module) and the clusters of conductors on etcd.
postgres = base.postgres
cluster_of = base.cluster_of


def on_clouds(cluster: Cluster, clouds_yaml: Path, env: dict[str, str] | None = None) -> None:
    """Point the cluster's commands and conductors at the testbed's clouds."""
    cluster.ephyra.env.update(env or {})
    cluster.ephyra.env["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml)


def queued(cluster: Cluster, *args: str) -> str:
    """Run a command that queues a run on the cluster's board; the run id."""
    posted = cluster.ephyra(*args, "--board", cluster.board)
    assert posted.code == 0, posted.err
    words = posted.out.split()
    assert words[0] == "run" and posted.out.strip().endswith(f"queued on {cluster.board}")
    return words[1]


def status(cluster: Cluster, command: str, run_id: str) -> dict[str, Any]:
    shown = cluster.ephyra("--format", "json", command, "status", run_id)
    assert shown.code == 0, shown.err
    data: dict[str, Any] = json.loads(shown.out)
    return data


def test_a_forklift_posted_on_a_board_is_moved_then_rolled_back_by_a_conductor(
    clean_testbed: Testbed, cluster_of: Callable[[int, int], Cluster], tmp_path: Path
) -> None:
    cluster = cluster_of(4, 4)
    on_clouds(cluster, clean_testbed.clouds_yaml, clean_testbed.env())
    specs = seed_nodes(clean_testbed.connect("cp1"), 3)
    creds = write_credentials(tmp_path / "credentials.yaml", specs)
    original = snapshot(clean_testbed.connect("cp1"))
    conductor = cluster.conductor("c1")
    run_id = queued(
        cluster,
        *("forklift", "start", "--from", "cp1", "--to", "cp2", "--concurrency", "2"),
        *("--credentials", f"file:{creds}", "--yes"),
    )
    assert cluster.journal_row(run_id)["board"] == cluster.board

    conductor.wait_for(f"finished forklift run {run_id}: run succeeded; job consumed", 180)
    assert_home(clean_testbed, original, "cp2")
    moved = status(cluster, "forklift", run_id)
    assert moved["state"] == "succeeded", moved
    assert [n["forward"] for n in moved["nodes"]] == ["moved"] * 3
    assert cluster.journal_row(run_id)["pid"] == conductor.proc.pid
    assert cluster.jobs() == []

    again = cluster.ephyra("forklift", "resume", run_id, "--board", cluster.board)
    assert again.code == 2  # a finished run has nothing to resume: not queued
    assert "nothing to resume" in again.err
    assert cluster.jobs() == []

    assert queued(cluster, "forklift", "rollback", run_id) == run_id
    assert cluster.journal_row(run_id)["phase"] == "rollback"
    conductor.wait_for(f"finished forklift run {run_id}: run rolled-back; job consumed", 180)
    assert_home(clean_testbed, original, "cp1")
    back = status(cluster, "forklift", run_id)
    assert back["state"] == "rolled-back", back
    assert [n["rollback"] for n in back["nodes"]] == ["moved"] * 3
    assert cluster.jobs() == []
    assert cluster.etcd_keys() == []
    assert len(conductor.said("claimed forklift run")) == 2


def test_an_evacuation_posted_on_a_board_is_drained_by_a_conductor(
    clean_nova: NovaTestbed, cluster_of: Callable[[int, int], Cluster]
) -> None:
    cluster = cluster_of(4, 4)
    on_clouds(cluster, clean_nova.clouds_yaml)
    ids = clean_nova.boot("compute-1", 3, project="alpha")
    conductor = cluster.conductor("c1")
    run_id = queued(
        cluster,
        *("host", "evacuate", "compute-1", "--os-cloud", "nova", "--yes"),
        *("--concurrency", "2", "--per-host", "2"),
    )
    conductor.wait_for(f"finished evacuate run {run_id}: run succeeded; job consumed", 180)
    assert clean_nova.servers_on("compute-1") == []
    assert set(hosts_of(clean_nova, ids).values()) <= {"compute-2", "compute-3"}
    conn = clean_nova.connect()
    for sid in ids:  # each server moved exactly once
        assert migrations_of(conn, sid) == [("live-migration", "completed")]
    svc = service(clean_nova, "compute-1")
    assert svc["status"] == "disabled"
    assert svc["disabled_reason"].startswith(f"ephyra evacuate run {run_id}")
    drained = status(cluster, "host", run_id)
    assert drained["state"] == "succeeded", drained
    assert drained["counts"] == {"moved": 3}
    assert [h["forward"] for h in drained["hosts"]] == ["drained"]
    assert cluster.journal_row(run_id)["pid"] == conductor.proc.pid
    assert cluster.jobs() == []
