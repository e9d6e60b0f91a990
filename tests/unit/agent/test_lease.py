"""The lease keeper, on a fake clock: when it renews, how it backs off, what it announces."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ephyra.agent import lease as keeper_module
from ephyra.agent.lease import LeaseKeeper, backoff, sized_ttl
from ephyra.agent.loop import Agent, AgentConfig
from ephyra.errors import LeaseExpired, StoreError
from ephyra.strategies.base import build
from ephyra.versions.keys import Keys
from ephyra.versions.sqlite import SqliteStore
from ephyra.versions.store import Lease, Op, Put, Store


class Clock:
    """Time that passes only when the keeper waits (or a call is said to take some)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


class FakeLease(Lease):
    def __init__(self, lease_id: int, ttl: int, clock: Clock) -> None:
        self.id, self.ttl, self.clock = lease_id, ttl, clock
        self.answers: list[BaseException | float] = []  # what each refresh does
        self.refreshed: list[float] = []
        self.revoked = False

    def refresh(self) -> None:
        self.refreshed.append(self.clock.now)
        answer = self.answers.pop(0) if self.answers else 0.01
        if isinstance(answer, BaseException):
            raise answer
        self.clock.now += answer

    def revoke(self) -> None:
        self.revoked = True


class Grants:
    def __init__(self, clock: Clock, failures: int = 0, latency: float = 0.01) -> None:
        self.clock, self.failures, self.latency = clock, failures, latency
        self.ttls: list[int] = []
        self.leases: list[FakeLease] = []

    def __call__(self, ttl: int) -> Lease:
        self.clock.now += self.latency
        if self.failures:
            self.failures -= 1
            raise StoreError("etcd at http://etcd:2379: timed out")
        self.ttls.append(ttl)
        self.leases.append(FakeLease(len(self.leases) + 1, ttl, self.clock))
        return self.leases[-1]


def keeper(clock: Clock, grants: Grants, announced: list[Lease], ttl: int = 9) -> LeaseKeeper:
    said: list[str] = []
    return LeaseKeeper(
        grants, announced.append, ttl, threading.Event(), said.append, clock=clock,
        wait=clock.wait, rand=lambda: 0.5,
    )  # fmt: skip


def test_backoff_doubles_up_to_its_cap_with_jitter_between_half_and_all() -> None:
    assert [backoff(n, lambda: 1.0) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert [backoff(n, lambda: 0.0) for n in range(4)] == [0.25, 0.5, 1.0, 2.0]
    assert backoff(40, lambda: 1.0) == keeper_module.BACKOFF_CAP_S


def test_the_ttl_grows_with_the_latency_measured() -> None:
    assert sized_ttl(10, 0.05) == 10
    assert sized_ttl(10, 2.5) == 25


def test_renewals_come_every_third_of_the_ttl_from_the_last_one_that_landed() -> None:
    clock = Clock()
    grants, announced = Grants(clock), []
    k = keeper(clock, grants, announced)
    lease = k.acquire()
    assert announced == [lease]
    start = k.renewed_at
    stop_after(k, 3)
    k.run()
    assert isinstance(lease, FakeLease)
    # counted from when each renewal was sent, give or take a random part (none at 0.5)
    assert [round(t - start, 3) for t in lease.refreshed] == [3.0, 6.0, 9.0]
    assert (k.losses, k.announcements, announced) == (0, 0, [lease])


def test_renewals_are_spread_an_eighth_either_side_of_a_third_of_the_ttl() -> None:
    clock = Clock()
    k = keeper(clock, Grants(clock), [])
    lease = k.acquire()
    k._rand = lambda: 0.0
    assert k.period(lease) == pytest.approx(3 * 0.875)
    k._rand = lambda: 1.0
    assert k.period(lease) == pytest.approx(3 * 1.125)


def stop_after(k: LeaseKeeper, renewals: int) -> None:
    """Stop the keeper once its lease was refreshed ``renewals`` times."""
    real = k.renew

    def renew(lease: Lease) -> None:
        real(lease)
        assert isinstance(lease, FakeLease)
        if len(lease.refreshed) >= renewals:
            k._stop.set()

    k.renew = renew  # type: ignore[method-assign]


def test_a_failed_renewal_is_tried_again_at_once_then_every_retry_period() -> None:
    clock = Clock()
    grants, announced = Grants(clock), []
    k = keeper(clock, grants, announced)
    lease = k.acquire()
    assert isinstance(lease, FakeLease)
    clock.now += 3
    lease.answers = [StoreError("timed out"), StoreError("timed out"), 0.01]
    k.renew(lease)
    assert [round(t - 103.01, 2) for t in lease.refreshed] == [0.0, 0.0, 0.5]
    assert (k.lease, k.losses) == (lease, 0)


def test_a_lease_not_renewed_within_its_ttl_is_replaced_and_announced_once() -> None:
    clock = Clock()
    grants, announced = Grants(clock), []
    k = keeper(clock, grants, announced)
    first = k.acquire()
    assert isinstance(first, FakeLease)
    clock.now += 3
    first.answers = [StoreError("timed out")] * 100
    k.renew(first)
    assert clock.now - k.renewed_at < 1  # the new lease was just granted
    assert k.lease is grants.leases[1]
    assert announced == [first, grants.leases[1]]
    assert first.revoked  # etcd may hold it still: no write still on its way lands there
    assert (k.losses, k.announcements) == (1, 1)
    # a writer that found the old lease expired meanwhile does not take a third one
    assert k.replace(first) is grants.leases[1]
    assert (len(grants.leases), k.announcements) == (2, 1)


def test_an_expired_lease_is_granted_again_with_jittered_exponential_backoff() -> None:
    clock = Clock()
    grants, announced = Grants(clock), []
    k = keeper(clock, grants, announced)
    first = k.acquire()
    grants.failures = 4
    clock.waits.clear()
    assert isinstance(first, FakeLease)
    first.answers = [LeaseExpired("lease 1 has expired")]
    k.renew(first)
    assert clock.waits == [0.375, 0.75, 1.5, 3.0]  # 0.5 s doubling, drawn at 3/4
    assert announced == [first, grants.leases[1]]
    assert not first.revoked  # etcd said it is gone


def test_a_slow_etcd_makes_the_next_lease_longer() -> None:
    clock = Clock()
    grants, announced = Grants(clock, latency=2.0), []
    k = keeper(clock, grants, announced)
    k.acquire()
    k.replace(k.lease)
    assert grants.ttls == [9, 20]


class Recording(SqliteStore):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.txns: list[list[Op]] = []

    def txn(self, compare, success, failure=()):  # type: ignore[no-untyped-def]
        self.txns.append(list(success))
        return super().txn(compare, success, failure)


def test_the_agent_announces_again_only_the_keys_of_its_lease_in_one_transaction(
    tmp_path: Path,
) -> None:
    store: Store = Recording(f"sqlite:///{tmp_path / 'v.db'}")
    keys = Keys("/t")
    config = AgentConfig(
        "cmp-1", {"compute": "10.0.0.1"}, build({"type": "noop", "start": "1.0"}),
        log_dir=tmp_path, ttl=5,
    )  # fmt: skip
    agent = Agent(store, keys, config, say=lambda _: None)
    agent.running = "1.0"
    first = agent.keeper.acquire()
    assert isinstance(store, Recording)
    store.put(keys.current_version, "1.0")  # a key of no lease, written by someone else
    store.txns.clear()
    second = agent.keeper.replace(first)
    assert second is not first
    [ops] = store.txns  # one transaction, and nothing else written
    assert all(isinstance(op, Put) and op.lease is second for op in ops)
    written = sorted(op.key for op in ops)
    assert written == sorted(
        [keys.member("compute", "cmp-1"), *(op.key for op in agent._live_ops("1.0", ()))]
    )
    assert keys.member("compute", "cmp-1") in store.range(keys.members("compute"))
    assert agent.keeper.announcements == 1
    store.close()


def test_a_write_that_finds_the_lease_expired_after_the_keeper_replaced_it_takes_no_other(
    tmp_path: Path,
) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path / 'v.db'}")
    config = AgentConfig(
        "cmp-1", {"compute": "10.0.0.1"}, build({"type": "noop", "start": "1.0"}),
        log_dir=tmp_path, ttl=5,
    )  # fmt: skip
    agent = Agent(store, Keys("/t"), config, say=lambda _: None)
    first = agent.keeper.acquire()
    calls: list[Lease | None] = []

    def write() -> str:
        calls.append(agent.lease)
        if len(calls) == 1:  # the keeper's thread replaced the lease while this write ran
            agent.keeper.replace(first)
            raise LeaseExpired(f"lease {first.id:x} has expired")
        return "written"

    assert agent._retry("write", write) == "written"
    assert calls == [first, agent.lease] and agent.lease is not first
    assert (agent.keeper.losses, agent.keeper.announcements) == (1, 1)
    store.close()
