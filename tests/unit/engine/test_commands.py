"""Commands a run no longer this process's ends: SIGTERM to their process group, then
SIGKILL; a command ended so raises Interrupted, not a failure of its step."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ephyra.engine import commands
from ephyra.errors import Interrupted, StrategyFailed
from ephyra.strategies.base import stream


def wait_registered(count: int = 1) -> list[commands.Running]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with commands._lock:
            found = list(commands._running)
        if len(found) >= count:
            return found
        time.sleep(0.01)
    raise AssertionError("no command registered")


def gone(pgid: int, timeout: float = 5.0) -> bool:
    """Whether the process group ``pgid`` vanishes within ``timeout`` (a child that died
    is a zombie until the init process reaps it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_stream_ended_raises_interrupted_and_its_children_are_gone(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    failed: list[BaseException] = []

    def run() -> None:
        try:
            stream(["sh", "-c", f"echo $$ > {pids}; sleep 30 & wait"], lambda line: None)
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    (entry,) = wait_registered()
    assert commands.end_all("lost the claim") == [entry.proc.pid]
    thread.join(10)
    assert not thread.is_alive()
    assert len(failed) == 1 and isinstance(failed[0], Interrupted)
    assert "ended: lost the claim" in str(failed[0])
    assert not isinstance(failed[0], StrategyFailed)
    assert gone(entry.proc.pid)  # the shell and its sleep: the whole group
    assert commands.end_all("again") == []  # nothing left registered


def test_a_command_deaf_to_sigterm_is_killed_after_the_grace() -> None:
    proc = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; echo ready; sleep 30 & wait"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    with commands.running(proc) as entry:
        started = time.monotonic()
        commands.end_all("lost", grace=0.3)
        assert proc.wait(10) == -signal.SIGKILL
        assert time.monotonic() - started >= 0.3
        assert entry.ended == "lost"
    proc.stdout.close()


@pytest.mark.parametrize("code", [0, 3])
def test_a_command_not_ended_reports_as_before(code: int) -> None:
    if code:
        with pytest.raises(StrategyFailed, match="exited with 3"):
            stream(["sh", "-c", "exit 3"], lambda line: None)
    else:
        assert stream(["sh", "-c", "echo hi"], lambda line: None) == "hi"
