"""The store's contract, on a real etcd and on the SQLite file alike."""

from __future__ import annotations

import threading
import time

import pytest

from ephyra.errors import StoreError, UsageError
from ephyra.versions.keys import Keys
from ephyra.versions.store import Compare, Delete, Put, Store, open_store


def test_get_put_delete_and_one_range_read(store: Store, keys: Keys) -> None:
    root = keys.running("1.0")
    assert store.get(root + "h1") is None
    for n in range(250):
        store.put(f"{root}h{n:03d}", f"v{n}")
    store.put(keys.running("1.0")[:-1] + "x", "outside")  # /running_version/1.0x: not under it
    found = store.range(root)
    assert len(found) == 250
    assert found[root + "h007"] == "v7"
    store.delete(root + "h007")
    assert store.get(root + "h007") is None
    assert len(store.range(root)) == 249


def test_a_transaction_applies_all_or_nothing_and_compares_values_and_absence(
    store: Store, keys: Keys
) -> None:
    a, b = keys.state("a"), keys.state("b")
    assert store.txn([Compare(a, None)], [Put(a, "1"), Put(b, "1")])
    # a exists now: the create-if-absent fails, and its failure branch runs instead
    assert not store.txn([Compare(a, None)], [Put(a, "2")], [Put(b, "lost")])
    assert (store.get(a), store.get(b)) == ("1", "lost")
    assert store.txn([Compare(a, "1"), Compare(b, "lost")], [Put(a, "3"), Delete(b)])
    assert (store.get(a), store.get(b)) == ("3", None)
    assert not store.txn([Compare(a, "1")], [Put(a, "4")])
    assert store.get(a) == "3"


def test_compare_and_swap_lets_exactly_one_of_racing_writers_win(
    store_url: str, keys: Keys
) -> None:
    key = keys.current_version
    winners: list[int] = []
    failed: list[BaseException] = []
    barrier = threading.Barrier(8, timeout=120)  # a racer that failed to open ends the wait

    def racer(n: int) -> None:
        try:
            with open_store(store_url) as mine:
                barrier.wait()
                if mine.txn([Compare(key, None)], [Put(key, str(n))]):
                    winners.append(n)
        except BaseException as exc:
            failed.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failed, failed
    assert len(winners) == 1
    with open_store(store_url) as check:
        assert check.get(key) == str(winners[0])


def test_keys_under_a_lease_vanish_when_it_is_not_refreshed(store: Store, keys: Keys) -> None:
    kept, dropped = store.lease(2), store.lease(2)
    store.put(keys.running("1.0", "kept"), "", kept)
    store.put(keys.running("1.0", "dropped"), "", dropped)
    store.put(keys.state("plain"), "{}")
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        kept.refresh()
        time.sleep(0.5)
    assert set(store.range(keys.running("1.0"))) == {keys.running("1.0", "kept")}
    assert store.get(keys.state("plain")) == "{}"
    with pytest.raises(StoreError):
        dropped.refresh()
    with pytest.raises(StoreError):
        store.put(keys.running("1.0", "late"), "", dropped)
    kept.revoke()
    assert store.range(keys.running("1.0")) == {}


def test_a_watch_wakes_on_a_change_under_its_prefix_only(store: Store, keys: Keys) -> None:
    watch = store.watch(keys.current_version)
    try:
        assert watch.wait(0.1)  # the first wait: read the state now
        assert not watch.wait(0.3)
        store.put(keys.state("elsewhere"), "x")
        assert not watch.wait(0.3)
        threading.Timer(0.2, store.put, (keys.current_version, "2.0")).start()
        started = time.monotonic()
        assert watch.wait(5.0)
        assert time.monotonic() - started < 2.0
    finally:
        watch.cancel()


def test_a_bad_url_is_refused_with_the_known_schemes() -> None:
    with pytest.raises(UsageError, match=r"unknown store 'zk://h:1'.*etcd3.*sqlite"):
        open_store("zk://h:1")
    with pytest.raises(UsageError, match="not SCHEME://"):
        open_store("etcd3+http://")


def test_an_etcd_that_does_not_answer_is_a_store_error() -> None:
    with (
        open_store("etcd3+http://127.0.0.1:9") as store,
        pytest.raises(StoreError, match=r"etcd at etcd3\+http://127.0.0.1:9"),
    ):
        store.get("/current_version")
