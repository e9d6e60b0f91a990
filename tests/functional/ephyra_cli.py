"""Driving the ``ephyra`` command line as an operator would: a real process per command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EPHYRA = [sys.executable, "-m", "ephyra.cli.main"]


@dataclass
class Result:
    code: int
    out: str
    err: str


class Ephyra:
    """Runs ``ephyra`` against one testbed, with its own journal and locks."""

    def __init__(self, clouds_yaml: Path, state: Path) -> None:
        self.state = state
        self.env = {
            **os.environ,
            "OS_CLIENT_CONFIG_FILE": str(clouds_yaml),
            "XDG_STATE_HOME": str(state),
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def journal_file(self) -> Path:
        return self.state / "ephyra" / "journal.db"

    def __call__(
        self, *args: str, timeout: float = 300, env: dict[str, str] | None = None
    ) -> Result:
        proc = subprocess.run(
            [*EPHYRA, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def background(self, *args: str) -> Background:
        return Background([*EPHYRA, "-v", *args], self.env)


class Background:
    """A long ``ephyra`` command whose progress lines are read as they come."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._out: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_err, daemon=True),
            threading.Thread(target=self._read_out, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self._out.extend(self.proc.stdout)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 120) -> str:
        """Block until a progress line matches, and return it."""
        deadline = time.monotonic() + timeout
        checked = 0
        with self._seen:
            while True:
                for line in self.lines[checked:]:
                    if predicate(line):
                        return line
                checked = len(self.lines)
                if self.proc.poll() is not None and checked == len(self.lines):
                    raise AssertionError("process ended first:\n" + "\n".join(self.lines[-20:]))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no such line:\n" + "\n".join(self.lines[-20:]))
                self._seen.wait(min(left, 0.5))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def finish(self, timeout: float = 300) -> Result:
        self.proc.wait(timeout)
        for reader in self._readers:  # until each has read its pipe to the end
            reader.join(timeout)
        return Result(self.proc.returncode, "".join(self._out), "\n".join(self.lines))
