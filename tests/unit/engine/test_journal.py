"""The journal, on each backend it takes: SQLite (a file) and PostgreSQL (a server started
once per test run)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ephyra.engine.journal import Journal, RunInfo, described
from ephyra.engine.states import UNFINISHED, RunState
from ephyra.errors import RunNotFound


@pytest.fixture(params=["sqlite", "postgresql"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'j.db'}"
    else:
        new_database: Callable[[], str] = request.getfixturevalue("new_database")
        url = new_database()
    journal = Journal(url)
    assert journal.engine.dialect.name == request.param
    yield journal
    journal.close()


def test_run_record_survives_a_new_journal_object(journal: Journal) -> None:
    run = journal.create_run("forklift", {"state": "running", "created": 1}, {"node:a": {}})
    journal.save_record(run.id, "node:a", {"name": "a", "forward": "moved"})
    journal.save_run(run, state=RunState.PAUSED)
    again = Journal(journal.url)
    try:
        assert again.run(run.id[:8]).state is RunState.PAUSED
        assert again.record(run.id, "node:a") == {"name": "a", "forward": "moved"}
    finally:
        again.close()


def test_control_requests_do_not_touch_the_run_record(journal: Journal) -> None:
    run = journal.create_run("forklift", {"state": "running", "x": 1}, {})
    journal.request(run.id, "pause")
    assert journal.pending_request(run.id) == "pause"
    journal.save_run(run, state=RunState.PAUSED)  # the runner writes its record
    assert journal.pending_request(run.id) == "pause"
    assert journal.run(run.id).meta["x"] == 1
    journal.request(run.id, None)
    assert journal.pending_request(run.id) is None


def test_unknown_and_ambiguous_runs(journal: Journal) -> None:
    with pytest.raises(RunNotFound, match="no run 'zzz'"):
        journal.run("zzz")
    a = journal.create_run("forklift", {"state": "running", "created": 1}, {})
    b = journal.create_run("forklift", {"state": "running", "created": 2}, {})
    assert [r.id for r in journal.runs("forklift")] == [a.id, b.id]
    assert journal.runs("upgrade") == []


def test_a_prefix_shared_by_two_runs_is_ambiguous(journal: Journal) -> None:
    runs = [
        journal.create_run("upgrade", {"state": "running", "created": n}, {}) for n in range(17)
    ]
    first = sorted(r.id[0] for r in runs)  # 17 ids, 16 hex digits: two share their first
    shared = next(a for a, b in itertools.pairwise(first) if a == b)
    with pytest.raises(RunNotFound, match=f"^'{shared}' is ambiguous$"):
        journal.run(shared)
    assert journal.run(runs[5].id[:13]).id == runs[5].id


def test_find_by_id_kind_and_state(journal: Journal) -> None:
    old = journal.create_run("forklift", {"state": "failed", "created": 1}, {})
    new = journal.create_run("forklift", {"state": "succeeded", "created": 2}, {})
    other = journal.create_run("evacuate", {"state": "paused", "created": 3}, {})
    unfinished = frozenset({RunState.FAILED, RunState.PAUSED})
    assert journal.find("forklift", None, unfinished).id == old.id  # the latest unfinished
    assert journal.find("forklift", new.id[:8], unfinished).id == new.id  # named: any state
    with pytest.raises(RunNotFound, match=f"^run {other.id} is a evacuate run, not a forklift"):
        journal.find("forklift", other.id, unfinished)
    with pytest.raises(RunNotFound) as none:
        journal.find("upgrade", None, unfinished, " (start one)")
    assert str(none.value) == f"no upgrade run yet in {journal.url} (start one)"
    with pytest.raises(RunNotFound) as none:
        journal.find("forklift", None, frozenset({RunState.PAUSED}))
    assert str(none.value) == (
        f"no forklift run in {journal.url} is paused: the latest, {new.short}, is succeeded"
    )


@pytest.mark.parametrize(
    ("states", "words"),
    [
        (UNFINISHED, "unfinished (running, paused, failed or rolling back)"),
        (frozenset(RunState) - {RunState.ROLLED_BACK}, "not rolled back"),
        (frozenset({RunState.FAILED, RunState.PAUSED}), "paused or failed"),
        (frozenset({RunState.ROLLING_BACK}), "rolling back"),
    ],
)
def test_states_are_named_in_words(states: frozenset[RunState], words: str) -> None:
    assert described(states) == words


def test_a_journal_with_a_password_is_named_without_it(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    journal.url = "postgresql://ephyra:s3cret@db.example/ephyra"  # as a server's URL reads
    with pytest.raises(RunNotFound) as none:
        journal.find("forklift", None, UNFINISHED)
    assert str(none.value) == "no forklift run yet in postgresql://ephyra:***@db.example/ephyra"
    journal.close()


def test_records_by_prefix_in_one_query(journal: Journal) -> None:
    nodes = {f"node:n{i}": {"forward": "moved", "i": i} for i in range(3)}
    run = journal.create_run("forklift", {"state": "running", "created": 1}, nodes)
    journal.save_record(run.id, "node:n1", {"forward": "failed", "i": 1})
    assert journal.records(run.id, "node:") == {
        "node:n0": {"forward": "moved", "i": 0},
        "node:n1": {"forward": "failed", "i": 1},
        "node:n2": {"forward": "moved", "i": 2},
    }
    assert journal.records(run.id, "host:") == {}
    with pytest.raises(RunNotFound, match=f"run {run.id} has no 'host:x' in the journal"):
        journal.record(run.id, "host:x")


def test_a_record_keeps_its_values_as_they_were(journal: Journal) -> None:
    meta = {
        "state": "running",
        "created": 1733300000.25,
        "text": "naïve ☃ \"quoted\" 'single' \\ back",
        "nested": {"list": [1, None, True, 2.5], "empty": {}},
        "none": None,
    }
    run = journal.create_run("upgrade", meta, {"host:h1": meta["nested"]})
    again = journal.run(run.id)
    assert again.meta == {**meta, "kind": "upgrade"}
    assert again.state is RunState.RUNNING and again.kind == "upgrade"
    assert journal.record(run.id, "host:h1") == meta["nested"]


def test_the_engine_s_keys_read_through_the_run() -> None:
    run = RunInfo("r", "k", RunState.PAUSED, {"phase": "rollback", "reason": "x", "created": 5})
    assert (run.phase, run.reason, run.created) == ("rollback", "x", 5.0)
    bare = RunInfo("r", "k", RunState.RUNNING, {"reason": None})
    assert (bare.phase, bare.reason, bare.created) == (None, "", 0.0)
