from pathlib import Path

import pytest

from ephyra.engine.journal import Journal
from ephyra.engine.states import RunState
from ephyra.errors import RunNotFound


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(f"sqlite:///{tmp_path / 'j.db'}")


def test_run_record_survives_a_new_journal_object(journal: Journal, tmp_path: Path) -> None:
    run = journal.create_run("forklift", {"state": "running", "created": 1}, {"node:a": {}})
    journal.save_record(run.id, "node:a", {"name": "a", "forward": "moved"})
    journal.save_run(run, state=RunState.PAUSED)
    again = Journal(journal.url)
    assert again.run(run.id[:8]).state is RunState.PAUSED
    assert again.record(run.id, "node:a") == {"name": "a", "forward": "moved"}


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
