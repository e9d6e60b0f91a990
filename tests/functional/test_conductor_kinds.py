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
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import etcd3gw
import pytest

from testbed.ironic import Testbed
from testbed.nova import NovaTestbed
from testbed.nova_watch import migrations_of
from testbed.seed import seed_nodes, snapshot, write_credentials
from tests.functional import test_conductor as base
from tests.functional.ephyra_cli import EPHYRA
from tests.functional.invariants import assert_home
from tests.functional.test_conductor import HOSTS, Cluster, Conductor
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.status == 200
        text: str = answer.read().decode()
        return text


def test_a_conductor_exports_its_jobs_and_the_metrics_of_its_run(
    cluster_of: Callable[[int, int], Cluster], tmp_path: Path
) -> None:
    cluster = cluster_of(4, 4)
    port, textfile = free_port(), tmp_path / "conductor.prom"
    argv = [*EPHYRA, "-v", "conductor", "--board", cluster.board, "--name", "c1"]
    argv += ["--metrics-port", str(port), "--metrics-textfile", str(textfile)]
    conductor = Conductor("c1", argv, cluster.ephyra.env, tmp_path / "c1.err")
    cluster.conductors.append(conductor)
    cluster.ready(conductor)
    idle = scrape(port)
    assert 'ephyra_conductor_jobs_total{conductor="c1",event="claimed"} 0.0' in idle
    assert 'ephyra_conductor_driving{conductor="c1"} 0.0' in idle

    run_id = cluster.post(upgrade_s=1.5)
    cluster.wait_file("h2.calls")  # the run goes: h1 done, h2 under way
    during = scrape(port)
    assert 'ephyra_conductor_jobs_total{conductor="c1",event="claimed"} 1.0' in during
    assert 'ephyra_conductor_driving{conductor="c1"} 1.0' in during
    assert f'ephyra_run_state{{kind="upgrade",run="{run_id}",state="running"}} 1.0' in during

    conductor.wait_for(f"finished upgrade run {run_id}: run succeeded; job consumed", 60)
    cluster.assert_upgraded_once(run_id)
    for text in (scrape(port), textfile.read_text()):
        assert 'ephyra_conductor_jobs_total{conductor="c1",event="consumed"} 1.0' in text
        assert 'ephyra_conductor_jobs_total{conductor="c1",event="claim_lost"} 0.0' in text
        assert 'ephyra_conductor_driving{conductor="c1"} 0.0' in text
        assert f'ephyra_run_state{{kind="upgrade",run="{run_id}",state="succeeded"}} 1.0' in text


def revoke_claim(cluster: Cluster) -> str:
    """Revoke the lease of the claim on the cluster's only job (its owner key goes with
    it), as etcd does when a lease runs out; the owner it had."""
    client = etcd3gw.Etcd3Client(host="127.0.0.1", port=cluster.etcd.port)
    owners = [
        json.loads(value)
        for value, meta in client.get_prefix(f"/taskflow/jobs/{cluster.path}/job")
        if bytes(meta["key"]).decode().endswith(".lock")
    ]
    assert len(owners) == 1, owners
    assert etcd3gw.Lease(owners[0]["lease_id"], client).revoke()
    return str(owners[0]["owner"])


def group_gone(pgid: int) -> bool:
    """Whether no live process is left in the process group ``pgid`` (a process that
    died is a zombie until the init process reaps it: it counts as gone)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            return False
    return True


def test_a_conductor_that_loses_its_claim_ends_its_command_before_another_takes_the_run(
    cluster_of: Callable[[int, int], Cluster],
) -> None:
    ttl = 3
    cluster = cluster_of(ttl, 10)  # the run's lock outlives the claim
    sleep_s = cluster.root / "sleep_s"  # how long each upgrade command sleeps
    sleep_s.write_text("60\n")
    first = cluster.conductor("c1")
    cluster.ready(first)
    run_id = cluster.post(upgrade_s=f"$(cat {sleep_s})")  # type: ignore[arg-type]
    cluster.wait_file("h1.calls")
    (pid,) = map(int, cluster.lines("h1", "calls"))  # the shell of h1's upgrade command
    assert not group_gone(pid)
    second = cluster.conductor("c2")
    cluster.ready(second)

    revoked = time.monotonic()
    assert revoke_claim(cluster) == "c1"
    sleep_s.write_text("0.2\n")  # the commands to come are short
    alive = revoked  # the last time the command was seen running
    while not group_gone(pid):  # the command and its sleep, ended (60 s: only a hang guard)
        alive = time.monotonic()
        assert alive - revoked < 60, first.output()
        time.sleep(0.05)
    ended = time.monotonic()  # when it was seen gone: at most this, however busy the machine
    # c1 sees the claim gone, or already taken by c2 when c2 was quicker to claim it
    first.wait_for("lost the claim of its job (now ", after=revoked)
    assert first.said("lost the claim of its job (now unclaimed)") or first.said(
        "lost the claim of its job (now claimed by c2)"
    ), first.output()
    first.wait_for(f"abandoned upgrade run {run_id}", after=revoked)
    finished = f"finished upgrade run {run_id}: run succeeded; job consumed"
    deadline = time.monotonic() + 90
    while not (first.said(finished) or second.said(finished)):
        assert time.monotonic() < deadline, f"{first.output()}\n{second.output()}"
        time.sleep(0.1)
    winner = first if first.said(finished) else second
    done = winner.said(finished)[0]
    resumed = [t for t in winner.said("resuming upgrade run") if t < done][-1]

    # taken again only once the command ended: never while it was seen running
    assert alive < resumed, (alive - revoked, resumed - revoked)
    assert "(handed over: conductor c1: lost the claim of its job" in winner.output()
    assert len(first.said(finished) + second.said(finished)) == 1
    cluster.assert_upgraded_once(run_id)  # h1's effect once: the cut command left none
    assert len(cluster.lines("h1", "calls")) == 2  # cut, then done again
    for host in HOSTS[1:]:
        assert len(cluster.lines(host, "calls")) == 1
    assert cluster.journal_row(run_id)["pid"] == winner.proc.pid
    assert first.proc.poll() is None  # the first conductor lives on
    print(
        f"\n[claim revoked] ttl {ttl}s: command ended {ended - revoked:.1f}s after, "
        f"run resumed by {winner.name} {resumed - revoked:.1f}s after"
    )
