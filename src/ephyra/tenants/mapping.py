"""What a tenant migration made on the other cloud, kept in the run's journal record.

Every resource the run brings to B has an entry, keyed by its kind and its id on A:
its name, its id on B and what the run did about it:

- ``intent``: the run is about to create it (written *before* the create call: a run
  resumed after a crash looks for it on B, by its mark, before creating it again);
- ``created``: the run made it on B (a rollback deletes it);
- ``reused``: B had an equal one already (never deleted);
- ``deleted``: a rollback deleted what the run had created.

Besides the resources of the tenant, a few kinds are the run's own: ``snapshot`` (a
server's image on A), ``transfer`` (that image copied to B), ``stopped`` (a server the run
stopped on A, to start again on rollback), ``transfer_keypair`` (a key pair the run's user
holds on B for a boot) and ``quota`` (B's quotas before, to give back).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

INTENT = "intent"
CREATED = "created"
REUSED = "reused"
DELETED = "deleted"
STATES = (INTENT, CREATED, REUSED, DELETED)
#: A mark's keys: on a server's metadata, an image's properties; a Neutron tag's prefix.
MARK_RUN = "ephyra_run"
MARK_FROM = "ephyra_from"
#: Image property of a server's transfer image (excluded from the tenant's export).
MARK_TRANSFER = "ephyra_transfer"
MARKS = frozenset({MARK_RUN, MARK_FROM, MARK_TRANSFER})


def key(kind: str, a_id: str) -> str:
    return f"{kind}:{a_id}"


def tag(run_id: str, a_id: str) -> list[str]:
    """The Neutron tags marking a thing the run made on B (from ``a_id`` on A)."""
    return [f"{MARK_RUN}:{run_id}", f"{MARK_FROM}:{a_id}"]


class Mapping:
    """The mapping of one migration: ``load`` gives the record's ``mapping`` dict,
    ``save`` writes the record. Safe to use from several threads (servers move at once)."""

    def __init__(self, entries: dict[str, dict[str, Any]], save: Callable[[], None]) -> None:
        self._entries = entries
        self._save = save
        self._lock = threading.RLock()

    def get(self, kind: str, a_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._entries.get(key(kind, a_id))
            return dict(found) if found else None

    def state(self, kind: str, a_id: str) -> str:
        found = self.get(kind, a_id)
        return str(found["state"]) if found else ""

    def b_of(self, kind: str, a_id: str) -> str:
        """The id on B of what ``a_id`` is on A ('' when nothing is there yet)."""
        found = self.get(kind, a_id)
        if not found or found["state"] not in (CREATED, REUSED):
            return ""
        return str(found.get("b") or "")

    def _put(self, kind: str, a_id: str, **fields: Any) -> None:
        with self._lock:
            entry = self._entries.setdefault(key(kind, a_id), {"kind": kind, "a": a_id})
            entry.update(fields)
            self._save()

    def intend(self, kind: str, a_id: str, name: str, **extra: Any) -> None:
        """About to create it on B: written before the call."""
        if self.state(kind, a_id) in (CREATED, REUSED):
            raise ValueError(f"{kind} {a_id} is on B already")
        self._put(kind, a_id, name=name, state=INTENT, **extra)

    def created(self, kind: str, a_id: str, b_id: str, **extra: Any) -> None:
        self._put(kind, a_id, b=b_id, state=CREATED, **extra)

    def reused(self, kind: str, a_id: str, name: str, b_id: str) -> None:
        self._put(kind, a_id, name=name, b=b_id, state=REUSED)

    def deleted(self, kind: str, a_id: str) -> None:
        self._put(kind, a_id, state=DELETED)

    def note(self, kind: str, a_id: str, **fields: Any) -> None:
        """Keep more about an entry (what a created thing had before: a quota's values)."""
        self._put(kind, a_id, **fields)

    def entries(self, kind: str, *states: str) -> Iterator[dict[str, Any]]:
        """The entries of ``kind`` (in ``states``, if given), in the order they were made."""
        with self._lock:
            found = [dict(e) for e in self._entries.values() if e["kind"] == kind]
        yield from (e for e in found if not states or e["state"] in states)

    def counts(self) -> dict[str, dict[str, int]]:
        """kind -> state -> how many."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for entry in self._entries.values():
                by = out.setdefault(entry["kind"], {})
                by[entry["state"]] = by.get(entry["state"], 0) + 1
        return out

    def to_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries.values()]
