"""From a run's events to notifications, and their delivery: in order, at least once, each
notifier from its own position in the journal."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ephyra.engine import events, notify
from ephyra.errors import NotifyFailed, NotifyRefused
from ephyra.notifiers.base import ERROR, INFO, Notification, Notifier


def event(type_: str, seq: int = 4, **body: Any) -> dict[str, Any]:
    return {"seq": seq, "run": "r1", "kind": "files", "time": 1.5, "type": type_, **body}


@pytest.mark.parametrize(
    ("found", "name", "priority", "payload"),
    [
        (event("run.started", title="t", total=3, done=0), "ephyra.run.start", INFO,
         {"title": "t", "total": 3, "done": 0}),
        (event("run.state", state="paused"), "ephyra.run.state", INFO, {"state": "paused"}),
        (event("run.state", state="failed"), "ephyra.run.state", ERROR, {"state": "failed"}),
        (event("run.finished", state="succeeded"), "ephyra.run.end", INFO,
         {"state": "succeeded"}),
        (event("run.finished", state="failed"), "ephyra.run.end", ERROR, {"state": "failed"}),
        (event("step", node="c1", step="drain", status="failed", seconds=2.0),
         "ephyra.step.error", ERROR, {"node": "c1", "step": "drain", "seconds": 2.0}),
        (event("notice", event="ephyra.host.maintenance.start", host="c1", cloud="a"),
         "ephyra.host.maintenance.start", INFO, {"host": "c1", "cloud": "a"}),
        (event("notice", event="ephyra.tenant.migration.failed", priority="error", project="p"),
         "ephyra.tenant.migration.failed", ERROR, {"project": "p"}),
    ],
)  # fmt: skip
def test_the_events_that_are_notifications(
    found: dict[str, Any], name: str, priority: str, payload: dict[str, Any]
) -> None:
    note = notify.notification(found)
    assert note is not None
    assert (note.id, note.event_type, note.priority, note.run, note.kind, note.seq) == (
        "r1.4",
        name,
        priority,
        "r1",
        "files",
        4,
    )
    assert dict(note.payload) == payload


@pytest.mark.parametrize(
    "found",
    [
        event("step", node="c1", step="drain", status="started", seconds=0.0),
        event("step", node="c1", step="drain", status="finished", seconds=1.0),
        event("node", node="c1", outcome="moved", detail=""),
        event("message", text="hello"),
    ],
)
def test_the_events_that_are_not(found: dict[str, Any]) -> None:
    assert notify.notification(found) is None


def test_no_credential_in_a_payload() -> None:
    note = notify.notification(
        event("notice", event="ephyra.x", target="rabbit://u:pw@h:5672/", more=["http://a:b@c/"])
    )
    assert note is not None
    assert dict(note.payload) == {"target": "rabbit://u:***@h:5672/", "more": ["http://a:***@c/"]}


# -- delivery -------------------------------------------------------------------------------
class Recording(Notifier):
    """Takes what it is sent; fails the first ``down`` sends, refuses the ids in ``refuse``."""

    def __init__(self, name: str, down: int = 0, refuse: tuple[str, ...] = ()) -> None:
        super().__init__(name, {})
        self.got: list[Notification] = []
        self.tries = 0
        self.down = down
        self.refuse = refuse
        self.closed = False
        self.seen = threading.Condition()

    def send(self, note: Notification) -> None:
        with self.seen:
            self.tries += 1
            if self.tries <= self.down:
                raise NotifyFailed(f"{self.name}: down")
            if note.id in self.refuse:
                raise NotifyRefused(f"{self.name}: refused")
            self.got.append(note)
            self.seen.notify_all()

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    found = sa.create_engine(f"sqlite:///{tmp_path / 'journal.db'}")
    events.create(found)
    return found


def record(engine: sa.Engine, run: str = "r1") -> events.Recorder:
    from ephyra.progress import QuietObserver

    return events.Recorder(QuietObserver(), engine, run, "files")


def types(notifier: Recording) -> list[str]:
    return [n.event_type for n in notifier.got]


def test_every_notifier_gets_every_notification_in_order(engine: sa.Engine) -> None:
    recorder = record(engine)
    first, second = Recording("a"), Recording("b")
    delivery = notify.Delivery(engine, "r1", [first, second], flush=30)
    delivery.start()
    recorder.recorded = delivery.wake
    recorder.started("files r1", 2, 0)
    recorder.node("step-0", "done")
    recorder.step("step-1", "make", "failed", 0.5)
    recorder.notice("ephyra.files.note", file="step-1")
    recorder.state("failed")
    recorder.finished("failed")
    assert delivery.close()
    wanted = ["ephyra.run.start", "ephyra.step.error", "ephyra.files.note", "ephyra.run.state",
              "ephyra.run.end"]  # fmt: skip
    assert types(first) == types(second) == wanted
    assert first.closed and second.closed
    last = events.last_seq(engine)
    assert notify.position(engine, "r1", "a") == notify.position(engine, "r1", "b") == last


def test_a_notifier_down_for_a_while_loses_nothing_and_keeps_the_order(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "AGAIN", notify.Backoff(attempts=10**6, first=0.01, most=0.02))
    recorder = record(engine)
    for i in range(5):
        recorder.notice("ephyra.n", i=i)
    flaky, steady = Recording("flaky", down=3), Recording("steady")
    delivery = notify.Delivery(engine, "r1", [flaky, steady], flush=30)
    delivery.start()
    assert delivery.close()
    assert [n.payload["i"] for n in flaky.got] == [0, 1, 2, 3, 4]
    assert [n.payload["i"] for n in steady.got] == [0, 1, 2, 3, 4]
    assert flaky.tries == 8


def test_a_refused_notification_is_not_sent_again(engine: sa.Engine) -> None:
    recorder = record(engine)
    for i in range(3):
        recorder.notice("ephyra.n", i=i)
    picky = Recording("picky", refuse=("r1.2",))
    delivery = notify.Delivery(engine, "r1", [picky], flush=30)
    delivery.start()
    assert delivery.close()
    assert [n.id for n in picky.got] == ["r1.1", "r1.3"]
    assert picky.tries == 3


def test_the_next_delivery_goes_on_from_the_position_kept(engine: sa.Engine) -> None:
    recorder = record(engine)
    recorder.notice("ephyra.n", i=0)
    recorder.notice("ephyra.n", i=1)
    record(engine, "other").notice("ephyra.n", i=99)  # another run's: not this run's
    first = Recording("a")
    delivery = notify.Delivery(engine, "r1", [first], flush=30)
    delivery.start()
    assert delivery.close()
    recorder.notice("ephyra.n", i=2)
    again = Recording("a")
    delivery = notify.Delivery(engine, "r1", [again], flush=30)
    delivery.start()
    assert delivery.close()
    assert [n.payload["i"] for n in first.got] == [0, 1]
    assert [n.payload["i"] for n in again.got] == [2]


def test_a_notifier_that_stays_down_is_left_after_the_flush(engine: sa.Engine) -> None:
    record(engine).notice("ephyra.n", i=0)
    down = Recording("down", down=10**6)
    delivery = notify.Delivery(engine, "r1", [down], flush=0.3)
    delivery.start()
    assert delivery.close() is False
    assert down.got == [] and notify.position(engine, "r1", "down") == 0


def test_names_kept_with_a_run_win_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "config", lambda: notify_config(default=["x"]))
    assert notify.of_run({"notify": ["log"]}) == ["log"]
    assert notify.of_run({"notify": []}) == []
    assert notify.of_run({}) == ["x"]


def notify_config(**data: Any) -> Any:
    from ephyra.notifiers.config import NotifyConfig

    base: Mapping[str, Any] = {"notifiers": {"x": {"type": "log"}}}
    return NotifyConfig.model_validate({**base, **data})


def test_a_name_no_longer_configured_leaves_the_others_delivering(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(notify, "config", lambda: notify_config())
    found = notify.delivery(engine, "r1", ["gone", "x", "log"])
    assert found is not None
    assert [c.notifier.name for c in found.couriers] == ["x", "log"]
    assert "nothing delivered to gone: no notifier named 'gone'" in caplog.text
    assert notify.delivery(engine, "r1", ["gone"]) is None
    assert notify.delivery(engine, "r1", []) is None
