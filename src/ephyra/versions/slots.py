"""``max_at_once`` as a queue by creation order (etcd's recipe for a semaphore).

Each host waiting to update puts ``/rollout/<version>/slots/<role>/<host>`` under its
lease; the ``max_at_once`` keys created first (lowest create revision) hold the slots. A
waiter reads only its place (:meth:`~ephyra.versions.store.Store.position`), never the
whole queue.
A waiter watches only what can move it forward: the key just ahead of it, or, for the
first waiter, the role's queue (a slot being freed). A freed slot so wakes the next
waiter, and a waiter taking its slot rewrites its key, which wakes the one behind it:
never every waiting agent of the role.

A slot is held by the update, not only by the lease: when the host starts its update its
key is rewritten without a lease (``started``), so an agent that dies or loses its lease
mid-update keeps the slot. It is freed by the holder itself (in the transaction that
records its validated success, or when it gives the turn back), or by the first waiter
once the holder is known done: it runs the version (``/running_version/<version>/<host>``;
looked at on the first waiter's first look and then at most every ``FREE_CHECK_S``).
A holder that failed keeps its slot while it retries and after its last attempt, so at
most ``max_at_once`` hosts of a role fail before the role stops.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ephyra.versions.keys import Keys
from ephyra.versions.store import Compare, Delete, Lease, Op, Put, Store


@dataclass(frozen=True)
class Place:
    """Where a host stands in a role's queue: ``position`` 0 is the oldest key (counted up
    to ``limit + 1``: beyond the first waiter, only its neighbour matters)."""

    position: int
    limit: int
    watch: tuple[str, ...]  # what to watch for a change that can move it forward

    @property
    def holds(self) -> bool:
        return self.position < self.limit

    @property
    def next(self) -> bool:
        """The first waiter: the next slot freed is its."""
        return self.position == self.limit


def place(ahead: int, before: str | None, limit: int, root: str) -> Place:
    """The place of a key with ``ahead`` keys created before it, the last one ``before``,
    for ``limit`` slots."""
    if ahead < limit:
        return Place(ahead, limit, ())
    if ahead == limit or before is None:
        return Place(ahead, limit, (root,))  # the first waiter: any slot freed
    return Place(ahead, limit, (before,))


def is_started(value: str) -> bool:
    return bool(json.loads(value).get("started")) if value.startswith("{") else False


#: How often the first waiter looks for holders known done (it does on its first look).
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
        self.checked = -FREE_CHECK_S  # when the first waiter last looked for done holders

    def _value(self, **what: float) -> str:
        return json.dumps({"host": self.host, "version": self.version, **what}, sort_keys=True)

    def look(self, limit: int, lease: Lease) -> Place:
        """Join the queue if not in it, and read where the host stands (a few small
        reads, whatever the length of the queue)."""
        found = self.store.position(self.root, self.key, limit + 1)
        if found is None:
            waiting = self._value(since=round(time.time(), 3))
            self.store.txn([Compare(self.key, None)], [Put(self.key, waiting, lease)])
            found = self.store.position(self.root, self.key, limit + 1)
            if found is None:  # a lease lost meanwhile: the next look joins
                return Place(limit, limit, (self.root,))
        self.value = found.value
        if found.ahead == limit and time.monotonic() >= self.checked + FREE_CHECK_S:
            self.checked = time.monotonic()
            self._free_done(self.store.ranked(self.root, limit))
        return place(found.ahead, found.before, limit, self.root)

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
        started = self._value(started=round(time.time(), 3))
        return [Compare(self.key, self.value)], [Put(self.key, started)]

    def release_op(self) -> Delete:
        return Delete(self.key)
