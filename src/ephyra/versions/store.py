"""The key-value store of versions, host lifecycle and roles: one interface, two backends.

``etcd3+http://HOST:PORT`` is etcd (the distributed default, through etcd3gw);
``sqlite:///PATH`` is a file on one machine (the embedded default, beside the journal).
Both give the same guarantees, and one test suite runs against both:

- a range read returns every key under a prefix from one consistent snapshot, and can
  give them in the order they were created (etcd's create revision);
- a transaction compares keys and applies its puts and deletes atomically, or none;
- a key written with a lease disappears when the lease is not refreshed within its TTL;
- a watch wakes up when anything under its prefixes changes (or, for a prefix given as
  :class:`Deletes`, when a key under it is deleted), after a revision a read returned.

Backends are plugins of the ``ephyra.stores`` entry-point namespace, chosen by the URL's
scheme.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from ephyra import plugins
from ephyra.errors import PluginError, UsageError
from ephyra.paths import state_dir
from ephyra.urls import redact

NAMESPACE = "ephyra.stores"


def default_url() -> str:
    return f"sqlite:///{state_dir() / 'versions.db'}"


@dataclass(frozen=True)
class Compare:
    """True when ``key`` holds ``value``; ``value=None``: when ``key`` does not exist."""

    key: str
    value: str | None


@dataclass(frozen=True)
class Put:
    key: str
    value: str
    lease: Lease | None = None


@dataclass(frozen=True)
class Delete:
    key: str


Op = Put | Delete


@dataclass(frozen=True)
class Position:
    """A key's place in a queue: its value, how many keys were created before it (up to
    the most asked for), and the one created just before it (None: it is the oldest).
    ``created`` is the key's place in the order of creation (etcd's create revision),
    ``revision`` the store's revision it was read at (0: the store has none): a watch
    ``after`` it wakes for every change made since."""

    value: str
    ahead: int
    before: str | None
    created: int = field(default=0, compare=False)
    revision: int = field(default=0, compare=False)
    #: the other keys asked for, read with it (None: no such key)
    read: Mapping[str, str | None] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Deletes:
    """A prefix watched for its keys being deleted only (a key written there is not a
    change this watch wakes for)."""

    prefix: str


Watched = str | Deletes


class Lease(ABC):
    """A time-to-live shared by the keys written with it."""

    id: int
    ttl: int

    @abstractmethod
    def refresh(self) -> None:
        """Start the TTL again; raises LeaseExpired once the lease has expired."""

    @abstractmethod
    def revoke(self) -> None:
        """End the lease now: its keys disappear."""


class Watch(ABC):
    """Wakes up when a key under a prefix changes."""

    @abstractmethod
    def wait(self, timeout: float) -> bool:
        """True if something changed since the last wait (or the watch began);
        False after ``timeout`` seconds of no change."""

    @abstractmethod
    def cancel(self) -> None: ...

    def seen(self) -> Mapping[str, str | None]:
        """The last value this watch saw of each key it watches by its full name (None:
        deleted), among the changes it woke for; empty when the store cannot tell."""
        return {}


class Store(ABC):
    """Keys and values are text; keys are absolute (``/current_version``)."""

    url: str

    @abstractmethod
    def __init__(self, url: str) -> None: ...

    @abstractmethod
    def get(self, key: str) -> str | None: ...

    @abstractmethod
    def range(self, prefix: str) -> dict[str, str]:
        """Every key under ``prefix`` with its value, read at one revision."""

    @abstractmethod
    def ranked(self, prefix: str, limit: int | None = None) -> list[tuple[str, str]]:
        """The keys under ``prefix`` with their values, read at one revision, oldest first
        (the first ``limit`` of them): in the order the keys were created (a key rewritten
        keeps its place; one deleted and written again goes last)."""

    @abstractmethod
    def position(
        self,
        prefix: str,
        key: str,
        most: int,
        *,
        join: Put | None = None,
        created: int | None = None,
        read: Sequence[str] = (),
    ) -> Position | None:
        """Where ``key`` stands among the keys under ``prefix`` in the order of
        :meth:`ranked`, the keys before it counted up to ``most``, without sending them
        all; None when it does not exist. ``join``: the key written first if it does not
        exist; ``created``: its :attr:`Position.created` as last read (a hint that saves
        reading it again); ``read``: other keys read with it (:attr:`Position.read`). One
        request to etcd when the hint holds or the key is new."""

    @abstractmethod
    def put(self, key: str, value: str, lease: Lease | None = None) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def txn(
        self, compare: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> bool:
        """Apply ``success`` if every comparison holds, else ``failure``; True if they held."""

    @abstractmethod
    def lease(self, ttl: int) -> Lease: ...

    @abstractmethod
    def watch(self, *prefixes: Watched, after: int | None = None) -> Watch:
        """One watch waking when a key under any of ``prefixes`` changes (a
        :class:`Deletes` prefix: is deleted). Without ``after`` its first wait returns at
        once (read the state then); with ``after`` (a :attr:`Position.revision`), it wakes
        for the changes made after that revision, and at once if the store cannot tell
        what changed since."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; leases are left to expire."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_store(url: str | None = None) -> Store:
    """The store a URL names (default: SQLite in the state directory)."""
    url = url or default_url()
    scheme = url.partition("://")[0].partition("+")[0]
    if not url.partition("://")[2]:
        raise UsageError(f"store URL {redact(url)!r} is not SCHEME://...")
    try:
        cls = plugins.load(NAMESPACE, scheme, Store)
    except PluginError as exc:
        raise UsageError(f"unknown store {redact(url)!r}: {exc}") from exc
    return cls(url)
