"""Showing a run's progress: a live display on a terminal, plain lines otherwise.

rich is imported by the live display only (a command that shows no progress does not
pay for it)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.console import Console, Group

#: Outcomes that advance the progress bar (those of the built-in kinds, and "done", the
#: word of any other kind's item finished).
DONE = ("moved", "restored", "upgraded", "done", "frozen")


class Observer(Protocol):
    def started(self, title: str, total: int, done: int) -> None: ...
    def step(self, node: str, step: str, status: str, seconds: float) -> None: ...
    def node(self, node: str, outcome: str, detail: str = "") -> None: ...
    def message(self, text: str) -> None: ...
    def finished(self, state: str) -> None: ...


class QuietObserver:
    """Shows nothing (a server's runs: their events are in the journal)."""

    def started(self, title: str, total: int, done: int) -> None:
        pass

    def step(self, node: str, step: str, status: str, seconds: float) -> None:
        pass

    def node(self, node: str, outcome: str, detail: str = "") -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def finished(self, state: str) -> None:
        pass


class PlainObserver:
    """One line per event that matters, for logs and scripts."""

    def __init__(self, out: TextIO | None = None, verbose: bool = False) -> None:
        self._out = out or sys.stderr
        self._verbose = verbose
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0

    def _line(self, text: str) -> None:
        with self._lock:
            print(f"{time.strftime('%H:%M:%S')} {text}", file=self._out, flush=True)

    def started(self, title: str, total: int, done: int) -> None:
        self._total, self._done = total, done
        self._line(f"{title}: {done}/{total} done")

    def step(self, node: str, step: str, status: str, seconds: float) -> None:
        if status == "reverting" or self._verbose:
            extra = f" in {seconds:.2f}s" if status == "done" else ""
            self._line(f"  {node}: {step} {status}{extra}")

    def node(self, node: str, outcome: str, detail: str = "") -> None:
        if outcome.startswith(DONE):
            self._done += 1
        suffix = f": {detail}" if detail else ""
        self._line(f"[{self._done}/{self._total}] {node} {outcome}{suffix}")

    def message(self, text: str) -> None:
        self._line(text)

    def finished(self, state: str) -> None:
        self._line(f"run {state}")


class LiveObserver:
    """A progress bar and the step each in-flight node is at, redrawn in place."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._console,
        )
        self._task = self._progress.add_task("nodes", total=0)
        self._current: dict[str, str] = {}
        self._lock = threading.Lock()
        self._live = Live(self._render(), console=self._console, refresh_per_second=8)

    def _render(self) -> Group:
        from rich.console import Group
        from rich.table import Table

        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("node")
        table.add_column("step")
        for node, step in sorted(self._current.items()):
            table.add_row(node, step)
        return Group(self._progress, table)

    def _refresh(self) -> None:
        self._live.update(self._render())

    def started(self, title: str, total: int, done: int) -> None:
        self._progress.update(self._task, description=title, total=total, completed=done)
        self._live.start()

    def step(self, node: str, step: str, status: str, seconds: float) -> None:
        with self._lock:
            self._current[node] = step if status == "started" else f"{step} {status}"
            self._refresh()

    def node(self, node: str, outcome: str, detail: str = "") -> None:
        with self._lock:
            self._current.pop(node, None)
            if outcome.startswith(DONE):
                self._progress.advance(self._task)
            else:
                self._console.print(f"{node} {outcome}" + (f": {detail}" if detail else ""))
            self._refresh()

    def message(self, text: str) -> None:
        self._console.print(text)

    def finished(self, state: str) -> None:
        self._refresh()
        self._live.stop()
        self._console.print(f"run {state}")


def observer_for(stream: TextIO, verbose: bool = False) -> Observer:
    if stream.isatty():
        return LiveObserver()
    return PlainObserver(stream, verbose)


def rendered(renderable: object, width: int = 120) -> str:
    """A rich renderable (a plan's tree) as plain text."""
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()
