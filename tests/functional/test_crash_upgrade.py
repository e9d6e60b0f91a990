"""The upgrade's crash matrix against real Nova (harness: ``tests.functional.crash``).

One forward chain kills one upgrade at every step boundary of a control-plane unit and of
a drained compute (the steps of ``ephyra.upgrade.steps`` and ``ephyra.compute.steps``),
mid-step in the control plane's command, in a drain's live migration and in a health
gate's wait; one rollback chain kills its rollback at every boundary of a compute, and
mid-step in a downgrade command (a compute's and the control plane's) and a gate's wait;
an abort case kills a run mid-step, aborts it from a new process, then rolls it back.
Each kill is resumed by a new process.

A boundary is exact: the process runs held (``tests.functional.holds.held_ephyra``)
before the step after it starts, and the kill lands there. Mid-step, the testbed's
command waits at a gate file (``hold-*``) or its new release starts only when the test
opens one (``late-*``). Invariants: every service at the release it should have, no
compute left disabled, the command strategy's ledger shows each unit upgraded (and
downgraded) exactly once, every server active, and the journal's states right.

The command checks the world first (it changes nothing when the service already runs the
version asked), as a strategy's command must; a command left running by the killed
process is ended by the test (it wrote its pid) before the run is resumed."""

# ruff: noqa: F811 (the fixture ephyra of test_upgrade, imported, is named as parameters)
from __future__ import annotations

import contextlib
import os
import shlex
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ephyra.compute import steps as compute_steps
from ephyra.engine.journal import Journal
from ephyra.upgrade import steps as upgrade_steps
from ephyra.upgrade.kind import UpgradeKind
from testbed.nova import NovaTestbed
from testbed.nova_watch import wait_until
from tests.functional.crash import (
    BOUNDARY,
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
    wait_file,
)
from tests.functional.ephyra_cli import EPHYRA, Background, Ephyra, Result
from tests.functional.holds import HELD, Gate, held_ephyra, migrating
from tests.functional.test_upgrade import (
    COMPUTES,
    CONTROL,
    _disabled,
    _hypervisors,
    _inventory,
    _spec,
    ephyra,  # noqa: F401 (the fixture, used by name)
)

pytestmark = pytest.mark.functional
UNITS = (*CONTROL, *COMPUTES)
#: Called at every step's start and end: held at its Nth call, a process stops exactly
#: at a step boundary (before the next step starts, after the last one ended).
ON_STEP = "ephyra.upgrade.runner:UpgradeRun._on_step"
NEXT = 3  # the first step's start and end, then the next one's start


def uid(unit: str) -> str:
    return f"control:{unit}@controller" if unit in CONTROL else f"data@{unit}"


def host(unit: str) -> str:
    return "controller" if unit in CONTROL else unit


class Upgrade:
    """An upgrade of the testbed (``units`` of it) to 2.0.0 whose command can be held,
    its ledger, and its journal."""

    def __init__(
        self, nova: NovaTestbed, ephyra: Ephyra, tmp: Path, units: Sequence[str] = UNITS
    ) -> None:
        self.nova, self.ephyra, self.dir = nova, ephyra, tmp / "gates"
        self.units = tuple(units)
        self.dir.mkdir()
        self.ledger = tmp / "ledger"
        self.inventory = _inventory(nova, tmp / "inventory.yaml")
        data = yaml.safe_load(self.inventory.read_text())
        wanted = {host(u) for u in self.units}
        data["hosts"] = [h for h in data["hosts"] if h["name"] in wanted]
        self.inventory.write_text(yaml.safe_dump(data))
        spec = _spec(nova, tmp / "spec.yaml")
        data = yaml.safe_load(spec.read_text())
        release = shlex.join(nova.release_command)
        name = 'n={service}; [ "$n" = nova-compute ] && n={host}; '
        d = self.dir
        hold = (
            f"if [ -e {d}/hold-$k ] && [ ! -e {d}/open-$k ]; then echo $$ > {d}/pid-$k; "
            f"touch {d}/held-$k; until [ -e {d}/open-$k ]; do sleep 0.05; done; fi; "
        )
        change = (
            f"if [ -e {d}/late-$k ]; then (until [ -e {d}/open-late-$k ]; do sleep 0.05; "
            f"done; {release} $n {{version}}) > /dev/null 2>&1 & "
            f"else {release} $n {{version}}; fi"
        )
        for what in ("upgrade", "downgrade"):
            data["strategies"]["testbed"][what] = (
                f'{name}k={what}-$n; if [ "$({release} $n)" != {{version}} ]; then '
                f"{hold}echo {what} $n >> {self.ledger}; {change}; fi"
            )
        spec.write_text(yaml.safe_dump(data))
        self.spec = spec
        self.gate = Gate(self.dir / "never")  # held processes are killed, never let go
        self._journal: Journal | None = None

    def start(self) -> list[str]:
        return [
            "upgrade", "start", "--yes", "--spec", str(self.spec),
            "--source", f"static:{self.inventory}", "--os-cloud", "nova",
        ]  # fmt: skip

    def run(self, args: Sequence[str], call: int | None) -> Background:
        """``ephyra -v ARGS`` in the background, held at step call ``call`` if given."""
        head = EPHYRA if call is None else held_ephyra(ON_STEP, call, self.gate)
        return Background([*head, "-v", *args], self.ephyra.env)

    # -- holding commands ----------------------------------------------------------------
    def hold(self, what: str, unit: str) -> None:
        """``what`` (upgrade, downgrade) of ``unit`` waits at its start until released."""
        (self.dir / f"hold-{what}-{unit}").touch()

    def late(self, what: str, unit: str) -> None:
        """``what`` of ``unit`` returns at once; its release starts once ``open_late``."""
        (self.dir / f"late-{what}-{unit}").touch()

    def held(self, what: str, unit: str) -> None:
        wait_file(self.dir / f"held-{what}-{unit}")

    def release(self, what: str, unit: str) -> None:
        """End the command the killed process left at the gate; let the next one pass."""
        pid = self.dir / f"pid-{what}-{unit}"
        if pid.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid.read_text()), signal.SIGKILL)
        (self.dir / f"open-{what}-{unit}").touch()

    def open_late(self, what: str, unit: str) -> None:
        (self.dir / f"open-late-{what}-{unit}").touch()

    # -- what the world and the journal say ----------------------------------------------
    def lines(self, what: str = "") -> list[str]:
        text = self.ledger.read_text() if self.ledger.exists() else ""
        return [line for line in text.splitlines() if line.startswith(what)]

    def status(self) -> dict[str, Any]:
        """The run's status as ``ephyra upgrade status`` shows it (read in this process)."""
        if self._journal is None:
            self._journal = Journal(f"sqlite:///{self.ephyra.journal_file}")
        run = self._journal.runs("upgrade")[-1]
        return UpgradeKind().status(self._journal, run).to_dict()

    def states(self, phase: str = "forward") -> dict[str, str]:
        """Each unit's outcome in ``phase``, by unit name, and the run's as ``run``."""
        shown = self.status()
        by_id = {u["unit"]: u[phase] or "pending" for u in shown["units"]}
        return {"run": shown["state"], **{u: by_id[uid(u)] for u in self.units}}

    def releases(self) -> dict[str, str]:
        return {u: self.nova.release(u) for u in self.units}

    def at(self, version: str) -> None:
        """Every unit at ``version``, no compute disabled, every server active."""
        assert self.releases() == {u: version for u in self.units}
        number = 1000000 if version == "1.0.0" else 2000000
        hypervisors = _hypervisors(self.nova)
        assert {u: hypervisors[u] for u in self.units if u in COMPUTES} == {
            u: number for u in self.units if u in COMPUTES
        }
        assert not _disabled(self.nova)

    def once(self, what: str, units: Sequence[str] | None = None) -> None:
        done = self.lines(what)
        assert sorted(done) == sorted(f"{what} {u}" for u in units or self.units), done

    def servers_on(self, host: str) -> set[str]:
        return {s.id for s in self.nova.servers_on(host)}


def at_boundary(unit: str, step: str) -> Callable[[Background], object]:
    """Held before the next step starts, right after ``step`` of ``unit`` ended."""

    def held(proc: Background) -> None:
        proc.wait_for(said(HELD))
        steps = [line for line in proc.lines if " done in " in line]
        assert steps and done_line(host(unit), step)(steps[-1]), proc.lines[-10:]

    return held


def order(points: list[KillPoint]) -> list[KillPoint]:
    """``kill_points`` in the order a run meets them: mid-step before the step's end."""
    steps = list(dict.fromkeys(p.step for p in points))
    return sorted(points, key=lambda p: (steps.index(p.step), p.boundary))


def unit_points(phase: str, unit: str, titles: Sequence[str], mid: Sequence[str]) -> list[str]:
    """The kill points of one unit's steps, as ``PHASE:UNIT STEP:WHERE``."""
    named = [f"{unit} {t}" for t in titles]
    return [str(p) for p in order(kill_points(named, [f"{unit} {t}" for t in mid], (phase,)))]


def mid_points(phase: str, unit: str, titles: Sequence[str]) -> list[str]:
    """Only the mid-step kill points of ``titles`` (their boundaries are another unit's)."""
    return [p for p in unit_points(phase, unit, titles, titles) if p.endswith(MID)]


@dataclass(frozen=True)
class Point:
    """One kill of a chain: its point, how the process that reaches it is started (held
    at step call ``call``, or not held), how it is known, and what is true after it."""

    unit: str
    step: str
    where: str
    held: Callable[[Background], object]
    landed: Callable[[], object]
    call: int | None = NEXT

    def stop(self, phase: str) -> Stop[Background]:
        return Stop(
            KillPoint(phase, f"{self.unit} {self.step}", self.where), self.held, self.landed
        )


def chain(
    up: Upgrade, first: Sequence[str], then: Sequence[str], points: Sequence[Point],
    check: Callable[[], object],
) -> Chain[Background]:  # fmt: skip
    """A chain whose Nth process is held as the Nth point needs; the last one is not."""
    calls = iter([p.call if p.where == BOUNDARY else None for p in points[1:]] + [None])
    first_call = points[0].call if points[0].where == BOUNDARY else None
    return Chain(
        start=lambda: up.run(first, first_call),
        resume=lambda: up.run(then, next(calls)),
        check=check,
    )


def forward_points(up: Upgrade, server: str) -> list[Point]:
    conductor, scheduler, c1 = "nova-conductor", "nova-scheduler", "compute-1"

    def control(done: Sequence[str], first: str, second: str) -> Callable[[], None]:
        """The control plane's ``done`` upgraded; the conductor's and the scheduler's
        outcomes ``first`` and ``second``."""

        def landed() -> None:
            assert up.lines("upgrade") == [f"upgrade {u}" for u in done]
            assert up.releases() == {u: "2.0.0" if u in done else "1.0.0" for u in UNITS}
            assert up.states() == {
                "run": "running", conductor: first, scheduler: second,
                **{u: "pending" for u in COMPUTES},
            }  # fmt: skip
            assert not _disabled(up.nova)

        return landed

    def conductor_held() -> None:
        control([], "running", "pending")()
        up.release("upgrade", conductor)

    def compute(
        *, disabled: bool, on_it: bool | None, upgraded: bool = False
    ) -> Callable[[], None]:
        """compute-1 in its forward flow: ``on_it``, whether the server is still there
        (None: on its way)."""

        def landed() -> None:
            expected = [f"upgrade {u}" for u in (*CONTROL, *([c1] if upgraded else []))]
            assert up.lines("upgrade") == expected
            assert _disabled(up.nova) == ({c1} if disabled else set())
            if on_it is not None:
                assert (server in up.servers_on(c1)) is on_it
            assert _hypervisors(up.nova)[c1] == 1000000  # its release starts late
            states = up.states()
            assert (states["run"], states[conductor], states[scheduler]) == (
                "running", "upgraded", "upgraded",
            )  # fmt: skip
            assert (states[c1], states["compute-2"]) == ("running", "pending")

        return landed

    def migrating_now(proc: Background) -> None:
        proc.wait_for(said(f"live from {c1} started"))
        conn = up.nova.connect()
        wait_until(lambda: migrating(conn), what="a live migration running in Nova")

    def gating() -> None:
        compute(disabled=True, on_it=False, upgraded=True)()
        up.open_late("upgrade", c1)

    def gated(*, enabled: bool) -> Callable[[], None]:
        def landed() -> None:
            assert up.lines("upgrade") == [f"upgrade {u}" for u in (*CONTROL, c1)]
            assert _hypervisors(up.nova)[c1] == 2000000
            assert _disabled(up.nova) == (set() if enabled else {c1})
            states = up.states()
            assert (states[c1], states["compute-2"]) == (
                ("upgraded", "running") if enabled else ("running", "pending")
            )

        return landed

    return [
        Point(conductor, "upgrade-1", MID, lambda p: up.held("upgrade", conductor), conductor_held),
        Point(conductor, "upgrade-1", BOUNDARY, at_boundary(conductor, "upgrade-1"),
              control([conductor], "running", "pending")),
        Point(conductor, "gate", BOUNDARY, at_boundary(conductor, "gate"),
              control([conductor], "upgraded", "running")),
        Point(scheduler, "upgrade-1", BOUNDARY, at_boundary(scheduler, "upgrade-1"),
              control(CONTROL, "upgraded", "running")),
        Point(scheduler, "gate", BOUNDARY, at_boundary(scheduler, "gate"),
              compute(disabled=False, on_it=True)),
        Point(c1, "record", BOUNDARY, at_boundary(c1, "record"),
              compute(disabled=False, on_it=True)),
        Point(c1, "maintenance-on", BOUNDARY, at_boundary(c1, "maintenance-on"),
              compute(disabled=True, on_it=True)),
        Point(c1, "drain", MID, migrating_now, compute(disabled=True, on_it=None)),
        Point(c1, "drain", BOUNDARY, at_boundary(c1, "drain"),
              compute(disabled=True, on_it=False)),
        Point(c1, "verify-empty", BOUNDARY, at_boundary(c1, "verify-empty"),
              compute(disabled=True, on_it=False)),
        Point(c1, "placement-audit", BOUNDARY, at_boundary(c1, "placement-audit"),
              compute(disabled=True, on_it=False)),
        Point(c1, "upgrade-1", BOUNDARY, at_boundary(c1, "upgrade-1"),
              compute(disabled=True, on_it=False, upgraded=True)),
        Point(c1, "gate", MID, lambda p: p.wait_for(said(f"{c1}: gate started")), gating),
        Point(c1, "gate", BOUNDARY, at_boundary(c1, "gate"), gated(enabled=False)),
        Point(c1, "maintenance-off", BOUNDARY, at_boundary(c1, "maintenance-off"),
              gated(enabled=True)),
    ]  # fmt: skip


def rollback_points(up: Upgrade) -> list[Point]:
    c3, c2 = "compute-3", "compute-2"

    def back(
        unit: str,
        done: Sequence[str],
        *,
        disabled: set[str],
        at_old: Sequence[str] = (),
        restarting: str = "",
    ) -> Callable[[], None]:
        """``unit`` in its rollback flow, ``done`` downgraded, ``at_old`` back at 1.0.0
        (but the hypervisor of ``restarting``, whose new process may not answer yet)."""

        def landed() -> None:
            assert up.lines("downgrade") == [f"downgrade {u}" for u in done]
            old = set(at_old)
            assert up.releases() == {u: "1.0.0" if u in old else "2.0.0" for u in UNITS}
            hypervisors = _hypervisors(up.nova)
            shown = [h for h in COMPUTES if h != restarting]
            assert {h: hypervisors[h] for h in shown} == {
                h: 1000000 if h in old else 2000000 for h in shown
            }
            assert _disabled(up.nova) == disabled
            states = up.states("rollback")
            assert states["run"] == "rolling-back"
            assert states[unit] == "running"
            newer = UNITS[UNITS.index(unit) + 1 :]  # taken back first: newest first
            assert all(states[u] == "restored" for u in newer), states
            older = UNITS[: UNITS.index(unit)]
            assert all(states[u] == "pending" for u in older), states

        return landed

    def held_c2() -> None:
        back(c2, [c3], disabled={c2}, at_old=[c3])()
        up.release("downgrade", c2)

    def gating_c2() -> None:
        back(c2, [c3, c2], disabled={c2}, at_old=[c3])()  # its release starts late
        assert up.releases()[c2] == "2.0.0"
        up.open_late("downgrade", c2)

    computes = [c3, c2, "compute-1"]
    restored_sched = [*computes, "nova-scheduler"]

    def conductor_held() -> None:
        back("nova-conductor", restored_sched, disabled=set(), at_old=restored_sched)()
        up.release("downgrade", "nova-conductor")

    c3_on, c3_old = {c3}, [c3]
    return [
        Point(c3, "maintenance-on", BOUNDARY, at_boundary(c3, "maintenance-on"),
              back(c3, [], disabled=c3_on)),
        Point(c3, "drain", BOUNDARY, at_boundary(c3, "drain"), back(c3, [], disabled=c3_on)),
        Point(c3, "verify-empty", BOUNDARY, at_boundary(c3, "verify-empty"),
              back(c3, [], disabled=c3_on)),
        Point(c3, "downgrade-1", BOUNDARY, at_boundary(c3, "downgrade-1"),
              back(c3, [c3], disabled=c3_on, at_old=c3_old, restarting=c3)),
        Point(c3, "gate", BOUNDARY, at_boundary(c3, "gate"),
              back(c3, [c3], disabled=c3_on, at_old=c3_old)),
        Point(c3, "maintenance-off", BOUNDARY, at_boundary(c3, "maintenance-off"),
              back(c2, [c3], disabled=set(), at_old=c3_old)),
        Point(c2, "downgrade-1", MID, lambda p: up.held("downgrade", c2), held_c2),
        Point(c2, "gate", MID, lambda p: p.wait_for(said(f"{c2}: gate started")), gating_c2),
        # compute-2's gate, its maintenance-off, then compute-1's six steps, the scheduler's
        # downgrade: nine steps' start and end, then the scheduler's gate starts
        Point("nova-scheduler", "downgrade-1", BOUNDARY,
              at_boundary("nova-scheduler", "downgrade-1"),
              back("nova-scheduler", restored_sched, disabled=set(), at_old=restored_sched),
              call=2 * 9 + 1),
        Point("nova-scheduler", "gate", BOUNDARY, at_boundary("nova-scheduler", "gate"),
              back("nova-conductor", restored_sched, disabled=set(), at_old=restored_sched)),
        Point("nova-conductor", "downgrade-1", MID,
              lambda p: up.held("downgrade", "nova-conductor"), conductor_held),
    ]  # fmt: skip


def test_an_upgrade_killed_at_every_step_then_its_rollback_killed_at_every_step(
    clean_nova: NovaTestbed, ephyra: Ephyra, tmp_path: Path, report: list[str]
) -> None:
    (server,) = clean_nova.boot("compute-1", 1)
    up = Upgrade(clean_nova, ephyra, tmp_path)
    up.hold("upgrade", "nova-conductor")
    up.late("upgrade", "compute-1")  # its gate waits until the test lets it pass

    forward = forward_points(up, server)
    # every boundary of the kind's steps, of a control-plane unit and of a drained compute
    compute_titles = [s.title for s in compute_steps.FORWARD]
    compute_titles += [upgrade_steps.PlacementAudit.title]
    compute_titles += ["upgrade-1", upgrade_steps.HealthGate.title]
    compute_titles += [compute_steps.MaintenanceOff.title]
    control_titles = ["upgrade-1", upgrade_steps.HealthGate.title]
    assert [str(p.stop("forward").point) for p in forward] == [
        *unit_points("forward", "nova-conductor", control_titles, ["upgrade-1"]),
        *unit_points("forward", "nova-scheduler", control_titles, []),
        *unit_points("forward", "compute-1", compute_titles, ["drain", "gate"]),
    ]

    def upgraded() -> None:
        up.at("2.0.0")
        up.once("upgrade")
        clean_nova.wait_servers([server], status="ACTIVE")
        shown = yaml.safe_load(ok(ephyra("--format", "yaml", "upgrade", "status")).out)
        assert shown["state"] == "succeeded"
        assert {u["unit"]: u["forward"] for u in shown["units"]} == {
            uid(u): "upgraded" for u in UNITS
        }

    forward_chain = chain(up, up.start(), ["upgrade", "resume"], forward, upgraded)
    forward_chain.run([p.stop("forward") for p in forward], report, "upgrade")

    up.hold("downgrade", "compute-2")
    up.late("downgrade", "compute-2")
    up.hold("downgrade", "nova-conductor")
    rollback = rollback_points(up)
    back_titles = [s.title for s in compute_steps.FORWARD[1:]]
    back_titles += ["downgrade-1", upgrade_steps.HealthGate.title]
    back_titles += [compute_steps.MaintenanceOff.title]
    assert [str(p.stop("rollback").point) for p in rollback] == [
        *unit_points("rollback", "compute-3", back_titles, []),
        *mid_points("rollback", "compute-2", ["downgrade-1", upgrade_steps.HealthGate.title]),
        *unit_points("rollback", "nova-scheduler", ["downgrade-1", "gate"], []),
        *mid_points("rollback", "nova-conductor", ["downgrade-1"]),
    ]

    def rolled_back() -> None:
        up.at("1.0.0")
        up.once("upgrade")
        up.once("downgrade")
        clean_nova.wait_servers([server], status="ACTIVE")
        states = up.states("rollback")
        assert states == {"run": "rolled-back", **{u: "restored" for u in UNITS}}

    rollback_chain = chain(
        up, ["upgrade", "rollback"], ["upgrade", "resume"], rollback, rolled_back
    )
    rollback_chain.run([p.stop("rollback") for p in rollback], report, "upgrade")


def test_killed_mid_step_aborted_then_rolled_back(
    clean_nova: NovaTestbed, ephyra: Ephyra, tmp_path: Path, report: list[str]
) -> None:
    """Killed while compute-1's upgrade command runs (the control plane upgraded),
    aborted by a new process, then rolled back: what was upgraded goes back, compute-1
    (never changed) is enabled again, compute-2 and compute-3 are not touched."""
    units = (*CONTROL, "compute-1")
    up = Upgrade(clean_nova, ephyra, tmp_path, units)
    up.hold("upgrade", "compute-1")
    proc = up.run(up.start(), None)

    def landed() -> None:
        assert up.lines() == [f"upgrade {u}" for u in CONTROL]
        assert up.releases() == {**{u: "2.0.0" for u in CONTROL}, "compute-1": "1.0.0"}
        assert _disabled(up.nova) == {"compute-1"}
        assert up.states() == {
            "run": "running", **{u: "upgraded" for u in CONTROL}, "compute-1": "running",
        }  # fmt: skip

    def recover() -> Result:
        up.release("upgrade", "compute-1")
        aborted = ok(ephyra("upgrade", "abort"))
        assert "aborted" in aborted.out + aborted.err
        assert up.states()["run"] == "aborted"
        assert _disabled(up.nova) == {"compute-1"}  # left as it was, for the rollback
        return ephyra("-v", "upgrade", "rollback")

    def check() -> None:
        up.at("1.0.0")
        up.once("upgrade", CONTROL)
        up.once("downgrade", CONTROL)
        hypervisors = _hypervisors(clean_nova)
        assert {h: hypervisors[h] for h in COMPUTES} == {h: 1000000 for h in COMPUTES}
        assert not _disabled(clean_nova)
        assert up.states("rollback") == {
            "run": "rolled-back", **{u: "restored" for u in units},
        }  # fmt: skip

    point = KillPoint("abort", "compute-1 upgrade-1", MID)
    with reported(report, "upgrade", point):
        Crash(lambda: up.held("upgrade", "compute-1"), landed, recover, check).run(proc)
