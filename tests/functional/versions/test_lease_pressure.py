"""A fleet of real ``ephyra agent`` processes whose etcd stops answering (SIGSTOP) for
longer than the agents' TTL, then comes back (SIGCONT): every lease was lost, and every
agent announces itself again exactly once, then follows the next version."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.etcd import Etcd
from tests.functional.versions.test_agent import Fleet, converged, eventually

HOSTS = ["cmp-1", "cmp-2", "cmp-3"]
TTL_S = 3  # what test_agent's Fleet starts its agents with
PAUSE_S = TTL_S + 4  # etcd away longer than any lease it holds
AGAIN = "the lease expired; announcing again"


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[Etcd]:
    """An etcd of this test's own: pausing the session's would stall other tests."""
    with Etcd(tmp_path / "etcd", tmp_path / "etcd.log") as server:
        yield server


@pytest.fixture
def fleet(tmp_path: Path, own_etcd: Etcd) -> Iterator[Fleet]:
    made = Fleet(tmp_path, own_etcd.url, "/pressure")
    yield made
    made.stop()


def test_a_fleet_that_lost_etcd_past_its_ttl_announces_once_each_and_converges(
    fleet: Fleet, own_etcd: Etcd
) -> None:
    for host in HOSTS:
        fleet.start(host, "compute", sleep=0.1)
    assert fleet("version", "trigger", "1.0")[0] == 0
    fleet.up()
    eventually(converged(fleet, "1.0", HOSTS), 20)
    pid = own_etcd.daemon.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(PAUSE_S)  # the pressure itself: etcd frozen for a while
    finally:
        os.kill(pid, signal.SIGCONT)
    for agent in fleet.agents.values():
        agent.wait_for(lambda line: AGAIN in line, 20)
    eventually(converged(fleet, "1.0", HOSTS), 20)
    assert fleet("version", "trigger", "2.0")[0] == 0
    eventually(converged(fleet, "2.0", HOSTS), 30)
    for host, agent in fleet.agents.items():
        assert sum(AGAIN in line for line in agent.lines) == 1, (host, agent.lines[-10:])
    status = fleet.status()
    rows = {h: (status[h]["running"], status[h]["state"], status[h]["converged"]) for h in HOSTS}
    assert rows == {h: ("2.0", "validated/success", True) for h in HOSTS}
    _, out, _ = fleet("--format", "json", "roles", "hosts-of", "compute")
    assert sorted(json.loads(out)) == HOSTS
