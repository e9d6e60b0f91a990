"""The volume drain's logic against a Cinder kept in memory: budgets, what a restart
finds under way, and a migration that fails."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from ephyra.engine.control import Control
from ephyra.errors import CloudError, DrainHalted, UsageError
from ephyra.volumes.budget import Settings
from ephyra.volumes.cinder import Volume
from ephyra.volumes.drain import FAILED, MIGRATING, MOVED, VolumeDrain

HOST = "storage-1"
POOLS = ["storage-1@lvm#a", "storage-2@lvm#a", "storage-3@lvm#a"]


@dataclass
class Cinder:
    """Volumes in memory; a migration takes ``polls`` listings to complete."""

    volumes: dict[str, Volume]
    polls: int = 2
    fail: set[str] = field(default_factory=set)
    refuse: set[str] = field(default_factory=set)
    moving: dict[str, tuple[str, int]] = field(default_factory=dict)
    peak: int = 0
    peak_per_pool: int = 0
    asked: list[tuple[str, str]] = field(default_factory=list)

    def _tick(self) -> None:
        for vid, (pool, left) in list(self.moving.items()):
            if left > 1:
                self.moving[vid] = (pool, left - 1)
                continue
            del self.moving[vid]
            volume = self.volumes[vid]
            if vid in self.fail:
                self.volumes[vid] = replace(volume, migration="error")
            else:
                self.volumes[vid] = replace(volume, pool=pool, migration="success")

    def volumes_on(self, host: str) -> list[Volume]:
        self._tick()
        return [v for v in self.volumes.values() if v.host == host]

    def volume(self, volume_id: str) -> Volume:
        return self.volumes[volume_id]

    def pools(self) -> list[str]:
        return list(POOLS)

    def migrate(self, volume_id: str, pool: str) -> None:
        if volume_id in self.refuse:
            raise CloudError("cloud: migrate volume: Cinder answered 400")
        self.asked.append((volume_id, pool))
        self.volumes[volume_id] = replace(self.volumes[volume_id], migration="migrating")
        self.moving[volume_id] = (pool, self.polls)
        self.peak = max(self.peak, len(self.moving))
        per_pool: dict[str, int] = {}
        for target, _ in self.moving.values():
            per_pool[target] = per_pool.get(target, 0) + 1
        self.peak_per_pool = max(self.peak_per_pool, *per_pool.values())


def cinder(count: int, attached: int = 0) -> Cinder:
    volumes = {
        f"v{i}": Volume(
            f"v{i}",
            f"vol-{i}",
            "in-use" if i < attached else "available",
            f"{HOST}@lvm#a",
            "",
            (f"server-{i}",) if i < attached else (),
        )
        for i in range(count)
    }
    return Cinder(volumes)


def drain(
    cloud: Cinder, record: dict[str, Any], batch: frozenset[str] = frozenset(), **settings: Any
) -> VolumeDrain:
    return VolumeDrain(
        cloud,  # type: ignore[arg-type]
        HOST,
        Settings(poll=0.001, **settings),
        Control(),
        batch,
        record,
        lambda: None,
    )


def test_every_volume_moves_within_the_budget() -> None:
    cloud, record = cinder(7, attached=3), {}
    result = drain(cloud, record, concurrency=3, per_pool=2).run()
    assert result.moved == 7 and not result.failed
    assert not cloud.volumes_on(HOST)
    assert cloud.peak == 3 and cloud.peak_per_pool == 2
    assert {e["state"] for e in record["volumes"].values()} == {MOVED}
    assert all(not e["to"].startswith(HOST) for e in record["volumes"].values())
    assert record["volumes"]["v0"]["attached_to"] == ["server-0"]


def test_a_restart_watches_what_was_under_way_and_never_asks_twice() -> None:
    cloud, record = cinder(2), {}
    # what a process killed just after asking for v0's migration left behind
    cloud.migrate("v0", POOLS[1])
    record["volumes"] = {
        "v0": {"name": "vol-0", "to": POOLS[1], "state": MIGRATING, "since": time.time()}
    }
    result = drain(cloud, record, concurrency=2, per_pool=2).run()
    assert result.moved == 2
    assert [vid for vid, _ in cloud.asked].count("v0") == 1


def test_a_migration_asked_but_never_taken_is_asked_again() -> None:
    cloud, record = cinder(1), {}
    record["volumes"] = {"v0": {"name": "vol-0", "to": POOLS[1], "state": MIGRATING, "since": 0}}
    result = drain(cloud, record).run()
    assert result.moved == 1 and cloud.asked == [("v0", POOLS[1])]


def test_failed_and_refused_migrations_halt_the_drain_and_are_asked_again_on_resume() -> None:
    cloud, record = cinder(3), {}
    cloud.fail.add("v1")
    cloud.refuse.add("v2")
    with pytest.raises(DrainHalted) as caught:
        drain(cloud, record, concurrency=3, per_pool=3).run()
    text = str(caught.value)
    assert "vol-1 (v1): Cinder's migration failed" in text
    assert "vol-2 (v2): Cinder refused its migration" in text
    assert record["volumes"]["v0"]["state"] == MOVED
    assert record["volumes"]["v1"]["state"] == record["volumes"]["v2"]["state"] == FAILED

    cloud.fail.clear()
    cloud.refuse.clear()
    result = drain(cloud, record, concurrency=3, per_pool=3).run()  # the run resumed
    assert result.moved == 3 and not cloud.volumes_on(HOST)


def test_no_volume_goes_to_a_host_of_the_same_batch() -> None:
    cloud, record = cinder(4), {}
    drain(cloud, record, frozenset({HOST, "storage-2"}), concurrency=2, per_pool=2).run()
    assert {pool for _, pool in cloud.asked} == {"storage-3@lvm#a"}
    with pytest.raises(DrainHalted, match="no pool of a storage host outside its batch"):
        drain(cinder(1), {}, frozenset({"storage-2", "storage-3"})).run()


@pytest.mark.parametrize("target", ["storage-1@lvm#a", "storage-2@lvm#a"])
def test_a_target_pool_on_the_host_or_its_batch_is_refused(target: str) -> None:
    with pytest.raises(UsageError, match=f"target {target} is on storage-1 or a host upgraded"):
        drain(cinder(1), {}, frozenset({HOST, "storage-2"}), target=target).run()


def test_volumes_cinder_itself_does_away_with_are_left_to_it() -> None:
    cloud, record = cinder(1), {}
    # a swapped attached volume's old copy being deleted; a migration's destination
    cloud.volumes["gone"] = Volume("gone", "vol-0", "deleting", f"{HOST}@lvm#a", "", ())
    cloud.volumes["copy"] = Volume("copy", "vol-9", "available", f"{HOST}@lvm#a", "target:x", ())
    result = drain(cloud, record).run()
    assert result.moved == 1 and [vid for vid, _ in cloud.asked] == ["v0"]
