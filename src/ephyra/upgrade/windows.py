"""Maintenance windows: the times an upgrade may start a stage.

The specification's ``windows:``, a list; each window is either a schedule (a 5-field
cron expression for when it opens, and how long it stays open) or one explicit stretch
of time::

    windows:
      - {cron: "0 22 * * 1-5", duration: 4h, timezone: Europe/Berlin}  # weeknights
      - {start: "2026-12-24T22:00:00+01:00", end: "2026-12-25T06:00:00+01:00"}
      - {start: "2026-12-26 22:00", duration: 8h, timezone: Europe/Berlin}

A cron expression is read in its window's ``timezone`` (default UTC), as the wall clock
there shows it: ``0 22 * * 1-5`` opens at 22:00 in Berlin winter and summer alike. A
``duration`` is time elapsed (``4h``, ``90m``, ``1h30m``, ``2d``, or seconds), so a
window open across a change of the clock still lasts that long. A start the clock skips
(spring) opens at the first minute after the gap; a start the clock shows twice (autumn)
opens at both, and windows that overlap or touch are one. Explicit times are ISO 8601;
one without an offset is read in the window's ``timezone``.

No windows: always open. With windows, a stage still to do starts only inside one; a
stage in flight when its window ends finishes, and the next one waits for the next
window (:class:`WindowGate`). Going back (a rollback) is never held by windows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from ephyra.engine.control import Control
from ephyra.errors import UsageError

#: Seconds a waiting run sleeps at most before it looks at the clock again.
LOOK_AGAIN = 60.0
#: Windows that touch or overlap followed at most this many times to find where they end.
MERGED = 1000
DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def seconds_of(value: object, key: str) -> float:
    """``4h``, ``1h30m``, ``90m``, ``2d``, ``45s`` or a number, in seconds; positive."""
    if isinstance(value, bool):
        raise UsageError(f"{key}: a duration (4h, 90m, 1h30m, or seconds), not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        found = DURATION.match(str(value).strip())
        if not found or not any(found.groups()):
            raise UsageError(f"{key}: a duration (4h, 90m, 1h30m, or seconds), not {value!r}")
        d, h, m, s = (int(g or 0) for g in found.groups())
        seconds = float(((d * 24 + h) * 60 + m) * 60 + s)
    if not seconds > 0:
        raise UsageError(f"{key}: must be a positive duration")
    return seconds


def zone(name: str, key: str = "timezone") -> tzinfo:
    """The time zone ``name`` (IANA: ``Europe/Berlin``, ``UTC``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"{key}: not a time zone: {name!r} (e.g. Europe/Berlin, UTC)") from exc


def shown(at: datetime, where: tzinfo) -> str:
    """``2026-12-07 22:00 CET`` (``22:00:30`` when not on the minute)."""
    local = at.astimezone(where)
    return local.strftime("%Y-%m-%d %H:%M" + (":%S" if local.second else "") + " %Z")


@dataclass(frozen=True)
class Window:
    """One window of ``windows:``: ``cron`` and ``duration``, or ``start`` and ``end`` (or
    ``start`` and ``duration``); times without an offset are in ``timezone``."""

    cron: str = ""
    duration: float = 0.0  # seconds
    timezone: str = "UTC"
    start: str = ""  # ISO 8601
    end: str = ""

    def __post_init__(self) -> None:
        _ = self.zone  # checked now, not when the run first asks
        if self.cron:
            if self.start or self.end:
                raise UsageError("cron: a window opens by its cron or at its start, not both")
            if len(self.cron.split()) != 5 or not croniter.is_valid(self.cron):
                raise UsageError(
                    f"cron: a 5-field cron expression (minute hour day month weekday), "
                    f"not {self.cron!r}"
                )
            if not self.duration > 0:
                raise UsageError("duration: required with cron (how long the window stays open)")
            try:
                self.opening(datetime(2000, 1, 1, tzinfo=UTC))
            except CroniterError as exc:
                raise UsageError(f"cron: {self.cron!r} never opens") from exc
            return
        if not self.start:
            raise UsageError("start: required, unless the window opens by a cron")
        if bool(self.end) == bool(self.duration):
            raise UsageError("end: a window with a start has an end or a duration (one of them)")
        if not self.ends > self.starts:
            raise UsageError(f"end: {self.end!r} is not after the start {self.start!r}")

    @cached_property
    def zone(self) -> tzinfo:
        return zone(self.timezone)

    def _time(self, key: str) -> datetime:
        text = getattr(self, key)
        try:
            at = datetime.fromisoformat(text)
        except ValueError as exc:
            raise UsageError(
                f"{key}: an ISO 8601 time (2026-12-24T22:00:00+01:00), not {text!r}"
            ) from exc
        return (at if at.tzinfo else at.replace(tzinfo=self.zone)).astimezone(UTC)

    @cached_property
    def starts(self) -> datetime:
        """An explicit window's start, in UTC."""
        return self._time("start")

    @cached_property
    def ends(self) -> datetime:
        """An explicit window's end, in UTC."""
        return self._time("end") if self.end else self.starts + timedelta(seconds=self.duration)

    def opening(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The first time this window is open that ends after ``at`` (open at ``at`` or
        opening later): its start and end in UTC; None if it never opens again."""
        if not self.cron:
            return (self.starts, self.ends) if self.ends > at else None
        length = timedelta(seconds=self.duration)
        since = (at.astimezone(UTC) - length).astimezone(self.zone)
        opens = croniter(self.cron, since).get_next(datetime).astimezone(UTC)
        return opens, opens + length


@dataclass(frozen=True)
class Windows:
    """``windows:`` of a specification (none: always open)."""

    each: tuple[Window, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.each)

    def _openings(self, at: datetime) -> list[tuple[datetime, datetime]]:
        return [o for o in (w.opening(at) for w in self.each) if o is not None]

    def next_open(self, at: datetime) -> datetime | None:
        """``at`` if a window is open then, else when the next one opens; None if none
        opens again. Always ``at`` without windows."""
        if not self.each:
            return at
        starts = [start for start, _ in self._openings(at)]
        if not starts:
            return None
        return max(at, min(starts))

    def open_until(self, at: datetime) -> datetime | None:
        """When the windows open at ``at`` close (those that overlap or touch are one);
        None if none is open at ``at``."""
        end = None
        for _ in range(MERGED):
            here = end or at
            ends = [stop for start, stop in self._openings(here) if start <= here]
            if not ends:
                break
            end = max(ends)
        return end

    def around(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The window open at ``at``: when it opened (the earliest of those that overlap
        at ``at``) and when it closes; None if none is."""
        end = self.open_until(at)
        if end is None:
            return None
        starts = [start for start, _ in self._openings(at) if start <= at]
        return min(starts), end

    @property
    def zone(self) -> tzinfo:
        """The time zone times are shown in: the first window's."""
        return self.each[0].zone if self.each else UTC


@dataclass(frozen=True)
class Slot:
    """Where the estimate puts a stage: the window it starts in (when that opened and
    closes) and when it starts and ends."""

    opens: datetime
    closes: datetime
    starts: datetime
    ends: datetime

    def describe(self, where: tzinfo) -> str:
        """``2026-12-07 22:00 CET`` and, when the stage starts later in it or runs past
        its end, what of it."""
        text = shown(self.opens, where)
        if self.starts > self.opens:
            text += f", from {shown(self.starts, where)}"
        if self.ends > self.closes:
            text += f", past its end at {shown(self.closes, where)}"
        return text


def schedule(windows: Windows, stages: Sequence[float], start: datetime) -> list[Slot | None]:
    """Stage after stage (each taking its estimated seconds) from ``start``, each begun
    in the window open then or waiting for the next, as a run does: its slot, or None
    for a stage no window opens for."""
    slots: list[Slot | None] = []
    at: datetime | None = start.astimezone(UTC)
    for seconds in stages:
        opens = windows.next_open(at) if at is not None else None
        found = windows.around(opens) if opens is not None else None
        if opens is None or found is None:
            slots.append(None)
            at = None
            continue
        ends = opens + timedelta(seconds=seconds)
        slots.append(Slot(found[0], found[1], opens, ends))
        at = ends
    return slots


def now() -> datetime:
    return datetime.now(UTC)


class WindowGate:
    """Holds a run outside its maintenance windows until the next opens, through the
    run's control (a pause or an abort ends the wait at once)."""

    def __init__(
        self,
        windows: Windows,
        control: Control,
        message: Callable[[str], None],
        waiting: Callable[[str], None],
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.windows, self.control, self.message = windows, control, message
        self.waiting, self.clock = waiting, clock

    def hold(self, stage: str) -> str:
        """'' once a window is open (after waiting for it, if need be); else why the run
        pauses: no window opens again. ``waiting`` is told what the run waits for while
        it waits, then ''."""
        said = ""
        try:
            while True:
                at = self.clock()
                opens = self.windows.next_open(at)
                if opens is None:
                    return f"outside maintenance windows: none opens after {shown(at, self.zone)}"
                if opens <= at:
                    if said:
                        self.message(f"maintenance window open: beginning {stage}")
                    return ""
                text = f"outside maintenance windows: waiting until {shown(opens, self.zone)}"
                if text != said:
                    self.waiting(text)  # recorded before said: who reads the line finds it
                    self.message(f"{text} to begin {stage}")
                    said = text
                self.control.sleep(min(LOOK_AGAIN, (opens - at).total_seconds()))
        finally:
            if said:
                self.waiting("")

    @property
    def zone(self) -> tzinfo:
        return self.windows.zone
