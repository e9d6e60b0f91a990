"""Batches cut along the cloud's topology: where each host sits, and what may not go
down together.

A host's place (:class:`Place`) is its availability zone, host aggregates and cell, the
anti-affinity server groups, hard or soft, of its servers, and its failure domain (e.g.
Ceph's CRUSH racks). An upgrade reads it from the inventory's facts (:func:`place_of`:
``availability_zone``, ``aggregates``, ``cell``, ``anti_affinity``) and the specification's
``failure_domains``; an evacuation from Nova. A batch never holds two hosts whose
servers share an anti-affinity group, nor more hosts of one zone, aggregate or cell than
its limits allow, and only hosts of one failure domain. Hosts are taken in the order
given, first fit: a host that does not fit waits for the next batch.

Cutting reads nothing but its arguments.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ephyra.inventory.model import Host

#: The domains a role may limit (``per_domain``), and the host fact each is read from.
DOMAINS = {"zone": "availability_zone", "aggregate": "aggregates", "cell": "cell"}
#: The fact listing the anti-affinity server groups of a host's servers.
ANTI_AFFINITY = "anti_affinity"

T = TypeVar("T")


@dataclass(frozen=True)
class Place:
    """Where a host sits: its (domain, name) pairs, the anti-affinity groups of its
    servers, and its failure domain ('' for none named)."""

    domains: frozenset[tuple[str, str]] = frozenset()
    groups: frozenset[str] = frozenset()
    failure_domain: str = ""


def _names(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


def place_of(host: Host, failure_domains: Mapping[str, str]) -> Place:
    facts = host.fact
    return Place(
        domains=frozenset(
            (domain, name) for domain, fact in DOMAINS.items() for name in _names(facts.get(fact))
        ),
        groups=frozenset(_names(facts.get(ANTI_AFFINITY))),
        failure_domain=failure_domains.get(host.name, ""),
    )


def cut(
    items: Sequence[T],
    size: int,
    limits: Mapping[str, int],
    place: Callable[[T], Place],
) -> list[tuple[T, ...]]:
    """``items`` in batches of at most ``size``, first fit in their order, within the
    ``limits`` (domain -> most hosts of one of its names in a batch), anti-affinity
    groups apart, one failure domain per batch.

    Hosts of the same place (failure domain, groups, limited domains) fit a batch or not
    together: a batch looks at the first host left of each place, in their order, until
    it is full, and passes over a place that does not fit whole (a batch only gets
    fuller). A batch costs what it takes and the places it passes over, not every host
    left."""
    queues: dict[tuple[str, frozenset[str], frozenset[tuple[str, str]]], deque[int]] = {}
    for index, item in enumerate(items):
        where = place(item)
        limited = frozenset(d for d in where.domains if d[0] in limits)
        queues.setdefault((where.failure_domain, where.groups, limited), deque()).append(index)
    heads = [(queue[0], key) for key, queue in queues.items()]  # each place's first host
    heapq.heapify(heads)
    batches: list[tuple[T, ...]] = []
    while heads:
        batch: list[int] = []
        counts: Counter[tuple[str, str]] = Counter()
        groups: set[str] = set()
        domain = ""
        passed = []  # places that did not fit this batch: the next one looks at them again
        while heads and len(batch) < max(1, size):
            index, key = heapq.heappop(heads)
            failure_domain, its_groups, limited = key
            if batch and (
                failure_domain != domain
                or its_groups & groups
                or any(counts[d] >= limits[d[0]] for d in limited)
            ):
                passed.append((index, key))  # nor does any host of its place
                continue
            queue = queues[key]
            batch.append(queue.popleft())
            counts.update(limited)
            groups |= its_groups
            domain = failure_domain
            if queue:
                heapq.heappush(heads, (queue[0], key))
        for head in passed:
            heapq.heappush(heads, head)
        batches.append(tuple(items[i] for i in batch))
    return batches


def describe(limits: Mapping[str, int], places: Iterable[Place]) -> str:
    """The rules a stage's batches keep, in words ('' for none that applies)."""
    places = list(places)
    parts = [f"at most {limits[d]} per {d}" for d in DOMAINS if d in limits]
    if any(p.failure_domain for p in places):
        parts.append("one failure domain at a time")
    if any(p.groups for p in places):
        parts.append("anti-affine servers' hosts apart")
    return "; ".join(parts)
