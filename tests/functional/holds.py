"""Holding a running process where a test needs it: a gate it waits on until the test
opens it, so that a kill or a request lands at a known point, whatever the machine's
speed.

``Gate`` is a file: a shell command waits for it (``gate.wait_command()``, the step of a
workload or a strategy), and the test opens it once its request has been seen.
``held_ephyra`` runs the real ``ephyra`` command line in a process of its own, stopped
before the Nth call of one of its functions until a gate opens (or a kill comes): where
no command of the operator's runs at the point a test needs.
"""

from __future__ import annotations

import functools
import importlib
import os
import runpy
import shlex
import sys
import time
from pathlib import Path
from typing import Any


class Gate:
    """A file that commands wait for until the test creates it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def wait_command(self, timeout: int = 600) -> str:
        """A shell command that ends once the gate is open; it fails after ``timeout``
        seconds (a test that failed before opening it leaves no process behind)."""
        path = shlex.quote(str(self.path))
        return (
            f"t=$(($(date +%s) + {timeout})); until [ -e {path} ]; do "
            '[ "$(date +%s)" -lt "$t" ] || exit 1; sleep 0.05; done'
        )

    def open(self) -> None:
        self.path.touch()

    @property
    def is_open(self) -> bool:
        return self.path.exists()


def for_node(name: str, command: str) -> str:
    """``command`` for the node ``name`` only (``command`` workload); others pass at once."""
    return f'[ "$EPHYRA_NODE_NAME" != {shlex.quote(name)} ] || {{ {command}; }}'


def migrating(conn: Any) -> bool:
    """Whether Nova (an openstacksdk connection) has a live migration under way: a kill
    now lands inside it (the testbed's fake driver takes about 5 s to move a server)."""
    return any(m.status == "running" for m in conn.compute.migrations())


HELD = "held at"
HOLD_LIMIT = 600  # seconds


def held_ephyra(target: str, call: int, gate: Gate) -> list[str]:
    """The argv of an ``ephyra`` command line (its arguments follow) held at the
    ``call``-th call of ``target`` (``module:function`` or ``module:Class.method``):
    before that call it says ``held at TARGET call N`` on stderr and waits for ``gate``.
    Everything else is the real command, in a process of its own."""
    return [sys.executable, __file__, target, str(call), str(gate.path), "--"]


def _hold(target: str, call: int, gate: Gate) -> None:
    module, _, attribute = target.partition(":")
    owner: Any = importlib.import_module(module)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = 0

    @functools.wraps(original)
    def held(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call:
            print(f"{HELD} {target} call {call}", file=sys.stderr, flush=True)
            deadline = time.monotonic() + HOLD_LIMIT
            while not gate.is_open:
                if time.monotonic() > deadline:  # its test failed and left it: leave too
                    os._exit(1)
                time.sleep(0.05)
        return original(*args, **kwargs)

    setattr(owner, name, held)


if __name__ == "__main__":
    target, nth, gate_path, dashes, *ephyra_args = sys.argv[1:]
    assert dashes == "--", sys.argv
    del sys.path[0]  # this file's folder: its packages are not the command's
    _hold(target, int(nth), Gate(Path(gate_path)))
    sys.argv = ["ephyra", *ephyra_args]
    runpy.run_module("ephyra.cli.main", run_name="__main__", alter_sys=True)
