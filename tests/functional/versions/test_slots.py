"""Slots held by the update: an agent killed with kill -9 mid-update keeps its slot, and a
second host of the role does not start until the first is known done; the queue's order
on both stores, and a waiter that learns its place from the key ahead of it starting."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

from ephyra.agent.turn import Turn
from ephyra.versions.desired import Rules
from ephyra.versions.etcd import SHARED_AT, EtcdStore
from ephyra.versions.keys import Keys
from ephyra.versions.store import Deletes, Position, Put, Store, open_store
from tests.functional.versions.test_agent import Fleet, eventually, fleet  # noqa: F401

#: An upgrade that says it began, then blocks until its host's ``.go`` file exists.
BLOCKED = (
    "echo $$ > {root}/{{host}}.pid; echo {{version}} >> {root}/{{host}}.started; "
    "while [ ! -e {root}/{{host}}.go ]; do sleep 0.05; done; "
    "echo {{version}} > {root}/{{host}}.version; "
    'echo "{{version}} 0 0" >> {root}/{{host}}.effects'
)


def test_ranked_and_position_give_keys_in_creation_order(store: Store, keys: Keys) -> None:
    root = keys.slots("2.0", "compute")
    lease = store.lease(30)
    for host in ("h3", "h1", "h2"):
        store.put(root + host, "waiting", lease)
    store.put(root + "h3", "started")  # rewritten without the lease: keeps its place
    store.delete(root + "h1")
    store.put(root + "h1", "waiting", lease)  # deleted and written again: goes last
    assert store.ranked(root) == [
        (root + "h3", "started"),
        (root + "h2", "waiting"),
        (root + "h1", "waiting"),
    ]
    assert store.ranked(root, 2) == [(root + "h3", "started"), (root + "h2", "waiting")]
    assert store.position(root, root + "h3", 5) == Position("started", 0, None)
    assert store.position(root, root + "h1", 5) == Position("waiting", 2, root + "h2")
    assert store.position(root, root + "h1", 1) == Position("waiting", 1, root + "h2")
    assert store.position(root, root + "h4", 5) is None
    lease.revoke()
    assert store.ranked(root) == [(root + "h3", "started")]
    assert store.position(root, root + "h1", 5) is None


def test_the_waiter_behind_learns_its_place_from_the_key_ahead_starting(
    store: Store, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put(keys.current_version, "2.0")
    lease = store.lease(30)
    h1, h2, h3 = (
        Turn(store, keys, host, ["compute"], "2.0", Rules({"compute": 1}), lease)
        for host in ("h1", "h2", "h3")
    )
    assert h1.take() is None
    assert "(it is next)" in str(h2.take())
    assert "(it waits behind another host)" in str(h3.take())
    watch = store.watch(*h3.watched(), after=h3.after)
    try:
        h1.give_back()
        assert h2.take() is None  # its key rewritten: started, where it stood and when
        assert watch.wait(10)
        looks: list[str] = []
        position = store.position

        def counted(prefix: str, key: str, most: int, **kw: Any) -> Position | None:
            looks.append(key)
            return position(prefix, key, most, **kw)

        monkeypatch.setattr(store, "position", counted)
        assert "(it is next)" in str(h3.take(watch.seen()))
        # etcd's watch saw h2's new value: no request; SQLite's cannot tell: a look
        expected = [] if store.url.startswith("etcd") else [h3.queues["compute"].key]
        assert looks == expected
        assert h3.watched() == [Deletes(keys.slots("2.0", "compute"))]
    finally:
        watch.cancel()
    h2.give_back()
    assert h3.take() is None


def test_watches_on_many_keys_of_a_queue_wake_only_for_their_own_key(
    store: Store, keys: Keys
) -> None:
    root = keys.slots("2.0", "compute")
    found = store.position(root, root + "h00", 1, join=Put(root + "h00", "waiting"))
    assert found is not None
    hosts = [f"h{i:02d}" for i in range(1, 13)]  # more than a store streams one by one
    watches = [store.watch(root + host, after=found.revision) for host in hosts]
    try:
        for watch in watches:
            watch.wait(0)  # SQLite's first wait returns at once (it has no revisions)
        store.put(root + "h05", "started")
        assert watches[4].wait(10)
        assert watches[4].seen() in ({root + "h05": "started"}, {})  # {}: cannot tell
        assert not any(w.wait(0.2) for w in watches[:4] + watches[5:])
        if isinstance(store, EtcdStore):  # one etcd watch for the queue, not twelve
            assert len(store._streams) <= SHARED_AT + 1
        store.put(root + "h12", "waiting")  # joins, then leaves
        assert watches[11].wait(10)
        store.delete(root + "h12")
        eventually(lambda: watches[11].wait(0.1), 10)
        assert watches[11].seen() in ({root + "h12": None}, {})
    finally:
        for watch in watches:
            watch.cancel()
    if isinstance(store, EtcdStore):
        assert store._streams == {}


def test_a_killed_update_keeps_its_slot_until_it_is_known_done(
    fleet: Fleet,  # noqa: F811
    report: list[str],
) -> None:
    root = fleet.root
    first = fleet.start("cmp-1", "compute", upgrade=BLOCKED)
    fleet.up()
    trigger = ("version", "trigger", "2.0", "--max-at-once", "compute=1", "--retries", "0")
    assert fleet(*trigger)[0] == 0
    first.wait_for(lambda line: "2.0: updating" in line, 90)
    second = fleet.start("cmp-2", "compute", upgrade=BLOCKED)
    second.wait_for(lambda line: "slot(s) for 2.0 are taken" in line, 90)

    first.kill()  # mid-update: its command blocks on cmp-1.go; the host dies with it
    os.kill(int((root / "cmp-1.pid").read_text()), signal.SIGKILL)
    eventually(lambda: not fleet.runs("1.0", "cmp-1"), 60, every=0.05)  # its lease is gone
    time.sleep(2)  # four polls of the waiting agent: long enough for a wrongly freed slot
    assert not (root / "cmp-2.started").exists()
    status = fleet.status()
    assert (status["cmp-2"]["updating"], status["cmp-2"]["running"]) == (False, "1.0")
    slots = fleet.keys.slots("2.0", "compute")
    with open_store(fleet.store_url) as store:
        held = store.ranked(slots)
    assert [key[len(slots) :] for key, _ in held] == ["cmp-1", "cmp-2"]
    assert json.loads(held[0][1])["started"]

    (root / "cmp-1.go").touch()
    fleet.start("cmp-1", "compute", upgrade=BLOCKED)  # its agent back: it updates again
    eventually(lambda: (root / "cmp-2.started").exists(), 90)
    assert fleet.status()["cmp-1"]["state"] == "validated/success"  # done before cmp-2 began
    assert (root / "cmp-1.started").read_text().split() == ["2.0", "2.0"]
    (root / "cmp-2.go").touch()
    eventually(lambda: fleet.runs("2.0", "cmp-1") and fleet.runs("2.0", "cmp-2"), 90)
    with open_store(fleet.store_url) as store:
        assert store.ranked(slots) == []
    report.append("agent kill -9 mid-update: its slot stayed held until it was known done")


def test_a_failed_host_retries_after_a_backoff_up_to_the_limit(fleet: Fleet) -> None:  # noqa: F811
    bad = fleet.start("cmp-1", "compute", sleep=0.1, fail="cmp-1-2.0")
    fleet.up()
    trigger = ("version", "trigger", "2.0", "--max-at-once", "compute=1", "--retries", "1")
    assert fleet(*trigger)[0] == 0
    bad.wait_for(lambda line: "2.0: updating (attempt 1)" in line, 90)
    waiter = fleet.start("cmp-2", "compute", sleep=0.1)  # queues behind it
    bad.wait_for(lambda line: "2.0: updating (attempt 2)" in line, 90)
    bad.wait_for(lambda line: "2.0: configured/failure" in line, 90)
    eventually(lambda: fleet.status()["cmp-1"]["attempts"] == 2, 90)
    said = [line for line in bad.lines if "trying again in" in line]
    assert len(said) == 1  # one retry, then no more
    code, out, _ = fleet("version", "status")
    assert code == 0
    table = [
        [cell.strip() for cell in line.replace("┃", "│").split("│")] for line in out.splitlines()
    ]
    header = next(cells for cells in table if cells[0] == "host")
    row = next(cells for cells in table if cells[0] == "cmp-1")
    assert row[header.index("attempts")] == "2"
    waiter.wait_for(lambda line: "slot(s) for 2.0 are taken" in line, 90)
    assert fleet.effects("cmp-2") == []  # the failed host keeps the one slot
    _, out, _ = fleet("--format", "json", "version", "history")
    assert json.loads(out)[-1]["rules"]["retries"] == 1
