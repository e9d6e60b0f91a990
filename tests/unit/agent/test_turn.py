"""Seed 003's key layout, rollout rules, the lifecycle table, a host's turn (on a SQLite
store in a temporary file) and the noop strategy."""

from __future__ import annotations

from pathlib import Path

import pytest

from ephyra.agent.turn import Turn
from ephyra.errors import UsageError
from ephyra.strategies.base import Target, build
from ephyra.versions.desired import Rules
from ephyra.versions.keys import SERVICE_STATES, Keys
from ephyra.versions.lifecycle import MOVES
from ephyra.versions.store import Store, open_store


def test_keys_stand_where_seed_003_puts_them_and_under_a_prefix() -> None:
    keys = Keys()
    assert keys.current_version == "/current_version"
    assert keys.running("2.0", "h1") == "/running_version/2.0/h1"
    assert keys.status("validated/failure", "2.0", "h1") == "/status/validated/failure/2.0/h1"
    assert keys.roles("2.0", "db", "h1") + "address" == "/active_roles/2.0/db/h1/address"
    assert Keys("/cloud-a/").running("2.0") == "/cloud-a/running_version/2.0/"


def test_rules_parse_limits_and_dependencies() -> None:
    rules = Rules.parse(["compute=3", "db=all", "*=2", "frozen=0"], ["compute=controller,db"])
    assert [rules.limit(r) for r in ("compute", "db", "other", "frozen")] == [3, None, 2, 0]
    assert rules.after == {"compute": ("controller", "db")}
    assert Rules().limit("anything") == 1  # one at a time unless told otherwise
    assert Rules.from_dict(rules.to_dict()) == rules
    with pytest.raises(UsageError, match="circle: a -> b -> c -> a"):
        Rules.parse([], ["a=b", "b=c", "c=a"])


def test_the_lifecycle_table_starts_with_configuration_and_validates_only_a_success() -> None:
    assert {new for old, new in MOVES if old is None} == {
        "configured/success",
        "configured/failure",
    }
    assert ("configured/failure", "validated/success") not in MOVES
    assert all((old, "configured/success") in MOVES for old in SERVICE_STATES)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'v.db'}")


def test_a_turn_takes_a_slot_per_role_and_gives_all_back_when_one_is_full(store: Store) -> None:
    keys, rules = Keys(), Rules({"db": 1, "compute": 2})
    lease = store.lease(30)
    first = Turn(store, keys, "h1", ["db", "compute"], "2.0", rules, lease)
    assert first.take() is None
    second = Turn(store, keys, "h2", ["compute", "db"], "2.0", rules, lease)
    assert second.take() == "all 1 db slot(s) for 2.0 are taken"
    assert second.held == []  # its compute slot was given back
    assert Turn(store, keys, "h3", ["compute"], "2.0", rules, lease).take() is None
    assert first.take() is None  # taking again finds its own slots
    first.give_back()
    assert second.take() is None


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


def test_the_noop_strategy_remembers_what_it_was_asked() -> None:
    noop = build({"type": "noop", "start": "1.0"})
    target = Target("h1", "2.0", kind="host")
    assert noop.version(target) == "1.0"
    change = noop.upgrade(target, print)
    assert (change.before, change.after, noop.version(target)) == ("1.0", "2.0", "2.0")
    with pytest.raises(UsageError, match="noop"):
        build({"type": "noop", "bogus": 1})
