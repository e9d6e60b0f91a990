"""A long-running service process of the testbed, in its own process group.

:class:`Daemon` starts one command with its output in a log file, optionally as another
system user (PostgreSQL and RabbitMQ refuse to run as root), and stops or kills its whole
process group, so that nothing it forked is left behind.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypedDict

from testbed.ironic import (
    STOP_GRACE_S,
    TestbedError,
    _signal_group,
    _tail,
    _wait_group_gone,
    stop_process_group,
)
from testbed.supervise import process_alive


def service_user(name: str) -> tuple[int, int] | None:
    """(uid, gid) of the system user ``name`` when running as root, else None: a non-root
    user runs every service as itself."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError as exc:
        raise TestbedError(f"system user {name!r} is missing (is its package installed?)") from exc
    return entry.pw_uid, entry.pw_gid


def give_to(path: Path, owner: tuple[int, int] | None) -> None:
    """Hand ``path`` and everything under it to ``owner`` (a no-op when None)."""
    if owner is None:
        return
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), *owner, follow_symlinks=False)
    os.chown(path, *owner)


def run(
    argv: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    owner: tuple[int, int] | None = None,
) -> None:
    """Run a setup command to completion, its output appended to ``log``; raise on failure."""
    started = time.monotonic()
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            check=False,
            **_as_user(owner),
        )
        out.write(f"(exit {done.returncode} after {time.monotonic() - started:.1f} s)\n".encode())
    if done.returncode != 0:
        raise TestbedError(f"{argv[0]} exited with {done.returncode}:\n{_tail(log)}")


class _User(TypedDict):
    user: int | None
    group: int | None
    extra_groups: list[int] | None


def _as_user(owner: tuple[int, int] | None) -> _User:
    """Popen arguments that run a process as ``owner`` with its supplementary groups."""
    if owner is None:
        return {"user": None, "group": None, "extra_groups": None}
    name = pwd.getpwuid(owner[0]).pw_name
    groups = [g.gr_gid for g in grp.getgrall() if name in g.gr_mem]
    return {"user": owner[0], "group": owner[1], "extra_groups": groups}


def http_ok(url: str) -> bool:
    """True when ``url`` answers a GET with a status below 400."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as reply:
            return int(reply.status) < 400
    except (urllib.error.URLError, OSError):
        return False


class Daemon:
    """One service process, its output appended to ``log``, in a process group of its own."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        owner: tuple[int, int] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        grace: float = STOP_GRACE_S,
    ) -> None:
        """``owner`` (uid, gid) runs it as that user; ``stop_signal`` asks it to stop, and
        the group is killed if anything is still alive ``grace`` seconds later."""
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.owner = owner
        self.stop_signal = stop_signal
        self.grace = grace
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Daemon({self.name!r}, pid={self.pid}, running={self.is_running})"

    @property
    def pid(self) -> int | None:
        """Process id of the leader, which is also the process group id."""
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        with self._lock:
            if self.is_running:
                raise TestbedError(f"{self.name} is already running")
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log, "ab") as out:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                    **_as_user(self.owner),
                )

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` every 0.1 s; raise if the process exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if not self.is_running:
                code = self._proc.returncode if self._proc is not None else None
                raise TestbedError(f"{self.name} exited with {code}:\n{_tail(self.log)}")
            time.sleep(0.1)
        raise TestbedError(f"{self.name}: not {what} after {timeout:.0f} s:\n{_tail(self.log)}")

    def stop(self) -> None:
        """Send the stop signal to the group; SIGKILL it if still alive after the grace."""
        with self._lock:
            if self._proc is None:
                return
            _signal_group(self._proc.pid, self.stop_signal)
            if not _wait_group_gone(self._proc, self.grace):
                self._kill_group()
            self._proc = None

    def kill(self) -> None:
        """SIGKILL the group at once, as when the machine loses the process."""
        with self._lock:
            if self._proc is None:
                return
            self._kill_group()
            self._proc = None

    def _kill_group(self) -> None:
        assert self._proc is not None
        _signal_group(self._proc.pid, signal.SIGKILL)
        if not _wait_group_gone(self._proc, STOP_GRACE_S):
            raise TestbedError(f"{self.name}: process group {self._proc.pid} survived SIGKILL")


#: The file, in a testbed's directory, naming its processes: one ``NAME PID`` a line.
PIDS_FILE = "pids"
#: The name of a foreground process that stops the rest itself when told (``testbed up``).
FOREGROUND = "testbed"


def write_pids(root: Path, pids: Mapping[str, int]) -> Path:
    """Record the processes of the testbed in ``root`` (replacing what was recorded)."""
    path = root / PIDS_FILE
    scratch = path.with_name(f".{PIDS_FILE}.tmp")
    scratch.write_text("".join(f"{name} {pid}\n" for name, pid in pids.items()))
    os.replace(scratch, path)
    return path


def read_pids(root: Path) -> dict[str, int] | None:
    """The processes recorded in ``root``; None when nothing is recorded there."""
    try:
        text = (root / PIDS_FILE).read_text()
    except FileNotFoundError:
        return None
    return {name: int(pid) for name, pid in (line.split() for line in text.splitlines() if line)}


def stop_recorded(root: Path, timeout: float = 60.0) -> dict[str, int]:
    """Stop the processes recorded in ``root`` and forget them; return what was recorded.

    The foreground process (:data:`FOREGROUND`), if any, is asked first with SIGTERM and
    given ``timeout`` seconds to stop the rest in order; every other recorded process group
    is then stopped (SIGTERM, SIGKILL after the grace), whoever started it."""
    entries = read_pids(root) or {}
    others = {name: pid for name, pid in entries.items() if name != FOREGROUND}
    foreground = entries.get(FOREGROUND)
    if foreground and process_alive(foreground):
        with contextlib.suppress(ProcessLookupError):
            os.kill(foreground, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_alive(foreground) and time.monotonic() < deadline:
            time.sleep(0.1)
    for pid in others.values():
        stop_process_group(pid)
    (root / PIDS_FILE).unlink(missing_ok=True)
    return entries
