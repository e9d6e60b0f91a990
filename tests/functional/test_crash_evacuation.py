"""The evacuation's crash matrix against real Nova (harness: ``tests.functional.crash``).

The kill points come from the kind's step lists (``ephyra.compute.steps.FORWARD`` and
``ROLLBACK``): a boundary after every step, and mid-drain (a live migration under way in
Nova); the other steps are one call to Nova each, with nothing in the middle to kill.

- Forward: ONE evacuation is killed -9 at every point in turn, each kill resumed by a new
  ``ephyra host resume`` that is itself killed at the next point; the last resume ends it.
- Abort: an evacuation killed mid-drain is aborted in a new process.
- Rollback: that aborted run's rollback is killed at every rollback boundary in turn, each
  resumed by a new process.

A process is held at a boundary by ``tests.functional.holds.held_ephyra`` (stopped before
the next step's first effect, or before the phase's outcome is written), so each kill
lands exactly there, whatever the machine's speed; where it landed is checked in Nova and
in the journal. After each chain, the kind's invariants: the host the run put in
maintenance is enabled again by a rollback only (never one someone else disabled), no
server lost or migrated twice (Nova's migrations list), the budget held across every
resume, the journal's states right."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ephyra.compute.kind import EvacuationKind
from ephyra.compute.steps import FORWARD, ROLLBACK, DrainHost
from ephyra.operations.local import Local
from testbed.nova import NovaTestbed
from testbed.nova_watch import MigrationWatch, migrations_of, wait_until
from tests.functional.crash import (
    MID,
    Chain,
    Crash,
    KillPoint,
    Stop,
    done_line,
    kill_points,
    ok,
    reported,
    said,
)
from tests.functional.ephyra_cli import EPHYRA, Background, Ephyra, Result
from tests.functional.holds import HELD, Gate, held_ephyra, migrating
from tests.functional.test_host import evacuate, hosts_of, service

pytestmark = pytest.mark.functional
HOST = "compute-1"
#: Disabled by someone else before the run, evacuated with HOST: never enabled by it.
THEIRS = "compute-2"
TICKET = "ticket 7: bad DIMM"
SERVERS = 2
ONE_AT_A_TIME = ("--concurrency", "1", "--per-host", "1")
#: Where a migration's status stops changing.
ENDED = {"completed", "error", "failed", "cancelled", "done", "confirmed"}
LIVE_DONE = [("live-migration", "completed")]

FORWARD_POINTS = kill_points([s.title for s in FORWARD], mid=[DrainHost.title], phases=["forward"])
ROLLBACK_POINTS = kill_points([s.title for s in ROLLBACK], mid=[], phases=["rollback"])
#: What a held process waits in, to be killed there (``module:function``, call number).
#: A boundary is held before the next step's first effect; after the last step, before
#: the host's outcome (forward) or the run's state (rollback: a second host runs beside
#: it) is written. In the rollback, ``switch_off`` is reached for HOST only (THEIRS is
#: someone else's: left disabled without it), so the kill lands in HOST's flow.
HOLDS: dict[str, tuple[str, int]] = {
    "forward:record:boundary": ("ephyra.compute.steps:MaintenanceOn.apply", 1),
    "forward:maintenance-on:boundary": ("ephyra.compute.steps:DrainHost.apply", 1),
    "forward:drain:boundary": ("ephyra.compute.steps:VerifyEmpty.apply", 1),
    "forward:verify-empty:boundary": ("ephyra.compute.records:OUTCOMES.save", 2),
    "rollback:restart-stopped:boundary": ("ephyra.compute.steps:switch_off", 1),
    "rollback:maintenance-off:boundary": ("ephyra.engine.driver:RunDriver.set_state", 2),
}


def in_run_order(points: list[KillPoint], steps: list[str]) -> list[KillPoint]:
    """The order a run meets ``points``: step by step, mid-step before the boundary."""
    return sorted(points, key=lambda p: (steps.index(p.step), p.boundary))


@functools.cache
def _local(journal: Path) -> Local:
    return Local(journal_url=f"sqlite:///{journal}")


def status(ephyra: Ephyra) -> dict[str, Any]:
    """The latest evacuation as ``ephyra host status -f json`` shows it: the same
    operation, run in this process (no start-up to pay after each kill)."""
    return _local(ephyra.journal_file).status(EvacuationKind.name, None)


def outcomes(shown: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each host's outcome forward and in rollback, as the journal has it."""
    return {h["host"]: (h["forward"], h["rollback"]) for h in shown["hosts"]}


def moved(shown: dict[str, Any]) -> int:
    return int(shown["counts"].get("moved", 0))


def moves(conn: Any, ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Every migration of each server, as Nova lists them."""
    return {sid: migrations_of(conn, sid) for sid in ids}


def ours(nova: NovaTestbed, host: str, run: str) -> bool:
    """The host is in maintenance, put there by the run ``run``."""
    svc = service(nova, host)
    return bool(
        svc["status"] == "disabled"
        and svc["disabled_reason"].startswith(f"ephyra evacuate run {run}")
    )


def theirs(nova: NovaTestbed) -> bool:
    """THEIRS is disabled as someone else left it."""
    svc = service(nova, THEIRS)
    return bool((svc["status"], svc["disabled_reason"]) == ("disabled", TICKET))


def disable_theirs(nova: NovaTestbed) -> None:
    svc = service(nova, THEIRS)
    nova.connect().compute.put(
        f"/os-services/{svc['id']}",
        json={"status": "disabled", "disabled_reason": TICKET},
        microversion="2.80",
    )


class Runs:
    """``ephyra`` processes driving one run: held at a kill point, or free to run on."""

    def __init__(self, ephyra: Ephyra, gate: Gate) -> None:
        self.ephyra, self.gate = ephyra, gate

    def at(self, point: KillPoint | None, *args: str) -> Background:
        """``ephyra -v ARGS``, held at ``point`` if it is one a process is held at."""
        hold = HOLDS.get(str(point)) if point is not None else None
        prefix = held_ephyra(hold[0], hold[1], self.gate) if hold else EPHYRA
        return Background([*prefix, "-v", *args], self.ephyra.env)

    def resumes(self, points: list[KillPoint]) -> Callable[[], Background]:
        """A new ``host resume`` for each stop after the first, held at the next one;
        the last runs to the end."""
        following: Iterator[KillPoint | None] = iter([*points[1:], None])
        return lambda: self.at(next(following), "host", "resume")


def held_at(point: KillPoint, after: Callable[[str], bool]) -> Callable[[Background], object]:
    """Until the process is held at ``point``, having said ``after`` before."""
    target, call = HOLDS[str(point)]

    def held(proc: Background) -> None:
        proc.wait_for(said(f"{HELD} {target} call {call}"))
        assert any(after(line) for line in proc.lines), proc.lines[-20:]

    return held


def drain_end(line: str) -> bool:
    """The drain's own end, as it says it (it has no "done" line of its own)."""
    return f"{HOST}: " in line and " server(s) moved in " in line


def migrating_from(conn: Any) -> Callable[[Background], object]:
    """Until the process has started a live migration from HOST and Nova runs it: a kill
    now lands inside it (the testbed's fake driver takes about 5 s to move a server)."""

    def held(proc: Background) -> None:
        proc.wait_for(said(f"live from {HOST} started"))
        wait_until(lambda: migrating(conn), what="a live migration running in Nova")

    return held


def test_evacuation_killed_at_every_forward_point_and_resumed_each_time(
    clean_nova: NovaTestbed, tmp_path: Path, report: list[str]
) -> None:
    ephyra = Ephyra(clean_nova.clouds_yaml, tmp_path / "state")
    conn = clean_nova.connect()
    ids = clean_nova.boot(HOST, SERVERS, project="alpha")
    points = in_run_order(FORWARD_POINTS, [s.title for s in FORWARD])
    runs = Runs(ephyra, Gate(tmp_path / "never-opened"))
    run = ""

    def nobody_driving() -> dict[str, Any]:
        """Right after a kill: the run unfinished in the journal, its host not yet done."""
        nonlocal run
        shown = status(ephyra)
        run = run or shown["id"]
        assert (shown["id"], shown["state"], shown["phase"]) == (run, "running", "forward")
        assert outcomes(shown) == {HOST: ("running", "")}, shown
        return shown

    def untouched() -> None:  # record: nothing changed in Nova yet
        nobody_driving()
        assert service(clean_nova, HOST)["status"] == "enabled"
        assert len(clean_nova.servers_on(HOST)) == SERVERS

    def in_maintenance() -> None:  # maintenance-on: disabled by this run, nothing moved
        nobody_driving()
        assert ours(clean_nova, HOST, run)
        assert len(clean_nova.servers_on(HOST)) == SERVERS
        assert all(migrations_of(conn, sid) == [] for sid in ids)

    def mid_drain() -> None:  # a live migration under way in Nova, the drain unfinished
        shown = nobody_driving()
        assert ours(clean_nova, HOST, run)
        assert [s["outcome"] for s in shown["servers"]] == ["moving"], shown
        assert len(clean_nova.servers_on(HOST)) >= SERVERS - 1
        assert sum(migrations_of(conn, sid) != [] for sid in ids) == 1  # one at a time

    def drained() -> None:  # drain and verify-empty: every server gone, each moved once
        shown = nobody_driving()
        assert ours(clean_nova, HOST, run)
        assert clean_nova.servers_on(HOST) == [] and moved(shown) == SERVERS, shown
        assert all(migrations_of(conn, sid) == LIVE_DONE for sid in ids), moves(conn, ids)

    stops = {
        "forward:record:boundary": Stop(
            points[0], held_at(points[0], done_line(HOST, "record")), untouched
        ),
        "forward:maintenance-on:boundary": Stop(
            points[1], held_at(points[1], done_line(HOST, "maintenance-on")), in_maintenance
        ),
        "forward:drain:mid-step": Stop(points[2], migrating_from(conn), mid_drain),
        "forward:drain:boundary": Stop(points[3], held_at(points[3], drain_end), drained),
        "forward:verify-empty:boundary": Stop(
            points[4], held_at(points[4], done_line(HOST, "verify-empty")), drained
        ),
    }
    assert [str(p) for p in points] == list(stops), "a kill point of the kind has no stop"

    def check() -> None:
        shown = status(ephyra)
        assert (shown["state"], outcomes(shown)) == ("succeeded", {HOST: ("drained", "")})
        assert moved(shown) == SERVERS, shown
        assert clean_nova.servers_on(HOST) == []
        assert all(m == LIVE_DONE for m in moves(conn, ids).values()), moves(conn, ids)
        assert ours(clean_nova, HOST, run)  # an evacuated host stays in maintenance

    chain: Chain[Background] = Chain(
        start=lambda: runs.at(points[0], *evacuate(HOST, *ONE_AT_A_TIME)),
        resume=runs.resumes(points),
        check=check,
    )
    with MigrationWatch(conn, {sid: "alpha" for sid in ids}, interval=0.5) as watch:
        ended = chain.run(list(stops.values()), report, "evacuation")
    assert f"run {run} succeeded" in ended.out, ended.out
    # the budget (one move at a time) held across every resume, and was used
    assert watch.peak["total"] == 1, watch.peak


def test_killed_mid_drain_aborted_then_rollback_killed_at_every_boundary(
    clean_nova: NovaTestbed, tmp_path: Path, report: list[str]
) -> None:
    """Two hosts: HOST, put in maintenance by the run, and THEIRS, disabled by someone
    else before it (and empty): the rollback enables HOST and leaves THEIRS as it was."""
    ephyra = Ephyra(clean_nova.clouds_yaml, tmp_path / "state")
    conn = clean_nova.connect()
    ids = clean_nova.boot(HOST, SERVERS, project="alpha")
    disable_theirs(clean_nova)
    runs = Runs(ephyra, Gate(tmp_path / "never-opened"))
    proc = runs.at(None, *evacuate(HOST, THEIRS, *ONE_AT_A_TIME))
    run = ""
    where: dict[str, str] = {}  # server -> host, once the abort's moves have ended

    def landed() -> None:
        """Both hosts in maintenance, the drain unfinished, nobody driving the run."""
        nonlocal run
        shown = status(ephyra)
        run = shown["id"]
        assert shown["state"] == "running" and outcomes(shown)[HOST] == ("running", ""), shown
        assert ours(clean_nova, HOST, run) and theirs(clean_nova)
        assert len(clean_nova.servers_on(HOST)) >= SERVERS - 1, "the drain was done"

    def abort() -> Result:
        aborted = ok(ephyra("host", "abort"))
        assert f"run {run[:8]} aborted; its hosts stay in maintenance until rollback" in (
            aborted.out
        )
        return aborted

    def aborted() -> None:
        shown = status(ephyra)
        assert shown["state"] == "aborted", shown
        assert ours(clean_nova, HOST, run) and theirs(clean_nova)
        for sid in ids:  # the migration under way at the kill ends in Nova, once
            wait_until(
                lambda sid=sid: all(s in ENDED for _, s in migrations_of(conn, sid)),
                what=f"the migrations of {sid} ended",
            )
        where.update(hosts_of(clean_nova, ids))
        assert list(where.values()).count(HOST) == SERVERS - 1, where  # no move after the kill

    with reported(report, "evacuation", KillPoint("abort", DrainHost.title, MID)):
        Crash(
            held=lambda: migrating_from(conn)(proc),
            landed=landed,
            recover=abort,
            check=aborted,
        ).run(proc)

    points = in_run_order(ROLLBACK_POINTS, [s.title for s in ROLLBACK])

    def rolling_back() -> dict[str, Any]:
        shown = status(ephyra)
        assert (shown["state"], shown["phase"]) == ("rolling-back", "rollback"), shown
        assert theirs(clean_nova)  # never enabled, whoever drives the rollback
        assert hosts_of(clean_nova, ids) == where  # servers stay where they are
        return shown

    def before_maintenance_off() -> None:
        rolling_back()
        assert ours(clean_nova, HOST, run)

    def restored() -> None:
        shown = rolling_back()
        back = {h: o[1] for h, o in outcomes(shown).items()}
        assert back == {HOST: "restored", THEIRS: "restored"}, shown
        assert service(clean_nova, HOST)["status"] == "enabled"

    stops = {
        "rollback:restart-stopped:boundary": Stop(
            points[0],
            held_at(points[0], done_line(HOST, "restart-stopped")),
            before_maintenance_off,
        ),
        "rollback:maintenance-off:boundary": Stop(
            points[1], held_at(points[1], done_line(HOST, "maintenance-off")), restored
        ),
    }
    assert [str(p) for p in points] == list(stops), "a kill point of the kind has no stop"

    def check() -> None:
        shown = status(ephyra)
        assert shown["state"] == "rolled-back", shown
        assert outcomes(shown)[HOST][1] == outcomes(shown)[THEIRS][1] == "restored", shown
        assert service(clean_nova, HOST)["status"] == "enabled"  # this run had disabled it
        assert theirs(clean_nova)  # someone else's: left as it was
        assert hosts_of(clean_nova, ids) == where
        done = moves(conn, ids)
        assert all(len(m) <= 1 for m in done.values()), done  # nobody migrated twice
        assert sum(m == LIVE_DONE for m in done.values()) >= 1, done

    ended = Chain(
        start=lambda: runs.at(points[0], "host", "rollback"),
        resume=runs.resumes(points),
        check=check,
    ).run(list(stops.values()), report, "evacuation")
    assert f"run {run} rolled-back" in ended.out, ended.out
