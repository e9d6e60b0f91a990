"""The crash matrix's harness, the same for every run kind.

The kill points come from the kind's own step list (``ephyra.forklift.steps.STEPS``, the
steps of a files run...): a *boundary* after each step's ``done`` line, and *mid-step*
inside a step, where the run is held (a gate file a command waits on, a slow fake
driver). A case runs ``ephyra`` in a process of its own, kills it -9 at its point, checks
where the kill landed, runs the recovery (resume, rollback, abort) in a new process, and
ends with the kind's invariants (nothing lost, nothing done twice, the journal's states
right).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import yaml

from ephyra.engine.journal import Journal
from tests.functional.ephyra_cli import Ephyra, Result

BOUNDARY = "boundary"
MID = "mid-step"
DIRECTIONS = ("forward", "rollback")


@dataclass(frozen=True)
class KillPoint:
    """Where a run is killed: in which direction, at which step, and where in it."""

    phase: str
    step: str
    where: str

    @property
    def boundary(self) -> bool:
        return self.where == BOUNDARY

    def __str__(self) -> str:
        return f"{self.phase}:{self.step}:{self.where}"


def kill_points(
    steps: Iterable[str],
    mid: Sequence[str] | None = None,
    phases: Sequence[str] = DIRECTIONS,
) -> list[KillPoint]:
    """A boundary after every step of ``steps``, and a kill in the middle of each step of
    ``mid`` (every step when None: a kind that can hold any step), in each phase."""
    titles = list(steps)
    inside = titles if mid is None else list(mid)
    unknown = set(inside) - set(titles)
    assert not unknown, f"mid-step kill points at steps the kind has not: {unknown}"
    return [
        KillPoint(phase, title, where)
        for phase in phases
        for title in titles
        for where in (BOUNDARY, MID)
        if where == BOUNDARY or title in inside
    ]


def done_line(item: str, step: str) -> Callable[[str], bool]:
    """The progress line of ``item``'s ``step`` done: a step boundary."""
    return lambda line: line.endswith(f"{item}: {step} done") or f"{item}: {step} done " in line


def said(text: str) -> Callable[[str], bool]:
    return lambda line: text in line


def reached(titles: Sequence[str], item: str, step: str) -> Callable[[str], bool]:
    """``item``'s ``step`` (one of ``titles``, in order) done in this process; an error as
    soon as the process goes on to a later step of ``item`` without doing ``step`` (the
    last kill landed past it)."""
    later = titles[titles.index(step) + 1 :]

    def match(line: str) -> bool:
        if done_line(item, step)(line):
            return True
        skipped = [t for t in later if line.endswith(f"{item}: {t} started")]
        assert not skipped, f"{item}: {step} not done by this process: {line!r}"
        return False

    return match


def in_order(points: Iterable[KillPoint], titles: Sequence[str], phase: str) -> list[KillPoint]:
    """The kill points of ``phase`` in the order a run reaches them: each step's middle,
    then its end."""
    chosen = [p for p in points if p.phase == phase]
    return sorted(chosen, key=lambda p: (titles.index(p.step), p.boundary))


class Killable(Protocol):
    def kill(self) -> None: ...


class Finishable(Killable, Protocol):
    def finish(self, timeout: float = ...) -> Result: ...


def wait_file(path: Path, timeout: float = 120) -> None:
    """Until ``path`` exists (a command held at a gate says so by making it)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


class Gates:
    """Gate files under ``root`` that the ``command`` workload's hooks wait on: while the
    gate of a step is closed, its hook marks that it waits (``held-<step>-<node>``) and
    waits; every gate starts open."""

    def __init__(self, root: Path, steps: Sequence[str]) -> None:
        self.root, self.steps = root, tuple(steps)
        root.mkdir()
        for step in self.steps:
            self.open(step)

    def hook(self, step: str) -> str:
        gate, held = self.root / f"open-{step}", self.root / f"held-{step}"
        return (
            f'[ -e {gate} ] || {{ touch "{held}-$EPHYRA_NODE_NAME"; '
            f"until [ -e {gate} ]; do sleep 0.05; done; }}"
        )

    def workload(self) -> list[str]:
        """The options of a forklift whose workload's hooks are the gates'."""
        hooks = [["--workload-opt", f"{step}={self.hook(step)}"] for step in self.steps]
        return ["--workload", "command", *(opt for hook in hooks for opt in hook)]

    def open(self, step: str) -> None:
        (self.root / f"open-{step}").touch()

    def close(self, step: str) -> None:
        (self.root / f"open-{step}").unlink()

    def held(self, step: str, node: str) -> Path:
        """The mark a hook of ``step`` makes while ``node`` waits at the closed gate."""
        return self.root / f"held-{step}-{node}"

    def forget(self) -> None:
        """The marks of hooks gone (before a new process runs them again)."""
        for mark in self.root.glob("held-*"):
            mark.unlink()

    def close_all(self) -> None:
        for step in self.steps:
            self.close(step)


def journal_state(ephyra: Ephyra, kind: str) -> str:
    """The state of ``ephyra``'s last run of ``kind`` in its journal (read here: no
    process to start for it)."""
    journal = Journal(f"sqlite:///{ephyra.journal_file}")
    try:
        return journal.runs(kind)[-1].state.value
    finally:
        journal.close()


def shown_status(ephyra: Ephyra, kind: str) -> dict[str, Any]:
    """What ``ephyra KIND status`` shows of the last run of ``kind``."""
    shown: dict[str, Any] = yaml.safe_load(ok(ephyra("--format", "yaml", kind, "status")).out)
    return shown


def ok(result: Result, code: int = 0) -> Result:
    assert result.code == code, f"exit {result.code}\n{result.out}\n{result.err}"
    return result


@dataclass
class Crash:
    """One case of the matrix.

    ``held`` waits until the run is at its point (returns when it is); ``landed`` checks
    the world and the journal right after the kill; ``recover`` is the command run in a
    new process; ``check`` the kind's invariants after it."""

    held: Callable[[], object]
    landed: Callable[[], object]
    recover: Callable[[], Result]
    check: Callable[[], object]

    def run(self, victim: Killable) -> Result:
        self.held()
        victim.kill()
        self.landed()
        recovered = ok(self.recover())
        self.check()
        return recovered


@contextmanager
def reported(report: list[str], kind: str, point: KillPoint | str) -> Iterator[None]:
    """Say in the suite's report whether the kill at ``point`` was survived."""
    try:
        yield
    except BaseException:
        report.append(f"crash matrix: {kind} killed at {point}: NOT survived")
        raise
    report.append(f"crash matrix: {kind} killed at {point}: survived")


P = TypeVar("P", bound=Finishable)


@dataclass(frozen=True)
class Stop(Generic[P]):
    """One kill of a :class:`Chain`: where, how to know the run is there (``held``, given
    the process driving it), and what must be true right after the kill (``landed``)."""

    point: KillPoint
    held: Callable[[P], object]
    landed: Callable[[], object] = lambda: None


@dataclass
class Chain(Generic[P]):
    """One run killed -9 at several points in turn: the run is started, killed at the
    first stop, resumed in a new process, killed there at the next stop, and so on; the
    last resume runs to its end and ``check`` gives the kind's invariants. Each kill is
    reported as one case of the matrix. A chain costs one run where one case per point
    costs one run each; each kill still lands where the stop says (``landed``) and is
    recovered by a new process."""

    start: Callable[[], P]
    resume: Callable[[], P]
    check: Callable[[], object]

    def run(self, stops: Sequence[Stop[P]], report: list[str], kind: str) -> Result:
        """Each kill is reported survived once the chain's end is checked."""
        proc, at = self.start(), "start"
        try:
            for stop in stops:
                at = str(stop.point)
                stop.held(proc)
                proc.kill()
                stop.landed()
                proc = self.resume()
            at = "the end"
            finished = ok(proc.finish())
            self.check()
        except BaseException:
            report.append(f"crash matrix: {kind} chain: NOT survived at {at}")
            raise
        report.extend(f"crash matrix: {kind} killed at {s.point}: survived" for s in stops)
        return finished


def stops_at(
    points: Iterable[KillPoint],
    titles: Sequence[str],
    phase: str,
    held: Callable[[KillPoint, P], object],
    landed: Callable[[KillPoint], object],
) -> list[Stop[P]]:
    """A :class:`Stop` at every point of ``phase``, in the order the run reaches them."""
    return [
        Stop(point, held=partial(held, point), landed=partial(landed, point))
        for point in in_order(points, titles, phase)
    ]


def forward_then_back(
    start: Callable[[], P],
    rollback: Callable[[], P],
    resume: Callable[[], P],
    stops: Callable[[str], Sequence[Stop[P]]],
    check: Callable[[str], object],
    report: list[str],
    kind: str,
    before: Callable[[], object] = lambda: None,
) -> None:
    """A run killed at every stop of its forward phase, each kill resumed by a new process
    killed at the next, then its rollback killed the same way (:class:`Chain`);
    ``check(phase)`` gives the invariants at each phase's end, ``before`` readies each
    phase (closes the gates its mid-step kills wait at)."""
    for phase, begin in (("forward", start), ("rollback", rollback)):
        before()
        chain = Chain(start=begin, resume=resume, check=partial(check, phase))
        chain.run(stops(phase), report, kind)
