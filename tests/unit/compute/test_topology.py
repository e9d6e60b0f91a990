"""Cutting hosts into batches along the cloud's topology: first fit in the hosts' order,
checked against the rule written plainly (scan every host left for each batch) on random
clouds, and on the clouds where scanning every host left would take minutes."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence

from ephyra.compute.topology import Place, cut


def plainly(places: Sequence[Place], size: int, limits: Mapping[str, int]) -> list[tuple[int, ...]]:
    """The rule as written: each batch scans every host left, in order, and takes each
    that fits."""
    left, batches = list(range(len(places))), []
    while left:
        batch: list[int] = []
        for i in list(left):
            if len(batch) >= max(1, size):
                break
            counts = Counter(d for j in batch for d in places[j].domains)
            if batch and (
                places[i].failure_domain != places[batch[0]].failure_domain
                or any(places[i].groups & places[j].groups for j in batch)
                or any(counts[d] >= limits[d[0]] for d in places[i].domains if d[0] in limits)
            ):
                continue
            batch.append(i)
            left.remove(i)
        batches.append(tuple(batch))
    return batches


def place(zone: str, groups: Sequence[str] = (), rack: str = "", *more: str) -> Place:
    domains = {("zone", zone), *(("aggregate", a) for a in more)}
    return Place(frozenset(domains), frozenset(groups), rack)


def test_first_fit_passes_over_a_host_that_does_not_fit_and_takes_it_next() -> None:
    places = [
        place("az1", ["g"]),
        place("az1"),  # a second of az1: over the limit
        place("az2", ["g"]),  # anti-affine with the first
        place("az2"),
        place("az3", [], "", "agg"),
    ]
    batches = cut(range(5), 3, {"zone": 1}, places.__getitem__)
    assert batches == [(0, 3, 4), (1, 2)]
    assert cut(range(5), 3, {"zone": 1}, places.__getitem__) == plainly(places, 3, {"zone": 1})


def test_a_batch_holds_one_failure_domain_and_size_zero_is_one() -> None:
    places = [place("az1", [], "r1"), place("az1", [], "r2"), place("az1", [], "r1")]
    assert cut(range(3), 5, {}, places.__getitem__) == [(0, 2), (1,)]
    assert cut(range(3), 0, {}, places.__getitem__) == [(0,), (1,), (2,)]
    assert cut([], 5, {}, places.__getitem__) == []


def test_the_same_batches_as_the_rule_written_plainly_on_random_clouds() -> None:
    rng = random.Random(2026)
    for _ in range(2000):
        zones = [f"az{i}" for i in range(rng.randint(1, 4))]
        aggregates = [f"agg{i}" for i in range(rng.randint(0, 3))]
        groups = [f"g{i}" for i in range(rng.randint(0, 5))]
        racks = ["", "r1", "r2"][: rng.randint(1, 3)]
        places = [
            place(
                rng.choice(zones),
                [g for g in groups if rng.random() < 0.3],
                rng.choice(racks),
                *(a for a in aggregates if rng.random() < 0.4),
            )
            for _ in range(rng.randint(0, 30))
        ]
        limits = {d: rng.randint(1, 3) for d in ("zone", "aggregate") if rng.random() < 0.6}
        size = rng.randint(0, 6)
        assert cut(range(len(places)), size, limits, places.__getitem__) == plainly(
            places, size, limits
        ), (places, limits, size)


def test_ten_thousand_hosts_of_one_anti_affinity_group_go_one_at_a_time() -> None:
    places = [place(f"az{i % 4}", ["everywhere"]) for i in range(10_000)]
    batches = cut(range(10_000), 50, {"zone": 2}, places.__getitem__)
    assert batches == [(i,) for i in range(10_000)]


def test_ten_thousand_hosts_in_four_zones_go_two_of_each_at_a_time() -> None:
    places = [place(f"az{i % 4}") for i in range(10_000)]
    batches = cut(range(10_000), 50, {"zone": 2}, places.__getitem__)
    assert len(batches) == 1250 and batches[0] == (0, 1, 2, 3, 4, 5, 6, 7)
    assert all(Counter(i % 4 for i in b) == dict.fromkeys(range(4), 2) for b in batches)
