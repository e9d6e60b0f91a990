"""A host's turn in a rollout, by the rules kept in the store.

A host may update to a version when, for each of its roles,

- every live host of each role the rules put before it (``after``) runs that version, and
- it holds one of the role's ``max_at_once`` slots: it is among the first ``max_at_once``
  hosts in the role's queue (:mod:`ephyra.versions.slots`).

A host with several roles needs a slot in each; it queues for them in role order, one
after the other, holding the slots it has: every host takes them in the same order, so two
hosts never hold each other's missing slot. When it holds them all, one transaction makes
them the update's (no lease: a lease lost mid-update does not free them), if the version
is still the desired one: a turn taken for a version already superseded is never used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ephyra.versions.desired import Rules
from ephyra.versions.keys import Keys
from ephyra.versions.slots import NOTHING, Queue
from ephyra.versions.store import Compare, Delete, Lease, Store, Watched


class Turn:
    def __init__(
        self,
        store: Store,
        keys: Keys,
        host: str,
        roles: Sequence[str],
        version: str,
        rules: Rules,
        lease: Lease,
    ) -> None:
        self.store = store
        self.keys = keys
        self.host = host
        self.roles = sorted(roles)
        self.version = version
        self.rules = rules
        self.lease = lease
        self.held: list[str] = []  # kept for callers; the queues are read each time
        self.queues = {
            r: Queue(store, keys, version, r, host) for r in self.roles if rules.limit(r)
        }
        self._watch: tuple[Watched, ...] = ()
        #: the store's revision at the look that left the host waiting (None: unknown)
        self.after: int | None = None
        #: the last :meth:`take` started the update in a transaction that found the
        #: version still desired
        self.started = False
        #: whether the last :meth:`take` found another version desired (None: it did not
        #: look in a queue, which reads the desired version)
        self.superseded: bool | None = None

    @property
    def free(self) -> bool:
        """No limit and no role to wait for: the turn is always there, for nothing."""
        deps = any(self.rules.after.get(role) for role in self.roles)
        return not deps and all(self.rules.limit(role) is None for role in self.roles)

    def watched(self) -> list[Watched]:
        """The prefixes whose changes can end the wait (as of the last :meth:`take`, after
        its revision :attr:`after`): what moves the host forward in the queue it waits in,
        and the members and running hosts of the roles waited for."""
        found = list(self._watch)
        deps = sorted({d for r in self.roles for d in self.rules.after.get(r, ())})
        if deps:
            found += [self.keys.running(self.version), *(self.keys.members(d) for d in deps)]
        return found

    def take(self, seen: Mapping[str, str | None] = NOTHING) -> str | None:
        """Take the turn: None when taken, else why the host must wait. ``seen``: what the
        watch of :meth:`watched` saw (:meth:`ephyra.versions.store.Watch.seen`), which may
        spare a look in a queue."""
        self._watch, self.after, self.started, self.superseded = (), None, False, None
        waiting = self._dependencies()
        if waiting:
            return waiting
        for role in self.roles:
            limit = self.rules.limit(role)
            if limit is None:
                continue
            if limit == 0:
                self.give_back()
                return f"{role} is frozen for {self.version} (max_at_once 0)"
            queue = self.queues[role]
            found = queue.look(limit, self.lease, seen)
            self.superseded = queue.desired != self.version
            if self.superseded:
                return f"{self.version} is no longer the desired version"
            if not found.holds:
                self._watch, self.after = found.watch, queue.revision
                return (
                    f"all {limit} {role} slot(s) for {self.version} are taken "
                    f"({'it is next' if found.next else 'it waits behind another host'})"
                )
        compare, ops = [Compare(self.keys.current_version, self.version)], []
        for queue in self.queues.values():
            more = queue.start_ops()
            compare += more[0]
            ops += more[1]
        if ops and not self.store.txn(compare, ops):
            self.superseded = None  # or is it: read it again
            self._watch = tuple(q.root for q in self.queues.values())
            revisions = [q.revision for q in self.queues.values()]
            self.after = None if None in revisions else min(r for r in revisions if r)
            return "its place in a queue changed, or the version is no longer desired"
        self.started = bool(ops)
        self.held = [q.key for q in self.queues.values()]
        return None

    def due(self) -> float | None:
        """Seconds until a look is due though nothing woke the host (None: none due)."""
        found = [d for q in self.queues.values() if (d := q.due()) is not None]
        return min(found, default=None)

    def _dependencies(self) -> str | None:
        running: set[str] | None = None
        for role in self.roles:
            for dep in self.rules.after.get(role, ()):
                root = self.keys.members(dep)
                members = {key[len(root) :] for key in self.store.range(root)} - {self.host}
                if not members:
                    continue
                if running is None:
                    root = self.keys.running(self.version)
                    running = {key[len(root) :] for key in self.store.range(root)}
                behind = sorted(members - running)
                if behind:
                    shown = ", ".join(behind[:5]) + (" ..." if len(behind) > 5 else "")
                    return f"{role} waits for {dep} ({len(behind)} not at {self.version}: {shown})"
        return None

    def release_ops(self) -> list[Delete]:
        """The deletes that free this host's slots, for the transaction ending the update
        (once it landed, :meth:`give_back` has nothing left to free)."""
        return [q.release_op() for q in self.queues.values()]

    def give_back(self) -> None:
        """Free every slot held or waited for (but those already freed by the transaction
        that ended the update)."""
        ops = [q.release_op() for q in self.queues.values() if not q.released]
        if ops:
            self.store.txn([], ops)
        self.held = []
