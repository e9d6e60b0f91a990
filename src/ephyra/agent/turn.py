"""A host's turn in a rollout, by the rules kept in the store.

A host may update to a version when, for each of its roles,

- every live host of each role the rules put before it (``after``) runs that version, and
- it holds one of the role's ``max_at_once`` slots: ``/rollout/<version>/slots/<role>/<n>``,
  created only if absent (compare-and-swap) under the host's lease, so at most that many
  hosts hold one, and a slot whose host died frees itself when the lease expires.

A host with several roles needs a slot in each; it takes them in role order, and gives
back what it took if one is full, so two hosts never hold each other's missing slot.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from ephyra.versions.desired import Rules
from ephyra.versions.keys import Keys
from ephyra.versions.store import Compare, Delete, Lease, Put, Store


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
        self.held: list[str] = []  # slot keys

    @property
    def free(self) -> bool:
        """No limit and no role to wait for: the turn is always there, for nothing."""
        deps = any(self.rules.after.get(role) for role in self.roles)
        return not deps and all(self.rules.limit(role) is None for role in self.roles)

    def watched(self) -> list[str]:
        """The prefixes whose changes can end the wait: the slots of the roles with a
        limit, and the members and running hosts of the roles waited for."""
        found = [self.keys.slots(self.version, r) for r in self.roles if self.rules.limit(r)]
        deps = sorted({d for r in self.roles for d in self.rules.after.get(r, ())})
        if deps:
            found += [self.keys.running(self.version), *(self.keys.members(d) for d in deps)]
        return found

    def take(self) -> str | None:
        """Take the turn: None when taken, else why the host must wait."""
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
            if not self._slot(role, limit):
                self.give_back()
                return f"all {limit} {role} slot(s) for {self.version} are taken"
        return None

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

    def _slot(self, role: str, limit: int) -> bool:
        root = self.keys.slots(self.version, role)
        taken = self.store.range(root)
        mine = [key for key, host in taken.items() if host == self.host]
        if mine:
            self.held += [key for key in mine if key not in self.held]
            return True
        start = zlib.crc32(self.host.encode()) % limit  # hosts try the slots in other orders
        for n in (*range(start, limit), *range(start)):
            key = f"{root}{n}"
            if key in taken:
                continue
            if self.store.txn([Compare(key, None)], [Put(key, self.host, self.lease)]):
                self.held.append(key)
                return True
        return False

    def give_back(self) -> None:
        """Free every slot held (only those still this host's)."""
        for key in self.held:
            self.store.txn([Compare(key, self.host)], [Delete(key)])
        self.held = []
