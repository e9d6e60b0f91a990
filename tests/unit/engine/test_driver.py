"""A stop reaches every engine at its next step boundary, except one holding on through
steps that must not be parted (a node enrolled in two control planes)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from taskflow import states as tf_states
from taskflow.types.notifier import Notifier

from ephyra.engine.control import Request
from ephyra.engine.driver import RunDriver
from ephyra.engine.journal import Journal
from ephyra.engine.metrics import RunMetrics
from ephyra.errors import PauseRequested
from ephyra.progress import PlainObserver, QuietObserver


class Engine:
    def __init__(self) -> None:
        self.suspended = 0
        self.atom_notifier = Notifier()

    def suspend(self) -> None:
        self.suspended += 1


@pytest.fixture
def driver(tmp_path: Path) -> RunDriver:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    run = journal.create_run("test", {"state": "running"}, {})
    return RunDriver(journal, run, PlainObserver(), RunMetrics("test", run.id))


def test_a_held_engine_is_suspended_only_once_released(driver: RunDriver) -> None:
    held, free = Engine(), Engine()
    with driver._tracked(held, driver.control, key="a"), driver._tracked(free, driver.control):
        driver.hold("a")
        driver.stop(Request.PAUSE)
        assert (held.suspended, free.suspended) == (0, 1)
        driver.release("a")
        assert held.suspended == 1


def test_holding_after_a_stop_raises_it_so_the_steps_do_not_begin(driver: RunDriver) -> None:
    engine: Any = Engine()
    with driver._tracked(engine, driver.control, key="a"):
        driver.stop(Request.PAUSE)
        with pytest.raises(PauseRequested):
            driver.hold("a")


def test_a_request_from_another_process_is_in_effect_once_reported(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    run = journal.create_run("test", {"state": "running"}, {})
    said: list[tuple[str, Request | None]] = []
    reported = threading.Event()

    class Watcher(QuietObserver):
        def message(self, text: str) -> None:
            said.append((text, driver.control.request))
            reported.set()

    driver = RunDriver(journal, run, Watcher(), RunMetrics("test", run.id))
    step_ends = threading.Event()

    class Busy(Engine):  # TaskFlow's suspend() waits for the step under way to end
        def suspend(self) -> None:
            step_ends.wait(30)
            super().suspend()

    engine = Busy()
    with driver._tracked(engine, driver.control), driver.watching():
        journal.request(run.id, "pause")
        assert reported.wait(30)
        step_ends.set()
    assert said == [("pause requested", Request.PAUSE)]
    assert engine.suspended == 1


class Lock:
    def __init__(self, name: str) -> None:
        self.name = name
        self.held = True

    def still_held(self) -> bool:
        return self.held


class Claim:
    def __init__(self) -> None:
        self.why = ""
        self.asked = 0

    def still_ours(self) -> str:
        self.asked += 1
        return self.why

    def driving(self, driver: RunDriver | None) -> None:
        pass


def test_before_each_step_the_locks_and_the_claim_are_checked(driver: RunDriver) -> None:
    engine, lock, claim = Engine(), Lock("upgrade -"), Claim()
    driver.locks, driver.keeper = [lock], claim
    with driver._tracked(engine, driver.control):
        engine.atom_notifier.notify(tf_states.RUNNING, {})
        assert (claim.asked, driver.lost, engine.suspended) == (1, "", 0)
        assert driver.control.request is None
        lock.held = False
        engine.atom_notifier.notify(tf_states.RUNNING, {})
        assert claim.asked == 1  # a lost lock says enough
        assert driver.lost == "lost the lock upgrade -"
        assert (driver.control.request, engine.suspended) == (Request.PAUSE, 1)
        with pytest.raises(PauseRequested):  # the step that was starting stops at once
            driver.control.checkpoint()
    engine.atom_notifier.notify(tf_states.RUNNING, {})  # no longer tracked: not asked
    assert claim.asked == 1


def test_a_claim_lost_stops_the_run_once(driver: RunDriver) -> None:
    engine, claim = Engine(), Claim()
    driver.keeper = claim
    claim.why = "lost the claim of its job"
    with driver._tracked(engine, driver.control):
        engine.atom_notifier.notify(tf_states.RUNNING, {})
        engine.atom_notifier.notify(tf_states.RUNNING, {})
    assert driver.lost == "lost the claim of its job"
    assert engine.suspended == 1
    assert claim.asked == 1  # once lost, lost: not asked again
