"""Locks through tooz: ``file://`` on one machine (default), etcd when distributed.

An etcd lock URL is :mod:`ephyra.etcd`'s (``etcd3+https://[USER@]HOST:PORT?ca_cert=FILE&
cert_cert=FILE&cert_key=FILE``) plus tooz's own options (``lock_timeout``, ``timeout``,
``membership_timeout``, ``api_version``). tooz builds its etcd client from the URL alone,
without a user: its driver gets a URL without credentials, and its client is replaced by
ours before it starts.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

from tooz import coordination
from tooz.drivers.etcd3gw import Etcd3Lock

from ephyra.errors import BackendError, LockHeld, UsageError
from ephyra.etcd import EtcdURL, describe
from ephyra.paths import private_dir, state_dir
from ephyra.urls import redact

#: tooz's etcd3gw driver options an etcd lock URL may carry.
TOOZ_OPTIONS = ("timeout", "lock_timeout", "membership_timeout", "api_version")
#: tooz's own default for ``timeout`` (seconds): its etcd requests, and its lock leases.
TOOZ_TIMEOUT = 30


def default_url() -> str:
    """``file://`` locks in the state directory (made ``0700``: lock names hold host names)."""
    return f"file://{private_dir(state_dir() / 'locks')}"


def coordinator(url: str, member: bytes) -> Any:
    """tooz's coordinator for ``url``, not started; on etcd, with our etcd client."""
    if not url.startswith("etcd3"):
        return coordination.get_coordinator(url, member)
    etcd = EtcdURL.parse(url, own=TOOZ_OPTIONS, what="locks")
    query = urlencode(dict(etcd.options))
    coord: Any = coordination.get_coordinator(f"{etcd.scheme}://{etcd.hostport}?{query}", member)
    # the driver read its options (a timeout that is not a number is refused there)
    coord.client = etcd.client(int(etcd.options.get("timeout", TOOZ_TIMEOUT)))
    return coord


def started(url: str) -> Any:
    """tooz's coordinator for ``url``, started, as this process's member."""
    member = f"{socket.gethostname()}-{os.getpid()}".encode()
    try:
        coord: Any = coordinator(url, member)
        coord.start(start_heart=True)
    except UsageError:
        raise
    except Exception as exc:
        what = describe(exc)
        raise BackendError(f"cannot use lock backend {redact(url)}: {what}") from exc
    return coord


class RunLock:
    """An exclusive, non-blocking lock; released by the OS if its process dies.

    ``coord``: a started coordinator of ``url`` to take it through (several locks of one
    process share it; it is theirs to stop), else the lock starts and stops its own."""

    def __init__(self, name: str, url: str | None = None, coord: Any = None) -> None:
        self.name = name
        self.url = url or default_url()
        self._own = coord is None
        self._coord: Any = started(self.url) if coord is None else coord
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

    def still_held(self) -> bool:
        """Whether this process holds the lock still: on etcd, its key still carries this
        lock's value (its lease did not run out, nobody deleted it); a file lock is held
        until released. A backend that cannot be asked says no."""
        if not self.held:
            return False
        if not isinstance(self._lock, Etcd3Lock):
            return True
        try:
            values = self._coord.client.get(self._lock._key.decode())
        except Exception:
            return False
        return bool(values) and values[0] == base64.b64decode(self._lock._uuid)

    def release(self) -> None:
        if self.held:
            self._lock.release()
            self.held = False

    def close(self) -> None:
        self.release()
        if self._own:
            self._coord.stop()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@contextlib.contextmanager
def holding(
    names: Sequence[str], url: str | None, holder: Callable[[str], str]
) -> Iterator[list[RunLock]]:
    """Hold every lock of ``names``, taken in that order, or raise LockHeld naming
    ``holder(name)`` of the first one another process holds; gives the locks held."""
    held: list[RunLock] = []
    try:
        for name in names:
            lock = RunLock(name, url)
            if not lock.try_acquire():
                lock.close()
                raise LockHeld(f"{name} is locked: {holder(name)}")
            held.append(lock)
        yield held
    finally:
        for lock in reversed(held):
            lock.close()
