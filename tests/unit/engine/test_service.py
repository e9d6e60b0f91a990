"""The run service on runs the journal kept before lock names were kept with runs: each
kind reads the names from the run's records, and pause, abort and resume act under them as
they do for a new run. Also: the one choice of the run an action acts on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ephyra.compute.kind import EvacuationKind
from ephyra.engine.driver import RunDriver
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.kinds import RunKind
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.service import Action, RunService, holding_locks, locks_of
from ephyra.engine.states import Phase, RunState
from ephyra.errors import IllegalTransition, LockHeld, RunNotFound, StepFailed, UsageError
from ephyra.forklift.kind import ForkliftKind
from ephyra.progress import Observer, QuietObserver
from ephyra.upgrade.kind import UpgradeKind
from ephyra.upgrade.plan import Action as Change
from ephyra.upgrade.plan import Batch, Plan, Stage, Unit


def unit(host: str, drain: bool) -> Unit:
    return Unit(f"data@{host}", host, "compute", "data", (Change("pkg", ("nova-compute",)),), drain)


UNITS = (unit("cmp-2", True), unit("cmp-1", True), unit("cmp-3", False))
PLAN = Plan("2026.2", "service", (Stage("compute", "data", "compute", (Batch(UNITS),)),))


@dataclass(frozen=True)
class Old:
    """A kind, what its run recorded of itself before lock names were kept with runs, and
    the lock names its runs held then."""

    kind: type[RunKind[Any]]
    meta: dict[str, Any]
    locks: list[str]


OLD = {
    "forklift": Old(
        ForkliftKind,
        {"from": "cp2", "to": "cp1", "settings": {}, "order": ["u1"]},
        ["forklift cp1<->cp2"],
    ),
    "evacuate": Old(
        EvacuationKind,
        {"cloud": "c1", "hosts": ["cmp-2", "cmp-1", "cmp-2"], "also_down": [], "settings": {}},
        ["compute c1/cmp-1", "compute c1/cmp-2"],
    ),
    "upgrade": Old(
        UpgradeKind,
        {"cloud": "c1", "release": "2026.2", "spec": {}, "plan": PLAN.to_dict()},
        ["upgrade c1", "compute c1/cmp-1", "compute c1/cmp-2"],  # its drained hosts too
    ),
}


class Driver(RunDriver):
    """Drives a run by checking, at its one step, that this process holds its locks."""

    held: list[str] = []

    def run_phase(self, phase: Phase) -> RunState:
        Driver.held = [lock.name for lock in self.locks if lock.still_held()]
        return RunState.SUCCEEDED if phase is Phase.FORWARD else RunState.ROLLED_BACK


def driven(base: type[RunKind[Any]]) -> RunKind[Any]:
    """``base`` with a driver that only checks its locks (no cloud to move)."""

    class Kind(base):  # type: ignore[valid-type,misc]
        undone: list[str] = []

        def driver(
            self,
            journal: Journal,
            run: RunInfo,
            observer: Observer,
            metrics: RunMetrics,
            plan: Any = None,
        ) -> RunDriver:
            return Driver(journal, run, observer, metrics)

        def on_resume(self, driver: RunDriver) -> None:
            pass  # an upgrade's retries read its units' records: none here

        def on_abort(self, driver: RunDriver) -> None:
            Kind.undone.append(driver.run.id)

    return Kind()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    yield Journal(f"sqlite:///{tmp_path / 'journal.db'}")


@pytest.fixture
def lock_url(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'locks'}"


def old_run(journal: Journal, name: str, state: RunState, **more: Any) -> RunInfo:
    """A run written as the journal kept it before lock names were kept: no ``locks``."""
    meta = {"state": state.value, "phase": "forward", "created": time.time(), "pid": 1}
    run = journal.create_run(name, {**meta, "host": "gone", **OLD[name].meta, **more}, {})
    assert "locks" not in run.meta
    return run


@pytest.mark.parametrize("name", list(OLD))
def test_an_old_runs_locks_are_read_from_its_records(journal: Journal, name: str) -> None:
    old = OLD[name]
    run = old_run(journal, name, RunState.PAUSED)
    service = RunService(old.kind(), journal)
    assert service.locks(run) == old.locks
    assert locks_of(run) == old.locks  # the kind found by the run's name
    kept = journal.save_run(run, locks=["kept"])
    assert service.locks(kept) == ["kept"]  # what is kept wins


def test_a_kind_that_says_nothing_locks_the_run_itself(journal: Journal) -> None:
    run = old_run(journal, "upgrade", RunState.PAUSED)
    assert RunKind.locks_of(UpgradeKind(), run) == [f"run upgrade {run.id}"]
    record = journal.create_run("maintenance", {"state": "succeeded", "created": 1.0}, {})
    assert locks_of(record) == []  # not a kind of run: locks nothing


@pytest.mark.parametrize("name", list(OLD))
def test_an_old_run_whose_process_died_is_paused_then_resumed_under_its_locks(
    journal: Journal, lock_url: str, name: str
) -> None:
    old = OLD[name]
    service = RunService(driven(old.kind), journal, lock_url)
    run = old_run(journal, name, RunState.RUNNING)
    assert service.pause(run.id) == f"run {run.short} had no live process; marked paused"
    assert journal.run(run.id).state is RunState.PAUSED
    Driver.held = []
    done = service.resume(run.id, QuietObserver())
    assert done.state is RunState.SUCCEEDED
    assert Driver.held == old.locks  # held while it was driven
    assert journal.run(run.id).meta["locks"] == old.locks  # and kept with it from now on


@pytest.mark.parametrize("name", list(OLD))
def test_an_old_run_driven_elsewhere_is_asked_to_pause(
    journal: Journal, lock_url: str, name: str
) -> None:
    old = OLD[name]
    service = RunService(driven(old.kind), journal, lock_url)
    run = old_run(journal, name, RunState.RUNNING)
    with holding_locks(journal, old.locks, lock_url):  # its process, alive
        message = service.pause(run.id)
        with pytest.raises(LockHeld, match=f"{name} run {run.id} \\(running, pid 1 on gone\\)"):
            service.resume(run.id, QuietObserver())
    assert message == f"pause of run {run.short} requested; its process stops at the next step"
    assert journal.pending_request(run.id) == "pause"
    assert journal.run(run.id).state is RunState.RUNNING  # its process records the pause


@pytest.mark.parametrize("name", list(OLD))
def test_an_old_paused_run_is_aborted_under_its_locks(
    journal: Journal, lock_url: str, name: str
) -> None:
    old = OLD[name]
    kind = driven(old.kind)
    service = RunService(kind, journal, lock_url)
    run = old_run(journal, name, RunState.PAUSED)
    other = old_run(journal, name, RunState.RUNNING)  # holds the same locks
    with holding_locks(journal, old.locks, lock_url), pytest.raises(LockHeld) as held:
        service.abort(run.id, QuietObserver())
    assert f"{name} run {other.id}" in str(held.value)
    assert journal.run(run.id).state is RunState.PAUSED
    message = service.abort(run.id, QuietObserver())
    assert message.startswith(f"run {run.short} aborted")
    assert journal.run(run.id).state is RunState.ABORTED
    assert type(kind).undone == ([run.id] if old.kind.abort_undoes else [])  # type: ignore[attr-defined]


def test_the_target_of_each_action(journal: Journal) -> None:
    service = RunService(UpgradeKind(), journal)
    done = old_run(journal, "upgrade", RunState.ROLLED_BACK)
    paused = old_run(journal, "upgrade", RunState.PAUSED)
    succeeded = old_run(journal, "upgrade", RunState.SUCCEEDED)
    back = old_run(journal, "upgrade", RunState.ROLLED_BACK)
    for action in (Action.RESUME, Action.PAUSE, Action.ABORT):
        assert service.target(None, action).id == paused.id  # the latest unfinished
    assert service.target(None, Action.ROLLBACK).id == succeeded.id  # not the rolled back
    assert service.target(done.id, Action.ROLLBACK).id == done.id  # named: that one
    with pytest.raises(IllegalTransition, match="is succeeded: nothing to resume"):
        service.target(succeeded.id, Action.RESUME)
    rolling = journal.save_run(paused, phase=Phase.ROLLBACK.value)
    assert service.target(None, Action.RESUME).id == rolling.id  # goes on rolling back
    with pytest.raises(IllegalTransition, match="is rolling back: pause it instead"):
        service.target(None, Action.ABORT)
    journal.save_run(rolling, state=RunState.ABORTED.value)
    with pytest.raises(RunNotFound) as none:
        service.target(None, Action.RESUME)
    assert str(none.value) == (
        f"no upgrade run in {journal.url} is unfinished (running, paused, failed or "
        f"rolling back): the latest, {back.short}, is rolled back"
    )
    assert back.state is RunState.ROLLED_BACK


@pytest.mark.parametrize("name", list(OLD))
def test_no_run_yet_says_how_to_start_one(journal: Journal, name: str) -> None:
    kind = OLD[name].kind()
    start = f"ephyra {kind.command} {kind.start_verb} ..."
    for act in (lambda s: s.status(None), lambda s: s.target(None, Action.RESUME)):
        with pytest.raises(RunNotFound) as none:
            act(RunService(kind, journal))
        assert str(none.value) == f"no {name} run yet in {journal.url} (start one with: {start})"


class Settled(Driver):
    """Records the settings its run has when it is driven, as a runner reads them."""

    concurrency: list[int] = []

    def run_phase(self, phase: Phase) -> RunState:
        Settled.concurrency.append(int(self.run.meta["settings"]["concurrency"]))
        return RunState.SUCCEEDED if phase is Phase.FORWARD else RunState.ROLLED_BACK


def settled(base: type[RunKind[Any]]) -> RunKind[Any]:
    class Kind(base):  # type: ignore[valid-type,misc]
        def driver(
            self,
            journal: Journal,
            run: RunInfo,
            observer: Observer,
            metrics: RunMetrics,
            plan: Any = None,
        ) -> RunDriver:
            return Settled(journal, run, observer, metrics)

    return Kind()


@pytest.mark.parametrize("name", ["forklift", "evacuate"])
def test_a_resume_changes_the_concurrency_from_then_on(
    journal: Journal, lock_url: str, name: str
) -> None:
    service = RunService(settled(OLD[name].kind), journal, lock_url)
    run = old_run(journal, name, RunState.PAUSED)
    Settled.concurrency = []
    with pytest.raises(UsageError, match=r"--concurrency .*must be at least 1"):
        service.resume(run.id, QuietObserver(), settings={"concurrency": 0})
    assert journal.run(run.id).state is RunState.PAUSED  # refused: nothing done
    assert service.resume(run.id, QuietObserver(), settings={"concurrency": 3}).state is (
        RunState.SUCCEEDED
    )
    kept = journal.run(run.id).meta["settings"]
    assert kept["concurrency"] == 3
    journal.save_run(journal.run(run.id), state=RunState.FAILED.value)
    service.resume(run.id, QuietObserver())  # a later resume without it keeps it
    assert Settled.concurrency == [3, 3]
    assert journal.run(run.id).meta["settings"] == kept


def test_a_resume_refuses_what_its_kind_does_not_change(journal: Journal, lock_url: str) -> None:
    service = RunService(settled(UpgradeKind), journal, lock_url)
    run = old_run(journal, "upgrade", RunState.PAUSED)
    Settled.concurrency = []
    with pytest.raises(UsageError, match=r"^upgrade runs take no concurrency on resume$"):
        service.resume(run.id, QuietObserver(), settings={"concurrency": 2})
    assert Settled.concurrency == [] and journal.run(run.id).state is RunState.PAUSED


def test_a_queued_resume_keeps_its_concurrency_for_the_conductor(
    journal: Journal, lock_url: str
) -> None:
    posted: list[str] = []

    class Board:
        url = type("Url", (), {"url": "etcd3+http://127.0.0.1:1"})()

        def queued(self, run: RunInfo) -> None:
            return None

        def add_job_detail(self, run: RunInfo) -> str:
            return "flow"

        def post(self, run: RunInfo, flow: str) -> None:
            posted.append(run.id)

    service = RunService(settled(ForkliftKind), journal, lock_url)
    run = old_run(journal, "forklift", RunState.PAUSED)
    service.queue_resume(run.id, Board(), settings={"concurrency": 5})
    assert posted == [run.id]
    assert journal.run(run.id).meta["settings"]["concurrency"] == 5


class Finishing(Driver):
    """Finishes as told: the first call fails (what a finish left half done), the next
    succeed."""

    calls = 0

    def finish(self) -> bool:
        Finishing.calls += 1
        return Finishing.calls > 1


class FinishingKind(UpgradeKind):
    finish_help = "delete what its rollback would need"

    def driver(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        plan: Any = None,
    ) -> RunDriver:
        return Finishing(journal, run, observer, metrics)


def test_a_finish_makes_a_run_final_once_and_its_rollback_is_refused(
    journal: Journal, lock_url: str
) -> None:
    service = RunService(FinishingKind(), journal, lock_url)
    paused = old_run(journal, "upgrade", RunState.PAUSED)
    with pytest.raises(IllegalTransition, match="is paused: only a run that succeeded finishes"):
        service.finish(paused.id, QuietObserver())
    run = old_run(journal, "upgrade", RunState.SUCCEEDED)
    Finishing.calls = 0
    with pytest.raises(StepFailed, match="its finish is not done: run finish again"):
        service.finish(None, QuietObserver())
    assert not journal.run(run.id).meta.get("finished")
    assert service.target(None, Action.ROLLBACK).id == run.id  # not final: may roll back
    assert service.finish(None, QuietObserver()) == f"run {run.short} finished"
    assert journal.run(run.id).meta["finished"] is True
    assert journal.run(run.id).state is RunState.SUCCEEDED
    assert service.finish(run.id, QuietObserver()) == f"run {run.short} finished already"
    assert Finishing.calls == 2
    with pytest.raises(
        IllegalTransition,
        match=r"is finished \(delete what its rollback would need\): it cannot be rolled back",
    ):
        service.target(run.id, Action.ROLLBACK)
    with pytest.raises(IllegalTransition, match="cannot be rolled back"):
        service.rollback(None, QuietObserver())
    with pytest.raises(UsageError, match="upgrade runs have no finish"):
        RunService(UpgradeKind(), journal).finish(run.id, QuietObserver())
