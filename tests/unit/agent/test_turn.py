"""A host's turn (on a SQLite store in a temporary file)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from ephyra.agent.turn import Turn
from ephyra.versions.desired import Rules
from ephyra.versions.keys import Keys
from ephyra.versions.slots import Place, is_started
from ephyra.versions.store import Lease, Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = open_store(f"sqlite:///{tmp_path / 'v.db'}")
    store.put(Keys().current_version, "2.0")
    return store


def test_a_turn_queues_for_its_roles_in_order_and_keeps_the_places_it_has(
    store: Store,
) -> None:
    keys, rules = Keys(), Rules({"db": 1, "compute": 2})
    lease = store.lease(30)
    first = Turn(store, keys, "h1", ["db", "compute"], "2.0", rules, lease)
    assert first.take() is None
    second = Turn(store, keys, "h2", ["compute", "db"], "2.0", rules, lease)
    assert second.take() == "all 1 db slot(s) for 2.0 are taken (it is next)"
    third = Turn(store, keys, "h3", ["compute"], "2.0", rules, lease)
    assert third.take() == "all 2 compute slot(s) for 2.0 are taken (it is next)"
    assert first.take() is None  # taking again finds its own slots
    first.give_back()
    assert second.take() is None
    assert third.take() is None  # h1's compute slot is free too
    [(key, value)] = store.ranked(keys.slots("2.0", "db"))
    assert key == keys.slots("2.0", "db") + "h2" and is_started(value)


def test_a_turn_waits_for_every_live_host_of_the_roles_before_it(store: Store) -> None:
    keys, rules = Keys(), Rules({"*": -1}, {"compute": ("controller",)})
    lease = store.lease(30)
    for host in ("ctl-1", "ctl-2"):
        store.put(keys.member("controller", host), "{}", lease)
    turn = Turn(store, keys, "cmp-1", ["compute"], "2.0", rules, lease)
    assert turn.take() == "compute waits for controller (2 not at 2.0: ctl-1, ctl-2)"
    store.put(keys.running("2.0", "ctl-1"), "")
    assert turn.take() == "compute waits for controller (1 not at 2.0: ctl-2)"
    store.delete(keys.member("controller", "ctl-2"))  # gone: it no longer holds anyone back
    assert turn.take() is None


def test_a_frozen_role_never_gets_a_turn(store: Store) -> None:
    turn = Turn(store, Keys(), "h1", ["db"], "2.0", Rules({"db": 0}), store.lease(30))
    assert turn.take() == "db is frozen for 2.0 (max_at_once 0)"


def test_a_turn_for_a_version_no_longer_desired_is_not_taken(store: Store) -> None:
    keys, rules = Keys(), Rules({"db": 1})
    turn = Turn(store, keys, "h1", ["db"], "2.0", rules, store.lease(30))
    store.put(keys.current_version, "3.0")
    assert turn.take() == "2.0 is no longer the desired version"
    assert turn.superseded and not turn.started
    [(_, value)] = store.ranked(keys.slots("2.0", "db"))
    assert not is_started(value)  # in the queue, but the update never began
    store.put(keys.current_version, "2.0")
    assert turn.take() is None and turn.started and turn.superseded is False


def test_a_trigger_between_the_look_and_the_start_keeps_the_update_from_starting(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, rules = Keys(), Rules({"db": 1})
    turn = Turn(store, keys, "h1", ["db"], "2.0", rules, store.lease(30))
    [queue] = turn.queues.values()
    look = queue.look

    def look_then_trigger(limit: int, lease: Lease, seen: Mapping[str, str | None]) -> Place:
        found = look(limit, lease, seen)
        store.put(keys.current_version, "3.0")
        return found

    monkeypatch.setattr(queue, "look", look_then_trigger)
    assert turn.take() == "its place in a queue changed, or the version is no longer desired"
    assert turn.superseded is None and not turn.started  # the caller reads it again
