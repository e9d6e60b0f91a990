"""``max_at_once`` as a queue by creation order (etcd's recipe for a semaphore).

Each host waiting to update puts ``/rollout/<version>/slots/<role>/<host>`` under its
lease; the ``max_at_once`` keys created first (lowest create revision) hold the slots. A
waiter reads only its place (:meth:`~ephyra.versions.store.Store.position`), never the
whole queue.
Joining and each look are one request to etcd (a transaction that writes the key if it
is new and reads its place, and the desired version; the key's create revision is kept,
not read again).
A waiter watches only what can move it forward, from the revision of its look: the key
just ahead of it, or, for the first waiter, the keys of the role's queue being deleted (a
slot freed; a key joining or rewritten never moves it). A freed slot so wakes the next
waiter, and a waiter taking its slot rewrites its key, which wakes the one behind it:
never every waiting agent of the role. That rewrite says where its host stood, as of
which revision: the one behind it learns its own place from it, without a request (it
takes its slot at once, or is the first waiter), when its watch saw it.

A slot is held by the update, not only by the lease: when the host starts its update its
key is rewritten without a lease (``started``), so an agent that dies or loses its lease
mid-update keeps the slot. It is freed by the holder itself (in the transaction that
records its validated success, or when it gives the turn back), or by the first waiter
once the holder is known done: it runs the version (``/running_version/<version>/<host>``;
looked at once the first waiter has waited ``FREE_CHECK_S``, and then every
``FREE_CHECK_S``).
A holder that failed keeps its slot while it retries and after its last attempt, so at
most ``max_at_once`` hosts of a role fail before the role stops.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ephyra.versions.keys import Keys
from ephyra.versions.store import Compare, Delete, Deletes, Lease, Op, Put, Store, Watched


@dataclass(frozen=True)
class Place:
    """Where a host stands in a role's queue: ``position`` 0 is the oldest key (counted up
    to ``limit + 1``: beyond the first waiter, only its neighbour matters)."""

    position: int
    limit: int
    watch: tuple[Watched, ...]  # what to watch for a change that can move it forward

    @property
    def holds(self) -> bool:
        return self.position < self.limit

    @property
    def next(self) -> bool:
        """The first waiter: the next slot freed is its."""
        return self.position == self.limit


def place(ahead: int, before: str | None, limit: int, root: str) -> Place:
    """The place of a key with ``ahead`` keys created before it, the last one ``before``,
    for ``limit`` slots. The first waiter watches the queue for a key deleted (a slot
    freed; a key written there never moves it), the others the key just ahead of them
    (it took its slot, or left)."""
    if ahead < limit:
        return Place(ahead, limit, ())
    if ahead == limit or before is None:
        return Place(ahead, limit, (Deletes(root),))
    return Place(ahead, limit, (before,))


def is_started(value: str) -> bool:
    return bool(json.loads(value).get("started")) if value.startswith("{") else False


NOTHING: Mapping[str, str | None] = {}

#: How long the first waiter waits before it looks for holders known done, and then how
#: often it looks again.
FREE_CHECK_S = 2.0


class Queue:
    """One host's key in one role's queue for one version."""

    def __init__(self, store: Store, keys: Keys, version: str, role: str, host: str) -> None:
        self.store = store
        self.keys = keys
        self.version = version
        self.root = keys.slots(version, role)
        self.key = self.root + host
        self.host = host
        self.value: str | None = None  # the key's value as last read
        self.created: int | None = None  # its place in the order of creation, as last read
        self.revision: int | None = None  # the store's revision at the last look
        self.checked: float | None = None  # when the first waiter last looked for done holders
        self.released = False  # its delete went into the transaction that ended the update
        self.desired: str | None = None  # ``/current_version`` as the last look read it
        self.ahead = 0  # the keys before it as of ``revision``
        self.before: str | None = None  # the key just ahead of it, as of its last look

    def _value(self, **what: float) -> str:
        return json.dumps({"host": self.host, "version": self.version, **what}, sort_keys=True)

    def look(self, limit: int, lease: Lease, seen: Mapping[str, str | None] = NOTHING) -> Place:
        """Join the queue if not in it, and read where the host stands and the desired
        version (:attr:`desired`): one request to etcd, whatever the length of the queue;
        none when what the watch ``seen`` tells is enough (:meth:`_told`)."""
        told = self._told(limit, seen)
        if told is not None:
            return told
        waiting = Put(self.key, self._value(since=round(time.time(), 3)), lease)
        current = self.keys.current_version
        found = self.store.position(
            self.root, self.key, limit + 1, join=waiting, created=self.created, read=[current]
        )
        if found is None:  # a lease lost meanwhile: the next look joins
            self.created = self.revision = self.desired = None
            return Place(limit, limit, (Deletes(self.root),))
        self.value, self.created, self.desired = found.value, found.created, found.read[current]
        self.revision = found.revision or None
        self.ahead, self.before = found.ahead, found.before
        self.released = False
        if found.ahead != limit:
            self.checked = None
        elif self.checked is None:
            self.checked = time.monotonic()  # holders usually end by themselves meanwhile
        elif time.monotonic() >= self.checked + FREE_CHECK_S:
            self.checked = time.monotonic()
            self._free_done(self.store.ranked(self.root, limit))
        return place(found.ahead, found.before, limit, self.root)

    def _told(self, limit: int, seen: Mapping[str, str | None]) -> Place | None:
        """Its place without a request, when the watch saw the key just ahead start: that
        host then held a slot with ``ahead`` keys before it as of revision ``at``. If that
        is after this host's last look (no key can have been created between the two
        since), this one had ``ahead + 1`` before it then, and has no more now. None when
        that cannot be told (or the desired version changed: a look reads it)."""
        if self.before is None or self.revision is None or self.keys.current_version in seen:
            return None
        value = seen.get(self.before)
        mark = json.loads(value) if value and value.startswith("{") else {}
        ahead, at = mark.get("ahead"), mark.get("at")
        if not (mark.get("started") and isinstance(ahead, int) and isinstance(at, int)):
            return None
        if at < self.revision or ahead + 1 > limit:
            return None
        self.ahead, self.revision, self.before = ahead + 1, at, None
        if self.ahead == limit and self.checked is None:
            self.checked = time.monotonic()
        return place(self.ahead, None, limit, self.root)

    def due(self) -> float | None:
        """Seconds until the first waiter looks for holders known done (None: not the
        first waiter)."""
        if self.checked is None:
            return None
        return max(0.0, self.checked + FREE_CHECK_S - time.monotonic())

    def _free_done(self, holders: Sequence[tuple[str, str]]) -> None:
        """Free the slots whose holders are known done (they run the version)."""
        started = [(key, value) for key, value in holders if is_started(value)]
        if not started:
            return
        root = self.keys.running(self.version)
        running = {key[len(root) :] for key in self.store.range(root)}
        for key, value in started:
            if key[len(self.root) :] in running:
                self.store.txn([Compare(key, value)], [Delete(key)])

    def start_ops(self) -> tuple[list[Compare], list[Op]]:
        """Rewrite the key without a lease: the update holds the slot from now on."""
        if self.value is None or is_started(self.value):
            return [], []
        # where it stood as of which revision: what the host behind learns its place from
        mark = {} if self.revision is None else {"ahead": self.ahead, "at": self.revision}
        started = self._value(started=round(time.time(), 3), **mark)
        return [Compare(self.key, self.value)], [Put(self.key, started)]

    def release_op(self) -> Delete:
        self.released = True
        return Delete(self.key)
