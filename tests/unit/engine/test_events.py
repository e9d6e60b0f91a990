"""A run's events in the journal: written by the observer every driver wraps, read in
order, after a given one, by run."""

from __future__ import annotations

from pathlib import Path

from ephyra.engine import events
from ephyra.engine.journal import Journal
from ephyra.progress import QuietObserver


class Seen(QuietObserver):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def node(self, node: str, outcome: str, detail: str = "") -> None:
        self.calls.append(f"{node} {outcome}")


def test_events_are_kept_in_order_and_passed_on(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    inner = Seen()
    a = events.Recorder(inner, journal.engine, "run-a", "forklift")
    b = events.Recorder(QuietObserver(), journal.engine, "run-b", "upgrade")
    a.started("cp1 -> cp2", 2, 0)
    a.step("n1", "undeploy", "started", 0.0)
    b.step("h1", "upgrade", "output", 0.0)  # a command's output is not an event
    a.step("n1", "undeploy", "done", 1.23456)
    a.node("n1", "moved")
    b.state("paused")
    a.finished("succeeded")
    assert inner.calls == ["n1 moved"]
    found = events.read(journal.engine)
    assert [(e["run"], e["type"]) for e in found] == [
        ("run-a", "run.started"),
        ("run-a", "step"),
        ("run-a", "step"),
        ("run-a", "node"),
        ("run-b", "run.state"),
        ("run-a", "run.finished"),
    ]
    assert found[2]["status"] == "finished" and found[2]["seconds"] == 1.235
    assert [e["seq"] for e in found] == sorted({e["seq"] for e in found})
    later = events.read(journal.engine, "run-a", after=found[2]["seq"])
    assert [e["type"] for e in later] == ["node", "run.finished"]
    assert events.read(journal.engine, types=("node",))[0]["outcome"] == "moved"
    assert events.last_seq(journal.engine) == found[-1]["seq"]


def test_a_lost_event_does_not_stop_the_run(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    with journal.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE ephyra_events")
    inner = Seen()
    events.Recorder(inner, journal.engine, "r", "forklift").node("n", "moved")
    assert inner.calls == ["n moved"]
