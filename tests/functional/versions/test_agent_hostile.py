"""A real ``ephyra agent`` given a malformed desired version (on a real etcd and on SQLite):
it runs nothing, makes no file or directory, says so, records the refusal, keeps running
and applies the next valid version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ephyra.agent.loop import REFUSED
from ephyra.versions.store import open_store
from tests.functional.versions.test_agent import Fleet, converged, eventually

HOSTILE = ["2025.2;touch PWNED;echo", "../../x"]


@pytest.fixture
def hostile_fleet(tmp_path: Path, store_url: str) -> Iterator[Fleet]:
    made = Fleet(tmp_path, store_url, f"/hostile-{tmp_path.name}")
    yield made
    made.stop()


def _tree(root: Path) -> set[str]:
    """Every path under ``root`` but the store's own files and the CLI's state."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if "state" not in p.parts and not p.name.startswith("versions.db")
    }


def test_an_agent_refuses_a_malformed_desired_version_and_applies_the_next(
    hostile_fleet: Fleet, tmp_path: Path
) -> None:
    fleet = hostile_fleet
    agent = fleet.start("cmp-1", "compute", sleep=0.1)
    assert fleet("version", "trigger", "1.0")[0] == 0
    fleet.up()
    eventually(converged(fleet, "1.0", ["cmp-1"]), 30)
    before = _tree(tmp_path)
    for bad in HOSTILE:
        with open_store(fleet.store_url) as store:
            store.put(fleet.keys.current_version, bad)  # not through trigger: it refuses
        agent.wait_for(lambda line, bad=bad: f"{bad!r} refused" in line, timeout=30)
        row = fleet.status()["cmp-1"]
        assert (row["state"], row["state_version"]) == ("configured/failure", REFUSED)
        assert f"{bad!r} refused" in str(row["message"])
        assert agent.proc.poll() is None  # it keeps running
    assert fleet.status()["cmp-1"]["running"] == "1.0"
    assert [v for v, _, _ in fleet.effects("cmp-1")] == []  # the host ran 1.0 all along
    assert _tree(tmp_path) == before  # no PWNED, no log, no directory made
    assert not (tmp_path.parent / "x.log").exists() and not Path("PWNED").exists()

    late = fleet.start("cmp-2", "compute", once=True)  # starts on the malformed one
    assert late.proc.wait(timeout=60) == 1
    eventually(lambda: any(f"{HOSTILE[-1]!r} refused" in line for line in late.lines), 10)
    assert fleet.status()["cmp-2"]["state_version"] == REFUSED

    code, out, err = fleet("version", "trigger", "2.0")  # no --force: nothing to wait for
    assert "current version 2.0" in out
    assert code == 0, err
    eventually(converged(fleet, "2.0", ["cmp-1"]), 30)
    assert [v for v, _, _ in fleet.effects("cmp-1")] == ["2.0"]
    row = fleet.status()["cmp-1"]
    assert (row["state"], row["state_version"], row["converged"]) == (
        "validated/success",
        "2.0",
        True,
    )
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["cmp-1-2.0.log"]
