"""Locks through tooz: ``file://`` on one machine (default), ``etcd3+http://`` when distributed."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

from tooz import coordination

from ephyra.engine.journal import state_dir
from ephyra.errors import LockHeld, UsageError
from ephyra.urls import redact


def default_url() -> str:
    return f"file://{state_dir() / 'locks'}"


class RunLock:
    """An exclusive, non-blocking lock; released by the OS if its process dies."""

    def __init__(self, name: str, url: str | None = None) -> None:
        self.name = name
        self.url = url or default_url()
        member = f"{socket.gethostname()}-{os.getpid()}".encode()
        try:
            self._coord: Any = coordination.get_coordinator(self.url, member)
            self._coord.start(start_heart=True)
        except Exception as exc:
            raise UsageError(f"cannot use lock backend {redact(self.url)}: {exc}") from exc
        # a name holds cloud and host names: percent-encoded, it is one safe file name
        self._lock = self._coord.get_lock(quote(name, safe=" <->").encode())
        self.held = False

    def try_acquire(self) -> bool:
        self.held = bool(self._lock.acquire(blocking=False))
        return self.held

    def acquire(self, holder: str) -> None:
        """Take the lock or raise LockHeld naming ``holder``."""
        if not self.try_acquire():
            self.close()
            raise LockHeld(f"{self.name} is locked: {holder}")

    def release(self) -> None:
        if self.held:
            self._lock.release()
            self.held = False

    def close(self) -> None:
        self.release()
        self._coord.stop()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@contextlib.contextmanager
def holding(names: Sequence[str], url: str | None, holder: Callable[[str], str]) -> Iterator[None]:
    """Hold every lock of ``names``, taken in that order, or raise LockHeld naming
    ``holder(name)`` of the first one another process holds."""
    held: list[RunLock] = []
    try:
        for name in names:
            lock = RunLock(name, url)
            if not lock.try_acquire():
                lock.close()
                raise LockHeld(f"{name} is locked: {holder(name)}")
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            lock.close()
