"""The files kind's crash matrix (``tests.kinds.files``) in-process, through ``ephyra
serve`` and through ``ephyra conductor``: the process that drives a held run is killed -9
at a step boundary or in the middle of a step, forward, rolling back or aborting; a new
process (a new server, another conductor) carries the run on; the files on disk, the
journal and the directory's ledger (one line per file really created or removed) say
nothing was lost or done twice.

Forward and rolling back, the points are killed in chains (``tests.functional.crash.Chain``):
one run killed at each point in turn, each kill recovered by a new process that is killed
at the next point, the last one running to the end. An abort ends a run, so each abort
case is a run of its own.

Kill points come from the kind's step list (``step-0`` ... ``step-<N-1>``) by
``tests.functional.crash.kill_points``: ``boundary`` at a step is the run held before it
starts (the previous one done), ``mid-step`` the run held with its file half made (or half
removed going back)."""

# ruff: noqa: F811 (the fixtures of test_kind_files, imported, are named as parameters)
from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from testbed.etcd import Etcd
from tests.functional.crash import Chain, KillPoint, Stop, kill_points, ok, reported
from tests.functional.ephyra_cli import EPHYRA, Background, Ephyra, Result
from tests.functional.test_api import ADMIN, Server
from tests.functional.test_conductor import Conductor
from tests.functional.test_kind_files import (  # noqa: F401 (the fixtures, used by name)
    assert_agrees,
    ephyra,
    events_until,
    files,
    finished,
    forward_gates,
    forward_ledger,
    journal_status,
    kinds_path,
    ledger,
    made,
    open_gates,
    rollback_ledger,
    run_id,
    status,
    steps_in,
    undo_gates,
    wait_text,
)

pytestmark = pytest.mark.functional
STEPS = 2
NAMES = [f"step-{i}" for i in range(STEPS)]
POINTS = kill_points(NAMES)
ADMIN_TOKEN = {"EPHYRA_TOKEN": ADMIN}


def index(point: KillPoint) -> int:
    return NAMES.index(point.step)


def gate(point: KillPoint) -> str:
    """The gate file the run waits at when it is at ``point``."""
    i, undo = index(point), "undo-" if point.phase == "rollback" else ""
    return f"{undo}begin-{i}" if point.boundary else f"{undo}end-{i}"


def gates_before(point: KillPoint) -> list[str]:
    """The gates to open for the run to reach ``point`` and wait there."""
    i = index(point)
    if point.phase == "rollback":  # newest first: the steps after it are taken back
        opened = undo_gates(i + 1, STEPS)
        return opened if point.boundary else [*opened, f"undo-begin-{i}"]
    return forward_gates(i) if point.boundary else [*forward_gates(i), f"begin-{i}"]


def landed_at(files: Path, ephyra: Ephyra, point: KillPoint, run: str) -> dict[str, Any]:
    """The files and the journal right after the kill: the run stopped where it was held,
    unfinished, driven by nobody."""
    i = index(point)
    shown = journal_status(ephyra, run)
    if point.phase == "rollback":
        half = [f"step-{i}" + ("" if point.boundary else ".undo")]
        assert made(files) == [f"step-{k}" for k in range(i)] + half
        assert (shown["state"], shown["phase"]) == ("rolling-back", "rollback")
        assert steps_in(shown) == [("done", "")] * (i + 1) + [("done", "done")] * (STEPS - i - 1)
    else:
        half = [] if point.boundary else [f"step-{i}.partial"]
        assert made(files) == [f"step-{k}" for k in range(i)] + half
        assert (shown["state"], shown["phase"]) == ("running", "forward")
        assert steps_in(shown) == [("done", "")] * i + [("pending", "")] * (STEPS - i)
    return shown


def ended(files: Path, ephyra: Ephyra, run: str, phase: str) -> None:
    """Every step done (or taken back), each file created (and removed) exactly once."""
    shown = status(ephyra, run)
    if phase == "rollback":
        assert (shown["state"], steps_in(shown)) == ("rolled-back", [("done", "done")] * STEPS)
        assert made(files) == [] and ledger(files) == rollback_ledger(STEPS)
    else:
        assert (shown["state"], steps_in(shown)) == ("succeeded", [("done", "")] * STEPS)
        assert made(files) == NAMES and ledger(files) == forward_ledger(STEPS)
    assert_agrees(files, shown)


def in_order(phase: str) -> list[KillPoint]:
    """The kill points of ``phase`` in the order a run reaches them (back: newest first)."""
    points = [p for p in POINTS if p.phase == phase]
    return points if phase == "forward" else sorted(points, key=lambda p: -index(p))


def stops(
    files: Path,
    ephyra: Ephyra,
    run: str,
    phase: str,
    wait: Callable[[Any, KillPoint], object],
    points: list[KillPoint] | None = None,
) -> list[Stop[Any]]:
    """A kill at every point of ``phase`` (or at ``points``) in turn: the gates up to the
    point opened, ``wait`` (given what drives the run) until the run waits there; after
    the last kill every gate opens, so the last resume runs to the end."""
    points = points or in_order(phase)

    def held(point: KillPoint, driving: Any) -> None:
        open_gates(files, *gates_before(point))
        wait(driving, point)

    def landed(point: KillPoint) -> None:
        landed_at(files, ephyra, point, run)
        if point == points[-1]:
            open_gates(files, *forward_gates(STEPS), *undo_gates(0, STEPS))

    return [
        Stop(p, held=lambda driving, p=p: held(p, driving), landed=lambda p=p: landed(p))
        for p in points
    ]


def finished_run(ephyra: Ephyra, files: Path) -> str:
    open_gates(files, *forward_gates(STEPS))
    args = ["--dir", str(files), "--steps", str(STEPS), "--hold"]
    return run_id(ok(ephyra("files", "start", "--yes", *args)), "succeeded")


# -- in-process (the command line) -------------------------------------------------------
@pytest.mark.parametrize("phase", ["forward", "rollback"])
def test_killed_at_every_point_each_time_resumed_by_a_new_process(
    ephyra: Ephyra, files: Path, report: list[str], phase: str
) -> None:
    """One run killed -9 at every point of ``phase`` in turn, each time resumed by
    ``files resume`` in a new process that is killed at the next point; the last one runs
    to the end (resume goes on in the run's direction): each file created (and removed)
    exactly once."""
    if phase == "rollback":
        run = finished_run(ephyra, files)
        args = ["files", "rollback", run]
    else:
        run = ""  # the latest run
        args = ["files", "start", "--yes", "--dir", str(files), "--steps", str(STEPS), "--hold"]

    def waiting(proc: Background, point: KillPoint) -> None:
        proc.wait_for(lambda line: line.endswith(f"{point.step}: waiting for {gate(point)}"))

    last = Chain(
        lambda: ephyra.background(*args),
        lambda: ephyra.background("files", "resume"),
        lambda: ended(files, ephyra, run, phase),
    ).run(stops(files, ephyra, run, phase, waiting), report, "files")
    state = "rolled-back" if phase == "rollback" else "succeeded"
    assert run_id(last, state) == status(ephyra, run)["id"]  # the resume said how it ended


# -- through ephyra serve ---------------------------------------------------------------
class Served:
    """``ephyra serve`` instances one after the other, each in a directory of its own."""

    def __init__(self, ephyra: Ephyra, tmp: Path) -> None:
        self.ephyra, self.tmp, self.count = ephyra, tmp, 0
        self.server = self.next()

    def next(self) -> Server:
        self.count += 1
        where = self.tmp / f"serve-{self.count}"
        where.mkdir()
        self.server = Server(self.ephyra, where, config={})
        return self.server

    def kill(self) -> None:
        self.server.proc.kill()  # kill -9: no shutdown, no journal update
        self.server.proc.wait(30)
        self.server.log.close()

    def cli(self, *args: str) -> Result:
        return self.ephyra("--url", self.server.url, *args, env=ADMIN_TOKEN)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *_: object) -> None:
        if self.server.proc.poll() is None:
            code = self.server.stop()
            log = (self.tmp / f"serve-{self.count}" / "serve.log").read_text()
            assert code in (0, -15) and "Traceback" not in log, log


class Driven:
    """A run as one server drives it: killed with its server (``kill``), and over when
    the run's events, after ``seq``, say it finished (``finish``)."""

    def __init__(self, served: Served, run: str, answer: requests.Response) -> None:
        assert answer.status_code == 202, answer.text
        self.served, self.run, self.seq = served, run, int(answer.json().get("seq", 0))

    def kill(self) -> None:
        self.served.kill()

    def finish(self, timeout: float = 300) -> Result:
        state = events_until(self.served.server, self.run, finished, self.seq)["state"]
        return Result(0 if state in ("succeeded", "rolled-back") else 1, state, "")

    def waiting(self, point: KillPoint) -> None:
        """Until this server's run waits at ``point``'s gate."""
        text = f"{point.step}: waiting for {gate(point)}"
        events_until(self.served.server, self.run, lambda e: e.get("text") == text, self.seq)


@pytest.mark.parametrize("phase", ["forward", "rollback"])
def test_server_killed_at_every_point_each_time_resumed_by_a_new_server(
    ephyra: Ephyra, files: Path, tmp_path: Path, report: list[str], phase: str
) -> None:
    """One run driven by ``ephyra serve`` killed -9 at every point of ``phase`` in turn,
    each time resumed by a new server (``POST .../resume``) that is killed at the next
    point; the last one runs to the end: each file created (and removed) exactly once."""
    with Served(ephyra, tmp_path) as served:
        if phase == "rollback":
            run = finished_run(ephyra, files)
        else:
            body = {"dir": str(files), "steps": STEPS, "hold": True}
            started = served.server.call("POST", "/v1/files/runs", json=body)
            run = started.json()["id"]

        def act(action: str) -> Driven:
            return Driven(served, run, served.server.call("POST", f"/v1/files/runs/{run}/{action}"))

        def start() -> Driven:
            return act("rollback") if phase == "rollback" else Driven(served, run, started)

        def resume() -> Driven:
            served.next()
            return act("resume")

        waiting = Driven.waiting
        Chain(start, resume, lambda: ended(files, ephyra, run, phase)).run(
            stops(files, ephyra, run, phase, waiting), report, "files via serve"
        )


@pytest.mark.parametrize("step", range(STEPS))
def test_server_killed_while_aborting_then_aborted_and_rolled_back_by_a_new_server(
    ephyra: Ephyra, files: Path, tmp_path: Path, report: list[str], step: int
) -> None:
    """The abort reached the run mid-step and holds before it removes the half-made file:
    the server is killed there; a new server's abort finishes it, its rollback takes back
    the finished steps."""
    where = f"abort:step-{step}:mid-step"
    with reported(report, "files via serve", where), Served(ephyra, tmp_path) as served:
        body = {"dir": str(files), "steps": STEPS, "hold": True}
        run = served.server.call("POST", "/v1/files/runs", json=body).json()["id"]
        open_gates(files, *forward_gates(step), f"begin-{step}")
        events_until(
            served.server, run, lambda e: e.get("text") == f"{NAMES[step]}: waiting for end-{step}"
        )
        aborting = served.server.call("POST", f"/v1/files/runs/{run}/abort")
        assert aborting.status_code in (200, 202), aborting.text
        events_until(
            served.server,
            run,
            lambda e: e.get("text") == f"{NAMES[step]}: waiting for abort-{step}",
        )
        served.kill()
        assert made(files) == [f"step-{k}" for k in range(step)] + [f"step-{step}.partial"]
        assert status(ephyra, run)["state"] == "running"  # the abort never finished
        served.next()
        open_gates(files, *[f"abort-{i}" for i in range(STEPS)])
        assert f"run {run[:8]} aborted" in ok(served.cli("files", "abort", run)).out
        shown = status(ephyra, run)
        assert shown["state"] == "aborted"
        assert steps_in(shown) == [("done", "")] * step + [("pending", "")] * (STEPS - step)
        assert made(files) == [f"step-{k}" for k in range(step)]
        assert_agrees(files, shown)
        open_gates(files, *undo_gates(0, STEPS))
        assert run_id(ok(served.cli("files", "rollback", run)), "rolled-back") == run
        assert made(files) == [] and ledger(files) == rollback_ledger(step)
        assert_agrees(files, status(ephyra, run))


# -- through ephyra conductor -----------------------------------------------------------
#: One boundary and one mid-step kill each way: a takeover waits for the claim's ttl.
CONDUCTED = [p for p in POINTS if p.step == NAMES[-1]]
TTL = 4


class Conductors:
    """Conductors on one board of their own, started one after the other."""

    def __init__(self, ephyra: Ephyra, tmp: Path, etcd: Etcd) -> None:
        self.ephyra, self.tmp = ephyra, tmp
        self.board = f"{etcd.url}/crash-{uuid.uuid4().hex[:10]}?ttl={TTL}"
        self.started: list[Conductor] = []

    def start(self) -> Conductor:
        name = f"c{len(self.started) + 1}"
        argv = [*EPHYRA, "-v", "conductor", "--board", self.board, "--name", name]
        one = Conductor(name, [*argv, "--retry-delay", "1"], self.ephyra.env, self.tmp / name)
        self.started.append(one)
        one.wait_for("waiting for jobs", timeout=120)
        return one

    def __enter__(self) -> Conductors:
        return self

    def __exit__(self, *_: object) -> None:
        for one in self.started:
            one.stop()


class Taking:
    """The run as one conductor drives it: killed -9 with the conductor; over when the
    conductor says it finished the run."""

    def __init__(self, conductor: Conductor, run: str, state: str) -> None:
        self.conductor, self.run, self.state = conductor, run, state

    def kill(self) -> None:
        self.conductor.kill9()

    def finish(self, timeout: float = 120) -> Result:
        line = f"finished files run {self.run}: run {self.state}; job consumed"
        self.conductor.wait_for(line, timeout=timeout)
        took = self.conductor.said(f"claimed files run {self.run}")
        assert took or self.conductor.said(f"resuming files run {self.run}")
        return Result(0, line, "")

    def waiting(self, point: KillPoint) -> None:
        wait_text(self.conductor.err, f"{point.step}: waiting for {gate(point)}")


@pytest.mark.parametrize("phase", ["forward", "rollback"])
def test_conductor_killed_at_each_point_then_the_next_takes_it_over(
    ephyra: Ephyra, files: Path, tmp_path: Path, etcd: Etcd, report: list[str], phase: str
) -> None:
    """One run on a board: its conductor killed -9 at each point of ``CONDUCTED`` in turn;
    a new conductor takes the run over once the claim's ttl is over, and is killed at the
    next point; the last one finishes it: nothing lost, nothing done twice."""
    conductors = Conductors(ephyra, tmp_path, etcd)
    board = ["--board", conductors.board]
    state = "rolled-back" if phase == "rollback" else "succeeded"
    run = finished_run(ephyra, files) if phase == "rollback" else ""
    taken: list[str] = [run]

    def start() -> Taking:
        first = conductors.start()
        if phase == "rollback":
            ok(ephyra("files", "rollback", run, *board))
        else:
            args = ["--dir", str(files), "--steps", str(STEPS), "--hold", *board]
            taken[0] = ok(ephyra("files", "start", "--yes", *args)).out.split()[1]
        return Taking(first, taken[0], state)

    def check() -> None:
        ended(files, ephyra, run, phase)  # the ledger: nothing done twice
        jobs = ok(ephyra("-f", "json", "conductor", "--board", conductors.board, "--list"))
        assert jobs.out.strip() == "[]"

    points = [p for p in in_order(phase) if p in CONDUCTED]
    with conductors:
        Chain(start, lambda: Taking(conductors.start(), taken[0], state), check).run(
            stops(files, ephyra, run, phase, Taking.waiting, points), report, "files via conductor"
        )
