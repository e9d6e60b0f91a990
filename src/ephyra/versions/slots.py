"""``max_at_once`` as a queue by creation order (etcd's recipe for a semaphore).

Each host waiting to update puts ``/rollout/<version>/slots/<role>/<host>`` under its
lease; the ``max_at_once`` keys created first (lowest create revision) hold the slots.
A waiter watches only what can move it forward: the key just ahead of it, or, for the
first waiter, the role's queue (a slot being freed). A freed slot so wakes the next
waiter, and a waiter taking its slot rewrites its key, which wakes the one behind it:
never every waiting agent of the role.

A slot is held by the update, not only by the lease: when the host starts its update its
key is rewritten without a lease (``started``), so an agent that dies or loses its lease
mid-update keeps the slot. It is freed by the holder itself (in the transaction that
records its validated success, or when it gives the turn back), or by the first waiter
once the holder is known done: it runs the version (``/running_version/<version>/<host>``).
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
    """Where a host stands in a role's queue: ``position`` 0 is the oldest key."""

    position: int
    limit: int
    watch: tuple[str, ...]  # what to watch for a change that can move it forward

    @property
    def holds(self) -> bool:
        return self.position < self.limit

    @property
    def ahead(self) -> int:
        """Hosts to go before this one gets a slot."""
        return max(0, self.position - self.limit + 1)


def place(order: Sequence[str], key: str, limit: int, root: str) -> Place:
    """The place of ``key`` in ``order`` (keys oldest first) for ``limit`` slots."""
    position = list(order).index(key)
    if position < limit:
        return Place(position, limit, ())
    if position == limit:
        return Place(position, limit, (root,))  # the first waiter: any slot freed
    return Place(position, limit, (order[position - 1],))


def is_started(value: str) -> bool:
    return bool(json.loads(value).get("started")) if value.startswith("{") else False


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

    def _value(self, **what: float) -> str:
        return json.dumps({"host": self.host, "version": self.version, **what}, sort_keys=True)

    def look(self, limit: int, lease: Lease) -> Place:
        """Join the queue if not in it, and read where the host stands."""
        entries = dict(self.store.ranked(self.root))
        if self.key not in entries:
            waiting = self._value(since=round(time.time(), 3))
            self.store.txn([Compare(self.key, None)], [Put(self.key, waiting, lease)])
            entries = dict(self.store.ranked(self.root))
            if self.key not in entries:  # a lease lost meanwhile: the next look joins
                return Place(limit, limit, (self.root,))
        self.value = entries[self.key]
        found = place(list(entries), self.key, limit, self.root)
        if found.position == limit:
            self._free_done(list(entries.items())[:limit])
            found = Place(found.position, limit, (self.root, self.keys.running(self.version)))
        return found

    def _free_done(self, holders: Sequence[tuple[str, str]]) -> None:
        """Free the slots whose holders are known done (they run the version)."""
        root = self.keys.running(self.version)
        running = {key[len(root) :] for key in self.store.range(root)}
        for key, value in holders:
            if key[len(self.root) :] in running and is_started(value):
                self.store.txn([Compare(key, value)], [Delete(key)])

    def start_ops(self) -> tuple[list[Compare], list[Op]]:
        """Rewrite the key without a lease: the update holds the slot from now on."""
        if self.value is None or is_started(self.value):
            return [], []
        started = self._value(started=round(time.time(), 3))
        return [Compare(self.key, self.value)], [Put(self.key, started)]

    def release_op(self) -> Delete:
        return Delete(self.key)
