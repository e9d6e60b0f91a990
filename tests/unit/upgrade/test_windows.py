"""Maintenance windows: reading ``windows:``, when the next window opens (time zones,
changes of the clock), where the plan's estimate puts each stage, and a run held outside
its windows; a window closing mid-run with a real run is in
tests/functional/test_upgrade_windows.py."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ephyra.engine.control import Control, Request
from ephyra.engine.states import RunState
from ephyra.errors import PauseRequested, UsageError
from ephyra.progress import PlainObserver
from ephyra.upgrade.kind import plan_upgrade
from ephyra.upgrade.plan import Plan, make_plan
from ephyra.upgrade.spec import parse
from ephyra.upgrade.windows import WindowGate, Windows, schedule
from tests.unit.upgrade import upgrade_fakes
from tests.unit.upgrade.test_runner import Env, _spec
from tests.unit.upgrade.upgrade_fakes import WORLD, World

BERLIN = ZoneInfo("Europe/Berlin")
WEEKNIGHTS = {"cron": "0 22 * * 1-5", "duration": "4h", "timezone": "Europe/Berlin"}


def windows(*each: dict[str, Any]) -> Windows:
    return parse({**SPEC, "windows": list(each)}).windows


SPEC = {"release": "2.0", "strategies": {"default": {"type": "noop"}}}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(*args: int, zone: str = "Europe/Berlin") -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


# -- reading ----------------------------------------------------------------------------
def test_a_cron_window_and_explicit_ones_are_read() -> None:
    found = windows(
        WEEKNIGHTS,
        {"start": "2026-12-24T22:00:00+01:00", "end": "2026-12-25T06:00:00+01:00"},
        {"start": "2026-12-26 22:00", "duration": "1h30m", "timezone": "America/New_York"},
        {"start": "2026-12-27T00:00:00", "duration": 600},  # UTC by default
    )
    cron, offset, naive, seconds = found.each
    assert (cron.cron, cron.duration, cron.timezone) == (
        "0 22 * * 1-5",
        4 * 3600.0,
        "Europe/Berlin",
    )
    assert (offset.starts, offset.ends) == (utc(2026, 12, 24, 21), utc(2026, 12, 25, 5))
    assert (naive.starts, naive.ends) == (utc(2026, 12, 27, 3), utc(2026, 12, 27, 4, 30))
    assert (seconds.starts, seconds.ends) == (utc(2026, 12, 27), utc(2026, 12, 27, 0, 10))
    assert not parse(SPEC).windows  # none: always open
    assert parse(SPEC).windows.next_open(utc(2026, 1, 1)) == utc(2026, 1, 1)


@pytest.mark.parametrize(
    ("window", "error"),
    [
        ({"cron": "0 22 * *", "duration": "4h"}, "windows[0].cron: a 5-field cron expression"),
        ({"cron": "0 0 22 * * *", "duration": "4h"}, "windows[0].cron: a 5-field cron"),
        ({"cron": "0 25 * * *", "duration": "4h"}, "windows[0].cron: a 5-field cron"),
        ({"cron": "0 0 31 2 *", "duration": "4h"}, "windows[0].cron: '0 0 31 2 \\*' never opens"),
        ({"cron": "0 22 * * *"}, "windows[0].duration: required with cron"),
        ({"cron": "0 22 * * *", "duration": "4 hours"}, "windows[0].duration: a duration"),
        ({"cron": "0 22 * * *", "duration": 0}, "windows[0].duration: must be a positive"),
        ({"cron": "0 22 * * *", "duration": "1h", "timezone": "CEST+2"}, "timezone: not a time"),
        ({"cron": "0 22 * * *", "duration": "1h", "start": "2026-12-24T22:00"}, "not both"),
        ({"duration": "1h"}, "windows[0].start: required, unless the window opens by a cron"),
        ({"start": "Christmas eve", "end": "2026-12-25T06:00"}, "windows[0].start: an ISO 8601"),
        ({"start": "2026-12-24T22:00"}, "windows[0].end: a window with a start has an end or"),
        ({"start": "2026-12-24T22:00", "end": "2026-12-24T21:00"}, "end: .* is not after"),
        ({"start": datetime(2026, 12, 24, 22)}, "windows[0].start: an ISO 8601 time in quotes"),
        ({"cron": "0 22 * * *", "duration": "1h", "every": "day"}, "unknown key\\(s\\) every"),
    ],
)
def test_a_bad_window_is_refused_naming_its_key(window: dict[str, Any], error: str) -> None:
    with pytest.raises(UsageError, match=error.replace("[", r"\[").replace("]", r"\]")):
        windows(window)


def test_windows_that_are_not_a_list_are_refused() -> None:
    with pytest.raises(UsageError, match=r"spec.windows: expected a list of windows"):
        parse({**SPEC, "windows": WEEKNIGHTS})


# -- when the next window opens ---------------------------------------------------------
def test_a_weeknight_window_in_berlin_opens_at_22_local_and_waits_over_the_weekend() -> None:
    found = windows(WEEKNIGHTS)
    friday_evening = local(2026, 12, 4, 20)
    assert found.next_open(friday_evening) == local(2026, 12, 4, 22)
    inside = local(2026, 12, 5, 1, 30)  # Saturday 01:30: Friday's window still open
    assert found.next_open(inside) == inside
    assert found.open_until(inside) == local(2026, 12, 5, 2)
    assert found.next_open(local(2026, 12, 5, 2)) == local(2026, 12, 7, 22)  # closed at its end
    assert found.open_until(local(2026, 12, 6, 12)) is None


def test_the_same_instant_seen_from_another_time_zone() -> None:
    found = windows({"cron": "0 9 * * *", "duration": "1h", "timezone": "Asia/Tokyo"})
    # 09:00 in Tokyo is 00:00 UTC, and 19:00 the day before in New York (winter)
    asked = local(2026, 1, 15, 18, zone="America/New_York")
    assert found.next_open(asked) == local(2026, 1, 15, 19, zone="America/New_York")
    assert found.next_open(asked) == utc(2026, 1, 16, 0)


def test_a_window_keeps_its_wall_clock_hour_and_its_elapsed_length_across_dst() -> None:
    found = windows({"cron": "0 1 * * *", "duration": "3h", "timezone": "Europe/Berlin"})
    # the night the clock goes from 02:00 to 03:00: opens 01:00 CET, open 3 hours
    opens = found.next_open(local(2026, 3, 28, 12))
    assert opens == utc(2026, 3, 29, 0)
    assert found.open_until(opens) == utc(2026, 3, 29, 3)  # 05:00 CEST
    # the next night it opens at 01:00 CEST, an hour earlier in UTC
    assert found.next_open(local(2026, 3, 29, 12)) == utc(2026, 3, 29, 23)
    # the night the clock goes back from 03:00 to 02:00
    assert found.next_open(local(2026, 10, 24, 12)) == utc(2026, 10, 24, 23)
    assert found.next_open(local(2026, 10, 25, 12)) == utc(2026, 10, 26, 0)


def test_a_start_the_clock_skips_opens_just_after_the_gap() -> None:
    found = windows({"cron": "30 2 * * *", "duration": "1h", "timezone": "Europe/Berlin"})
    opens = found.next_open(local(2026, 3, 28, 12))
    assert opens is not None and opens.astimezone(BERLIN) == local(2026, 3, 29, 3)


def test_windows_that_overlap_or_touch_are_one() -> None:
    found = windows(
        {"start": "2026-12-07T20:00:00Z", "end": "2026-12-07T22:00:00Z"},
        {"start": "2026-12-07T22:00:00Z", "end": "2026-12-07T23:00:00Z"},
        {"start": "2026-12-07T22:30:00Z", "end": "2026-12-08T01:00:00Z"},
        {"start": "2026-12-09T20:00:00Z", "end": "2026-12-09T21:00:00Z"},
    )
    assert found.open_until(utc(2026, 12, 7, 21)) == utc(2026, 12, 8, 1)
    assert found.next_open(utc(2026, 12, 8, 1)) == utc(2026, 12, 9, 20)
    assert found.next_open(utc(2026, 12, 9, 21)) is None  # none opens again


# -- the estimate -----------------------------------------------------------------------
def test_the_estimate_puts_each_stage_in_the_window_it_starts_in() -> None:
    found = windows(WEEKNIGHTS)
    sunday = local(2026, 12, 6, 19)
    hour = 3600.0
    slots = schedule(found, [hour, 3.5 * hour, hour, 5 * hour], sunday)
    shown = [s.describe(found.zone) if s else None for s in slots]
    assert shown == [
        "2026-12-07 22:00 CET",
        "2026-12-07 22:00 CET, from 2026-12-07 23:00 CET, past its end at 2026-12-08 02:00 CET",
        "2026-12-08 22:00 CET",  # the second runs past 02:00: the third waits a day
        "2026-12-08 22:00 CET, from 2026-12-08 23:00 CET, past its end at 2026-12-09 02:00 CET",
    ]
    assert schedule(windows({"start": "2026-01-01T00:00:00Z", "duration": 60}), [1], sunday) == [
        None
    ]


SMALL = {
    "ctl-1": {"roles": ["controller"], "services": ["nova-conductor/compute"]},
    "cmp-1": {"roles": ["compute"], "services": ["nova-compute/compute"]},
}


def test_the_plan_shows_each_stages_window_and_keeps_it() -> None:
    from tests.unit.upgrade.test_plan import _inventory

    spec = parse(
        {
            **SPEC,
            "roles": {"compute": {"drain": False}},
            "estimate": {"service": 3600 * 5, "gate": 0},
            "windows": [WEEKNIGHTS],
        }
    )
    plan = make_plan(_inventory(SMALL), spec, local(2026, 12, 7, 12))
    assert [s.window for s in plan.stages] == [
        "2026-12-07 22:00 CET, past its end at 2026-12-08 02:00 CET",
        "2026-12-08 22:00 CET, past its end at 2026-12-09 02:00 CET",  # the next night
    ]
    lines = plan.render().splitlines()
    assert lines[1] == (
        "├── control plane: nova-conductor: 1 batch(es), 5h00m00s, "
        "window 2026-12-07 22:00 CET, past its end at 2026-12-08 02:00 CET"
    )
    assert [s["window"] for s in plan.to_dict()["stages"]] == [s.window for s in plan.stages]
    assert Plan.from_dict(plan.to_dict()) == plan
    # planning reads nothing but its arguments: no start, no window named
    assert "window" not in make_plan(_inventory(SMALL), spec).render()
    past = parse({**SPEC, "windows": [{"start": "2020-01-01T00:00:00Z", "duration": 60}]})
    assert {s.window for s in make_plan(_inventory(SMALL), past, utc(2026, 1, 1)).stages} == {
        "none opens"
    }


# -- a run held outside its windows -----------------------------------------------------
class Clock:
    """A clock that moves only when the gate sleeps."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class Sleeper(Control):
    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.at += timedelta(seconds=seconds)
        self.checkpoint()


def test_a_gate_outside_its_windows_waits_for_the_next_and_says_so() -> None:
    clock = Clock(local(2026, 12, 7, 21, 58))
    control = Sleeper(clock)
    said: list[str] = []
    waiting: list[str] = []
    gate = WindowGate(windows(WEEKNIGHTS), control, said.append, waiting.append, clock)
    assert gate.hold("data plane: compute") == ""
    assert clock.at == local(2026, 12, 7, 22)
    assert control.slept == [60.0, 60.0]  # the clock looked at again each minute
    assert said == [
        "outside maintenance windows: waiting until 2026-12-07 22:00 CET to begin data plane: "
        "compute",
        "maintenance window open: beginning data plane: compute",
    ]
    assert waiting == ["outside maintenance windows: waiting until 2026-12-07 22:00 CET", ""]
    assert gate.hold("next") == ""  # open: no wait, nothing said
    assert len(said) == 2


def test_a_long_wait_looks_at_the_clock_again_every_minute_and_a_pause_ends_it() -> None:
    clock = Clock(local(2026, 12, 7, 12))
    control = Sleeper(clock)
    waiting: list[str] = []
    gate = WindowGate(windows(WEEKNIGHTS), control, lambda text: None, waiting.append, clock)
    assert gate.hold("x") == ""
    assert max(control.slept) == 60.0 and len(control.slept) == 600
    clock.at = local(2026, 12, 8, 12)
    control.ask(Request.PAUSE)
    with pytest.raises(PauseRequested):
        gate.hold("x")
    assert waiting[-1] == ""  # the run's reason no longer says it waits


def test_a_gate_when_no_window_opens_again_says_why_the_run_pauses() -> None:
    over = windows({"start": "2026-01-01T00:00:00Z", "duration": 60})
    gate = WindowGate(over, Control(), lambda text: None, lambda text: None, Clock(utc(2026, 2, 1)))
    assert gate.hold("x") == "outside maintenance windows: none opens after 2026-02-01 00:00 UTC"


def test_a_run_waiting_for_its_window_says_so_in_its_reason_and_pauses_on_request(
    tmp_path: Path, fake_world: World
) -> None:
    env = Env(tmp_path)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    spec = _spec(windows=[{"start": later, "duration": "1h"}])
    found = plan_upgrade(spec, [], None, inventory=upgrade_fakes.cloud(computes=1))
    assert found.plan.stages[0].window.startswith(
        (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    )
    result: list[Any] = []
    observer = PlainObserver(env.out)
    thread = threading.Thread(target=lambda: result.append(env.service.start(found, observer)))
    thread.start()
    deadline = time.monotonic() + 20
    while not [r for r in env.journal.runs("upgrade") if r.reason]:
        assert time.monotonic() < deadline, "the run never said it waits"
        time.sleep(0.02)
    (waiting,) = env.journal.runs("upgrade")
    assert waiting.state is RunState.RUNNING
    assert waiting.reason.startswith("outside maintenance windows: waiting until ")
    env.service.pause(None)
    thread.join(30)
    assert result[0].state is RunState.PAUSED
    assert not result[0].reason  # paused on request, not waiting any more
    assert WORLD.calls == []  # nothing begun outside the window
    # a rollback is not held by windows
    assert env.rollback().state is RunState.ROLLED_BACK


def test_a_run_no_window_opens_for_again_pauses_saying_so(
    tmp_path: Path, fake_world: World
) -> None:
    env = Env(tmp_path)
    spec = _spec(windows=[{"start": "2020-01-01T00:00:00Z", "duration": "1h"}])
    run = env.start(spec, computes=1)
    assert run.state is RunState.PAUSED
    assert run.reason.startswith("outside maintenance windows: none opens after ")
    assert WORLD.calls == []
