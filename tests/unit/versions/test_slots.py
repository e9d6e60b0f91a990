"""The slot queue (order by creation, what each waiter watches, who holds) on the SQLite
store, and the retry backoff."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ephyra.agent.turn import Turn
from ephyra.versions import desired, slots
from ephyra.versions.desired import Rules
from ephyra.versions.keys import Keys
from ephyra.versions.slots import place
from ephyra.versions.sqlite import SqliteStore
from ephyra.versions.store import Deletes, Position

KEYS = Keys("/t")


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(f"sqlite:///{tmp_path / 'v.db'}")


def test_ranked_is_creation_order_and_a_rewrite_keeps_its_place(store: SqliteStore) -> None:
    for name in ("c", "a", "b"):
        store.put(f"/q/{name}", "1")
    store.put("/q/c", "2")  # rewritten: stays first
    store.delete("/q/a")
    store.put("/q/a", "3")  # deleted and written again: goes last
    assert store.ranked("/q/") == [("/q/c", "2"), ("/q/b", "1"), ("/q/a", "3")]


def test_a_waiter_watches_the_key_ahead_and_the_first_waiter_the_queue() -> None:
    assert place(1, "/r/a", 2, "/r/").holds
    first = place(2, "/r/b", 2, "/r/")
    assert (first.holds, first.next, first.watch) == (False, True, (Deletes("/r/"),))
    second = place(3, "/r/c", 2, "/r/")
    assert (second.holds, second.next, second.watch) == (False, False, ("/r/c",))


def test_position_counts_the_keys_created_before(store: SqliteStore) -> None:
    lease = store.lease(30)
    for name in ("c", "a", "b", "d"):
        store.put(f"/q/{name}", name, lease)
    store.put("/q/a", "A")  # rewritten without the lease: keeps its place
    assert store.position("/q/", "/q/c", 5) == Position("c", 0, None)
    assert store.position("/q/", "/q/b", 5) == Position("b", 2, "/q/a")
    assert store.position("/q/", "/q/d", 2) == Position("d", 2, "/q/b")  # counted up to 2
    assert store.position("/q/", "/q/x", 5) is None
    assert store.ranked("/q/", 2) == [("/q/c", "c"), ("/q/a", "A")]
    lease.revoke()
    assert store.position("/q/", "/q/a", 5) == Position("A", 0, None)


def turn(store: SqliteStore, host: str, limit: int = 1) -> Turn:
    store.put(KEYS.current_version, "2.0")
    lease = store.lease(30)
    return Turn(store, KEYS, host, ["compute"], "2.0", Rules({"compute": limit}), lease)


def test_hosts_take_the_slots_in_the_order_they_queued(store: SqliteStore) -> None:
    turns = [turn(store, host) for host in ("h3", "h1", "h2")]
    assert turns[0].take() is None
    assert "(it is next)" in str(turns[1].take())
    assert "(it waits behind another host)" in str(turns[2].take())
    assert turns[2].watched() == [KEYS.slots("2.0", "compute") + "h1"]
    turns[0].give_back()
    assert turns[2].take() is not None  # h1 queued before it
    assert turns[1].take() is None
    turns[1].give_back()
    assert turns[2].take() is None


def test_a_started_update_keeps_its_slot_when_its_lease_is_gone(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slots, "FREE_CHECK_S", 0.0)  # the first waiter checks every look
    first, second = turn(store, "h1"), turn(store, "h2")
    assert first.take() is None
    assert second.take() is not None
    first.lease.revoke()  # the agent died mid-update
    assert second.take() is not None
    again = turn(store, "h1")  # its agent back: the slot is still its own
    assert again.take() is None
    store.put(KEYS.running("2.0", "h1"), "")  # known done: the first waiter frees it
    assert second.take() is not None  # this look frees the slot
    assert second.take() is None


def test_a_waiter_whose_lease_is_gone_leaves_the_queue(store: SqliteStore) -> None:
    first, second, third = turn(store, "h1"), turn(store, "h2"), turn(store, "h3")
    assert first.take() is None
    assert second.take() is not None and third.take() is not None
    second.lease.revoke()
    assert "(it is next)" in str(third.take())


def test_retry_backoff_doubles_is_jittered_and_capped() -> None:
    rng = random.Random(7)
    for attempt in (1, 2, 3, 4):
        full = desired.BACKOFF_S * 2 ** (attempt - 1)
        pauses = {desired.backoff(attempt, rng) for _ in range(50)}
        assert all(full / 2 <= p <= full for p in pauses)
        assert len(pauses) > 1
    assert desired.backoff(100, rng) <= desired.BACKOFF_MAX_S


def test_retries_are_kept_in_the_rules_and_bounded() -> None:
    rules = Rules.parse(["compute=2"], [], retries=3)
    assert Rules.from_dict(rules.to_dict()).retries == 3
    assert Rules.from_dict({}).retries == 0
    with pytest.raises(desired.UsageError, match="--retries -1"):
        Rules.parse([], [], retries=-1)


def test_a_waiter_tells_its_place_from_the_key_ahead_only_after_its_own_look(
    store: SqliteStore,
) -> None:
    queue = slots.Queue(store, KEYS, "2.0", "compute", "h2")
    ahead = KEYS.slots("2.0", "compute") + "h1"
    queue.before, queue.revision = ahead, 10

    def started(at: int, where: int = 0) -> dict[str, str | None]:
        return {ahead: json.dumps({"started": 1.0, "ahead": where, "at": at})}

    assert queue._told(1, started(at=9)) is None  # before its look: a key may have come between
    assert queue._told(1, {ahead: json.dumps({"since": 1.0})}) is None  # waiting, not started
    assert queue._told(1, {**started(at=12), KEYS.current_version: "3.0"}) is None
    assert queue._told(1, started(at=12, where=1)) is None  # more than the first waiter: look
    told = queue._told(1, started(at=12))
    assert told is not None and told.next and told.watch == (Deletes(KEYS.slots("2.0", "compute")),)
    assert (queue.ahead, queue.revision, queue.before) == (1, 12, None)
    queue.before, queue.revision = ahead, 10
    told = queue._told(2, started(at=12))
    assert told is not None and told.holds
