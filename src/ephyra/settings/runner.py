"""Driving a settings apply: its changes one by one, each recorded in the journal with what
the cloud had before it, before it is made.

A change's record (``change:NNNN``) holds the change as planned, its ``forward`` and
``rollback`` states (``doing``, then ``done``) and ``before``: the object as the cloud had
it when the run first came to it (None: absent), written before anything is changed.
Each step reads the object as the cloud has it now and changes only what differs from
its goal, so a step killed half-way and run again does nothing twice.

Rollback takes back, newest first, only the changes the run began: what it created is
deleted, what it deleted is made again from ``before``, and an update sets back the
fields it changed, to their ``before`` values (other fields stay as they are now).
"""

from __future__ import annotations

from typing import Any

from ephyra.engine.driver import RunDriver
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.states import Phase, RunState
from ephyra.errors import ControlPlaneUnreachable, EphyraError, Interrupted
from ephyra.progress import Observer
from ephyra.settings.cloud import SettingsCloud
from ephyra.settings.diff import DELETE, UPDATE, Change
from ephyra.settings.records import DOING, DONE, SettingsMeta, record_name


class SettingsDriver(RunDriver):
    def __init__(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        target: SettingsCloud | None = None,
    ) -> None:
        super().__init__(journal, run, observer, metrics)
        self.meta = SettingsMeta.from_meta(run.meta)
        self._target = target

    @property
    def target(self) -> SettingsCloud:
        if self._target is None:
            self._target = SettingsCloud.connect(self.meta.cloud)
        return self._target

    def _save(self, i: int, data: dict[str, Any]) -> None:
        self.journal.save_record(self.run.id, record_name(i), data)

    def goal(self, phase: Phase, change: Change, data: dict[str, Any], now: Any) -> Any:
        """What the object is to be once the step is done."""
        if phase is Phase.FORWARD:
            return change.after
        before = data.get("before")
        if change.action == UPDATE and before is not None and now is not None:
            return {**now, **{f: before.get(f) for f in change.fields}}
        return before

    def step(self, phase: Phase, i: int, data: dict[str, Any]) -> None:
        change = Change.from_dict(data["change"])
        name = change.said()
        if data.get(phase.value) != DOING:
            self.observer.message(f"{'undo ' if phase is Phase.ROLLBACK else ''}{name}")
        now = self.target.read_one(change.kind, change.key)
        if phase is Phase.FORWARD and "before" not in data:
            data = {**data, "before": now}
        data = {**data, phase.value: DOING}
        self._save(i, data)  # what the cloud had, kept before anything changes
        goal = self.goal(phase, change, data, now)
        if change.action == DELETE and phase is Phase.ROLLBACK and now is not None:
            goal = now  # made again already (by this rollback, before a crash)
        self.target.converge(change.kind, now, goal)
        self._done(i, phase, data)
        self.observer.node(f"{change.kind} {change.key}", DONE, name)

    def _done(self, i: int, phase: Phase, data: dict[str, Any]) -> None:
        self._save(i, {**data, phase.value: DONE})

    def run_phase(self, phase: Phase) -> RunState:
        records = self.journal.records(self.run.id, "change:")
        order = list(range(self.meta.changes))
        if phase is Phase.ROLLBACK:
            order.reverse()
            order = [i for i in order if records[record_name(i)].get(Phase.FORWARD.value)]
        pending = [i for i in order if records[record_name(i)].get(phase.value) != DONE]
        total = len(order)
        self.observer.started(
            f"settings {self.meta.cloud} {self.run.short}", total, total - len(pending)
        )
        for i in pending:
            try:
                self.control.checkpoint()
                self.step(phase, i, records[record_name(i)])
            except Interrupted:
                return RunState.PAUSED
            except ControlPlaneUnreachable as exc:
                self.run = self.journal.save_run(self.run, reason=str(exc))
                return RunState.PAUSED
            except EphyraError as exc:
                data = self.journal.record(self.run.id, record_name(i))
                self._save(i, {**data, "error": str(exc)})
                self.run = self.journal.save_run(self.run, reason=str(exc))
                change = Change.from_dict(data["change"])
                self.observer.node(f"{change.kind} {change.key}", "failed", str(exc))
                return RunState.FAILED
        return RunState.SUCCEEDED if phase is Phase.FORWARD else RunState.ROLLED_BACK
