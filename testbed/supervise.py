"""A tiny process supervisor: ``python -m testbed.supervise STATE -- ARGV...`` (stdlib only).

It runs ``ARGV`` as its child, in its own process group (the child is not made a session or
group leader), and starts it again whenever it exits, until the supervisor itself is told to
stop with SIGTERM, which it forwards to the child before waiting for it. SIGINT and SIGHUP do
not concern it: a child that signals its whole group with them (as cotyledon's master process
does) reaches its own processes only. A child that
lived less than :data:`FAST_EXIT_S` seconds is started again after :data:`BACKOFF_S`
seconds, so a service that cannot start is retried about once a second, as a service
manager would; one that ran longer is started again at once.

So another process can restart a supervised service by sending SIGTERM to the child alone;
signalling or killing the whole process group (the supervisor is its leader) stops
everything, supervisor included.

``STATE`` is a JSON file, replaced atomically on every change and removed when the
supervisor stops (it stays behind when the supervisor is killed, naming a dead process)::

    {"supervisor": 1200, "child": 1234, "starts": 2, "exits": 1,
     "last_exit": 0, "started": 1767225600.25}

``child`` is the pid of the running (or last) child, ``starts`` and ``exits`` count the
children started and ended, ``last_exit`` is the exit code of the last one to end (negative:
killed by that signal) and ``started`` the Unix time the current child was started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import FrameType

#: A child that exits within this many seconds of its start is retried after a pause.
FAST_EXIT_S = 5.0
#: Seconds between a fast exit and the next start.
BACKOFF_S = 1.0
POLL_S = 0.05
USAGE = "usage: python -m testbed.supervise STATE -- ARGV..."


@dataclass(frozen=True)
class SupervisorState:
    """What a supervisor writes into its state file; see the module docstring."""

    supervisor: int
    child: int
    starts: int
    exits: int
    last_exit: int | None
    started: float

    @property
    def supervisor_alive(self) -> bool:
        return process_alive(self.supervisor)

    @property
    def child_alive(self) -> bool:
        return process_alive(self.child)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def read_state(path: Path) -> SupervisorState | None:
    """The state a supervisor wrote to ``path``; None when there is none (never started,
    or stopped)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return SupervisorState(**data)


def _write_state(path: Path, state: SupervisorState) -> None:
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(json.dumps(asdict(state)) + "\n")
    os.replace(scratch, path)


class _Supervisor:
    def __init__(self, state_file: Path, argv: list[str]) -> None:
        self.state_file = state_file
        self.argv = argv
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None
        self.state: SupervisorState | None = None

    def _ignore(self, signum: int, frame: FrameType | None) -> None:
        """A handler, not SIG_IGN, which the child would inherit."""

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        self._forward(signum)

    def _forward(self, signum: int) -> None:
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signum)

    def _say(self, message: str) -> None:
        name = self.state_file.stem
        print(f"testbed.supervise[{os.getpid()}] {name}: {message}", file=sys.stderr, flush=True)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._ignore)
        signal.signal(signal.SIGHUP, self._ignore)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            while not self.stopping:
                lived = self._run_child()
                if lived < FAST_EXIT_S:
                    self._pause(BACKOFF_S)
        finally:
            self.state_file.unlink(missing_ok=True)
        return 0

    def _run_child(self) -> float:
        """Start the child, wait for its end; return how long it lived."""
        started = time.time()
        before = self.state
        self.child = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
        if self.stopping:  # told to stop while starting it
            self._forward(signal.SIGTERM)
        self.state = SupervisorState(
            supervisor=os.getpid(),
            child=self.child.pid,
            starts=before.starts + 1 if before else 1,
            exits=before.exits if before else 0,
            last_exit=before.last_exit if before else None,
            started=started,
        )
        _write_state(self.state_file, self.state)
        if before is not None:
            self._say(f"started again as {self.child.pid}")
        code = self.child.wait()
        self.state = replace(self.state, exits=self.state.exits + 1, last_exit=code)
        _write_state(self.state_file, self.state)
        lived = time.time() - started
        self._say(f"process {self.child.pid} exited with {code} after {lived:.1f} s")
        return lived

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(POLL_S)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    return _Supervisor(Path(argv[1]), argv[3:]).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
