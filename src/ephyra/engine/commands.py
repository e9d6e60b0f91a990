"""The external commands this process runs for its runs (strategies' and workloads'
commands), each in a process group of its own, and how they are ended: SIGTERM to the
group, then SIGKILL after a grace.

A command is registered while it runs (:func:`running`); when a run stops being this
process's (a conductor that lost its claim, a lock whose lease ran out), its driver ends
every command registered (:func:`end_all`), so that no command outlives the claim and
another process can redo the step. A process drives one run when it is a conductor;
``ephyra serve`` drives several and ends them all: a lost claim or lock lease means its
backend is lost to every run it drives.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

#: Seconds between SIGTERM and SIGKILL when a run that is no longer this process's
#: ends its commands (short: another process is about to redo the step).
END_GRACE = 1.0
#: Seconds between looks at a process group being ended.
POLL = 0.05


class Running:
    """One command while it runs; ``ended`` says why it was ended ('' if it was not)."""

    def __init__(self, proc: subprocess.Popen[Any]) -> None:
        self.proc = proc
        self.ended = ""


_running: set[Running] = set()
_lock = threading.Lock()


@contextlib.contextmanager
def running(proc: subprocess.Popen[Any]) -> Iterator[Running]:
    """Register ``proc`` (the leader of its process group) while inside. A command that
    :func:`end_all` ended is left only once its whole group is gone (or ``END_GRACE``
    after SIGKILL): its leader may exit before its children, and the step must not end,
    nor the run be handed over, while any of them still runs."""
    entry = Running(proc)
    with _lock:
        _running.add(entry)
    try:
        yield entry
    finally:
        with _lock:
            _running.discard(entry)
        if entry.ended:
            stop(proc, END_GRACE)


def stop(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL if any of it is still there
    after ``grace`` seconds; returns once the group is gone, or ``grace`` after SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + grace
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
        while _alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(POLL)
        if not _alive(proc.pid):
            return


def _alive(group: int) -> bool:
    """Whether a process of the process group ``group`` is left."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_all(why: str, grace: float = END_GRACE) -> list[int]:
    """End every command registered, each in a thread of its own; their pids."""
    with _lock:
        found = [entry for entry in _running if not entry.ended]
        for entry in found:
            entry.ended = why
    for entry in found:
        threading.Thread(
            target=stop, args=(entry.proc, grace), name="ephyra-end-command", daemon=True
        ).start()
    return [entry.proc.pid for entry in found]
