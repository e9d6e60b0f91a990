"""A run kind for the tests: a plan of N steps, step ``i`` creating the file ``step-<i>``
in a directory; rollback removes them, newest first.

Each file is made as ``step-<i>.partial``, then renamed; taken back, it is renamed to
``step-<i>.undo``, then removed. The file ``ledger`` in the directory gets one line each
time a file is really created or removed, so "nothing done twice" reads from it.

With ``hold``, a step waits for gate files the test creates: ``begin-<i>`` before it starts
(a step boundary) and ``end-<i>`` with its partial file written (mid-step); a rollback
step for ``undo-begin-<i>`` and ``undo-end-<i>``; an abort that finds a step half done for
``abort-<i>`` before it removes its partial file. It says which gate it waits for
(``step-<i>: waiting for GATE``), so a test waits for that line. ``finish`` keeps the
files for good (the ledger says ``finish``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from ephyra.bodies import Body
from ephyra.engine.driver import RunDriver
from ephyra.engine.journal import Journal, RunInfo
from ephyra.engine.kinds import NewRun, Resolver, RunKind, RunStatus, Shown, View, counts, headline
from ephyra.engine.metrics import RunMetrics
from ephyra.engine.states import Phase, RunState
from ephyra.errors import Interrupted
from ephyra.progress import Observer

POLL = 0.05
DONE = "done"
LEDGER = "ledger"


class FilesBody(Body):
    dir: Annotated[str, Field(min_length=2, max_length=1024, pattern=r"^/")]
    steps: Annotated[int, Field(ge=1, le=100)]
    hold: bool = False


def lock_name(directory: str) -> str:
    return f"files {Path(directory).name}-{hashlib.sha256(directory.encode()).hexdigest()[:12]}"


def record(i: int) -> str:
    return f"step:{i}"


class FilesDriver(RunDriver):
    """Steps forward create files, steps back remove them, newest first."""

    @property
    def dir(self) -> Path:
        return Path(self.run.meta["dir"])

    def _gate(self, i: int, name: str, stoppable: bool = True) -> None:
        if not self.run.meta["hold"] or (self.dir / name).exists():
            return
        self.observer.message(f"step-{i}: waiting for {name}")
        while not (self.dir / name).exists():
            if stoppable:  # a pause or an abort reaches a step waiting here
                self.control.sleep(POLL)
            else:
                time.sleep(POLL)

    def _ledger(self, line: str) -> None:
        with (self.dir / LEDGER).open("a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _done(self, i: int, phase: Phase, what: str) -> None:
        data = self.journal.record(self.run.id, record(i))
        self.journal.save_record(self.run.id, record(i), {**data, phase.value: DONE})
        self.observer.node(f"step-{i}", DONE, what)  # "done": it advances the progress bar

    def forward(self, i: int) -> None:
        self._gate(i, f"begin-{i}")
        target, partial = self.dir / f"step-{i}", self.dir / f"step-{i}.partial"
        if not target.exists():
            partial.write_text(f"{self.run.id}\n")
            self._gate(i, f"end-{i}")
            partial.rename(target)
            self._ledger(f"create step-{i}")
        self._done(i, Phase.FORWARD, "created")

    def back(self, i: int) -> None:
        self._gate(i, f"undo-begin-{i}")
        target, undo = self.dir / f"step-{i}", self.dir / f"step-{i}.undo"
        if target.exists():
            target.rename(undo)
            self._gate(i, f"undo-end-{i}")
        if undo.exists():
            undo.unlink()
            self._ledger(f"remove step-{i}")
        (self.dir / f"step-{i}.partial").unlink(missing_ok=True)
        self._done(i, Phase.ROLLBACK, "removed")

    def run_phase(self, phase: Phase) -> RunState:
        steps = list(range(self.run.meta["steps"]))
        if phase is Phase.ROLLBACK:
            steps.reverse()
        records = self.journal.records(self.run.id, "step:")
        pending = [i for i in steps if records[record(i)].get(phase.value) != DONE]
        self.observer.started(f"files {self.run.short}", len(steps), len(steps) - len(pending))
        move = self.forward if phase is Phase.FORWARD else self.back
        for i in pending:
            try:
                self.control.checkpoint()
                move(i)
            except Interrupted:
                return RunState.PAUSED
        return RunState.SUCCEEDED if phase is Phase.FORWARD else RunState.ROLLED_BACK

    def finish(self) -> bool:
        """Keep the files for good: the ledger says so, once."""
        self._ledger("finish")
        return True

    def undo_partial(self) -> None:
        """An abort: remove what a step caught in the middle wrote."""
        for i in range(self.run.meta["steps"]):
            partial = self.dir / f"step-{i}.partial"
            if partial.exists():
                self._gate(i, f"abort-{i}", stoppable=False)
                partial.unlink()
                self.observer.node(f"step-{i}", "returned", "partial file removed")


@dataclass(frozen=True)
class FilesDetail:
    dir: str
    steps: list[dict[str, str]]

    def where(self) -> dict[str, Any]:
        return {"dir": self.dir}

    def lists(self) -> dict[str, Any]:
        return {"counts": counts(self.steps), "steps": self.steps}


class FilesKind(RunKind[FilesBody]):
    name = "files"
    command = "files"
    summary = "create files, one per step (a run kind of the tests)"
    items, item_name = "steps", "step"
    abort_undoes = True
    after_abort = "files of finished steps stay until rollback"
    finish_help = "keep its files for good (no rollback removes them)"

    def body_type(self) -> type[FilesBody]:
        return FilesBody

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dir", required=True, help="directory the files go in")
        parser.add_argument("--steps", type=int, default=3, help="how many steps (3)")
        parser.add_argument("--hold", action="store_true", help="wait for gate files")

    def body_of(self, args: argparse.Namespace) -> FilesBody:
        return FilesBody.build(dir=os.path.abspath(args.dir), steps=args.steps, hold=args.hold)

    def claims(self, body: FilesBody) -> list[str]:
        return [lock_name(body.dir)]

    def plan(self, body: FilesBody, resolver: Resolver) -> FilesBody:
        return body

    def shown(self, plan: FilesBody, body: FilesBody) -> Shown:
        files = [f"{plan.dir}/step-{i}" for i in range(plan.steps)]
        return Shown({**plan.wire(), "files": files}, "".join(f"create {f}\n" for f in files))

    def new_run(self, plan: FilesBody) -> NewRun:
        records: dict[str, dict[str, Any]] = {record(i): {} for i in range(plan.steps)}
        return NewRun(plan.wire(), records, [lock_name(plan.dir)])

    def driver(
        self,
        journal: Journal,
        run: RunInfo,
        observer: Observer,
        metrics: RunMetrics,
        plan: FilesBody | None = None,
    ) -> RunDriver:
        return FilesDriver(journal, run, observer, metrics)

    def on_abort(self, driver: RunDriver) -> None:
        assert isinstance(driver, FilesDriver)
        driver.undo_partial()

    def status(self, journal: Journal, run: RunInfo) -> RunStatus[FilesDetail]:
        records = journal.records(run.id, "step:")
        steps = [
            {
                "step": f"step-{i}",
                "forward": records[record(i)].get(Phase.FORWARD.value) or "pending",
                "rollback": records[record(i)].get(Phase.ROLLBACK.value) or "",
            }
            for i in range(run.meta["steps"])
        ]
        return RunStatus.of(run, FilesDetail(run.meta["dir"], steps))

    def view(self, status: Mapping[str, Any]) -> View:
        return View(headline(status, f" in {status['dir']}"), [("steps", ["step", *Phase])])

    def title(self, run: RunInfo) -> str:
        return f"{run.meta['steps']} files in {run.meta['dir']}"

    def total(self, run: RunInfo) -> int:
        return int(run.meta["steps"])
