"""Slots: at most N pieces of one kind of work at once, across every process (and every
machine) on one lock backend.

A slot is a lock of :mod:`ephyra.engine.locks` named ``<name> slot <i>``; ``Slots(name,
N)`` uses slots ``0..N-1`` of ``name``: two users with the same N share exactly N slots,
with different Ns at most the largest. A taker polls the slots until one is free (its
``checkpoint`` called between polls, so a stop request is still seen while it waits, and
a message said once about what it waits for), holds it while it works and gives it back.
A slot is a lock: a process that dies (a kill -9 too) frees its slots with it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ephyra.engine.locks import RunLock, default_url, started
from ephyra.errors import UsageError

#: Seconds between two polls of the slots while every one is held.
POLL = 1.0


class Slots:
    """``count`` slots of ``name`` on the lock backend ``url`` (default: ``file://`` in
    the state directory), shared by the threads of this process that take them through
    this object and by every other process on that backend."""

    def __init__(
        self,
        name: str,
        count: int,
        url: str | None = None,
        *,
        checkpoint: Callable[[], None] = lambda: None,
        message: Callable[[str], None] = lambda text: None,
        sleep: Callable[[float], None] = time.sleep,
        poll: float = POLL,
    ) -> None:
        if count < 1:
            raise UsageError(f"{name}: at least 1 slot, not {count}")
        self.name = name
        self.count = count
        self.url = url or default_url()
        self._checkpoint = checkpoint
        self._message = message
        self._sleep = sleep
        self._poll = poll
        self._coord: Any = None  # started on the first take
        self._held: dict[int, RunLock] = {}  # index -> the lock of a slot held
        self._mutex = threading.Lock()
        self._waiting = 0  # takers of this object waiting now

    def slot_name(self, index: int) -> str:
        return f"{self.name} slot {index}"

    def try_take(self) -> int | None:
        """A slot free now, taken (its index), or None. Each try is a lock of its own: a
        lock that was refused is not asked again (tooz's file lock would count it held)."""
        with self._mutex:
            if self._coord is None:
                self._coord = started(self.url)
            for index in range(self.count):
                if index in self._held:
                    continue
                lock = RunLock(self.slot_name(index), self.url, self._coord)
                if lock.try_acquire():
                    self._held[index] = lock
                    return index
        return None

    def held(self) -> int:
        """How many slots this object holds."""
        with self._mutex:
            return len(self._held)

    def take(self) -> int:
        """A slot, once one is free (its index): raises what ``checkpoint`` raises."""
        waiting = False
        try:
            while True:
                self._checkpoint()
                index = self.try_take()
                if index is not None:
                    return index
                if not waiting:
                    waiting = True
                    self._waits()
                self._sleep(self._poll)
        finally:
            if waiting:
                with self._mutex:
                    self._waiting -= 1

    def _waits(self) -> None:
        """Say what a taker waits for, unless another taker of this object says it now."""
        with self._mutex:
            self._waiting += 1
            if self._waiting > 1:
                return
        others = self.count - self.held()
        self._message(
            f"waiting for a slot of {self.name}: {others} of {self.count} held by other runs"
        )

    def give(self, index: int) -> None:
        with self._mutex:
            self._held.pop(index).release()

    @contextlib.contextmanager
    def holding(self) -> Iterator[int]:
        """A slot held for the block (its index)."""
        index = self.take()
        try:
            yield index
        finally:
            self.give(index)

    def close(self) -> None:
        """Give back every slot held and leave the backend."""
        with self._mutex:
            for lock in self._held.values():
                lock.release()
            self._held.clear()
            if self._coord is not None:
                self._coord.stop()
                self._coord = None

    def __enter__(self) -> Slots:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
