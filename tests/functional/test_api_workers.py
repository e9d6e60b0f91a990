"""``ephyra serve --workers 2`` against real Ironic control planes: two processes answer on
one port; a run is driven by the one worker that started or resumed it; pause reaches it
through the journal whichever worker is asked; when a worker dies the other is stopped,
pausing the run it drives; a new server resumes that run, and every node moves once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from ephyra.engine import events
from ephyra.engine.journal import Journal
from testbed.ironic import Testbed
from tests.functional.ephyra_cli import Ephyra
from tests.functional.invariants import assert_exactly_one, assert_home
from tests.functional.test_api import MEMBER, TOKENS, Server, seeded

pytestmark = pytest.mark.functional
#: Nodes to move: enough that a run paused or killed early has nodes left to move.
NODES = 6


def workers(tmp: Path, count: int) -> list[str]:
    """The options of a server of ``count`` workers with the static tokens of the tests."""
    tokens = tmp / "tokens.yaml"
    tokens.write_text(yaml.safe_dump(TOKENS))
    return ["--tokens", str(tokens), "--workers", str(count)]


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[1] == str(pid):
            found.add(int(stat.parent.name))
    return found


def state_of(server: Server, run_id: str, wanted: str) -> dict[str, object]:
    """The run's summary once it is in state ``wanted`` (asked of any worker)."""
    deadline = time.monotonic() + 120
    while (run := server.call("GET", f"/v1/runs/{run_id}").json()["run"])["state"] != wanted:
        assert time.monotonic() < deadline, f"still {run['state']} after 120 s, not {wanted}"
        time.sleep(0.1)
    return dict(run)


def test_two_workers_drive_each_run_once_and_stop_together(
    clean_testbed: Testbed, tmp_path: Path
) -> None:
    ephyra = Ephyra(clean_testbed.clouds_yaml, tmp_path / "state")
    original, body = seeded(clean_testbed, tmp_path, NODES)
    server = Server(ephyra, tmp_path, auth=workers(tmp_path, 2))
    pids = children(server.proc.pid)
    assert len(pids) == 2, pids
    started = server.call("POST", "/v1/forklift/runs", json=body)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    again = server.call("POST", "/v1/forklift/runs", json=body)  # either worker: one run
    assert (again.status_code, again.json()["error"]["code"]) == (409, "lock_held")
    paused = server.call("POST", f"/v1/forklift/runs/{run_id}/pause", token=MEMBER)
    assert paused.status_code == 200, paused.text
    assert state_of(server, run_id, "paused")["done"] < NODES
    journal = Journal(f"sqlite:///{ephyra.journal_file}")
    assert journal.run(run_id).meta["pid"] in pids  # started by a worker
    resumed = server.call("POST", f"/v1/forklift/runs/{run_id}/resume")
    assert resumed.status_code == 202, resumed.text
    driver = journal.run(run_id).meta["pid"]
    assert driver in pids
    twice = server.call("POST", f"/v1/forklift/runs/{run_id}/resume")  # either worker
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "lock_held")
    (other,) = pids - {driver}
    os.kill(other, signal.SIGKILL)  # the server stops the driver, which pauses its run
    assert server.proc.wait(60) == 1
    server.log.close()
    assert not children(server.proc.pid)
    halted = journal.run(run_id)
    assert halted.state.value == "paused", halted.state
    assert_exactly_one(clean_testbed, list(original))

    (tmp_path / "again").mkdir()
    fresh = Server(ephyra, tmp_path / "again", auth=workers(tmp_path / "again", 2))
    try:
        resumed = fresh.call("POST", f"/v1/forklift/runs/{run_id}/resume")
        assert resumed.status_code == 202, resumed.text
        assert state_of(fresh, run_id, "succeeded")["done"] == NODES
    finally:
        assert fresh.stop() == 0  # SIGTERM: every worker ends cleanly
    log = (tmp_path / "again" / "serve.log").read_text()
    assert "Traceback" not in log and "2 workers" in log, log
    assert_home(clean_testbed, original, "cp2")
    seen = events.read(journal.engine, run_id, 0, 100_000)
    journal.close()
    moved = [e["node"] for e in seen if e["type"] == "node" and e["outcome"] == "moved"]
    assert sorted(moved) == [f"node-{i:04d}" for i in range(NODES)]  # each node moved once
