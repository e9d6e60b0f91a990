"""Emptying one storage host: every volume in its pools moved to another pool by Cinder's
own migration (an attached volume stays attached: Cinder asks Nova to swap it), within a
budget: at most ``concurrency`` migrations at once, at most ``per_pool`` into one pool.

One loop per host, polling Cinder. Each volume's migration is recorded (its destination)
before it is asked for, so a drain that starts again after a crash or a pause watches the
migrations under way instead of asking twice, and counts them against the budget. A
migration that fails, or outlives ``timeout``, leaves its volume where Cinder has it and
is reported; the drain then ends, and the host is not upgraded (``DrainHalted``). Run
again (the run resumed), it asks again for the moves that failed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ephyra.engine.control import Control
from ephyra.errors import CloudError, DrainHalted, UsageError
from ephyra.volumes.budget import Settings
from ephyra.volumes.cinder import MIGRATED, MIGRATION_FAILED, Volume, VolumeCloud, host_of

#: A volume's migration under way (Cinder's ``migration_status``).
UNDER_WAY = frozenset({"starting", "migrating", "completing"})
MIGRATING, MOVED, FAILED = "migrating", "moved", "failed"


def moving_away(volume: Volume) -> bool:
    """Whether Cinder itself does away with ``volume``: a migration's destination while
    it is copied (``migration_status`` ``target:ID``), or, once an attached volume is
    swapped, the volume left on the source, deleted (``deleting``)."""
    return volume.status == "deleting" or volume.migration.startswith("target:")


@dataclass
class VolumeResult:
    host: str
    moved: int
    failed: dict[str, str]  # volume label -> why it is still on the host
    seconds: float


class VolumeDrain:
    def __init__(
        self,
        cloud: VolumeCloud,
        host: str,
        settings: Settings,
        control: Control,
        batch: frozenset[str],
        record: dict[str, Any],
        save: Callable[[], None],
        message: Callable[[str], None] = lambda text: None,
        key: str = "volumes",
    ) -> None:
        self.cloud, self.host, self.settings, self.control = cloud, host, settings, control
        self.busy = batch | {host}  # hosts upgraded meanwhile: no volume moves there
        self.volumes: dict[str, dict[str, Any]] = record.setdefault(key, {})
        self.save, self.message = save, message

    def _label(self, volume_id: str) -> str:
        name = self.volumes.get(volume_id, {}).get("name")
        return f"{name} ({volume_id})" if name else volume_id

    def _pools(self) -> list[str]:
        if self.settings.target:
            if host_of(self.settings.target) in self.busy:
                raise UsageError(
                    f"volume_evacuation.target {self.settings.target} is on {self.host}"
                    " or a host upgraded with it"
                )
            return [self.settings.target]
        pools = [p for p in self.cloud.pools() if host_of(p) not in self.busy]
        if not pools:
            raise DrainHalted(
                f"{self.host}: no pool of a storage host outside its batch to move volumes to"
            )
        return pools

    def _in_flight(self) -> list[str]:
        return [v for v, entry in self.volumes.items() if entry.get("state") == MIGRATING]

    def run(self) -> VolumeResult:
        began = time.monotonic()
        pools = self._pools()
        for entry in self.volumes.values():  # a drain run again (resumed) tries them again
            if entry.get("state") == FAILED:
                entry["state"] = ""
        while True:
            self.control.checkpoint()
            on_host = {v.id: v for v in self.cloud.volumes_on(self.host) if not moving_away(v)}
            for volume_id in self._in_flight():
                self._watch(volume_id, on_host.get(volume_id))
            flying = self._in_flight()
            waiting = [
                v
                for v in on_host.values()
                if self.volumes.get(v.id, {}).get("state") not in (MIGRATING, FAILED)
            ]
            for volume in waiting:
                if len(flying) >= self.settings.concurrency:
                    break
                pool = self._pool_for(pools, flying)
                if pool is None:
                    break
                self._start(volume, pool)
                flying = self._in_flight()
            if not flying and not waiting:
                break
            self.control.sleep(self.settings.poll)
        failed = {
            self._label(v): str(e.get("why", ""))
            for v, e in self.volumes.items()
            if e["state"] == FAILED
        }
        moved = sum(1 for e in self.volumes.values() if e["state"] == MOVED)
        result = VolumeResult(self.host, moved, failed, time.monotonic() - began)
        if failed:
            listed = "; ".join(f"{label}: {why}" for label, why in sorted(failed.items()))
            raise DrainHalted(f"{self.host}: volumes left on the host: {listed}")
        return result

    def _pool_for(self, pools: list[str], flying: list[str]) -> str | None:
        """The pool with the fewest migrations into it, if under ``per_pool``."""
        into = Counter(str(self.volumes[v]["to"]) for v in flying)
        pool = min(pools, key=lambda p: (into[p], p))
        return pool if into[pool] < self.settings.per_pool else None

    def _start(self, volume: Volume, pool: str) -> None:
        self.volumes[volume.id] = {
            "name": volume.name,
            "from": volume.pool,
            "to": pool,
            "state": MIGRATING,
            "attached_to": list(volume.attached_to),
            "since": time.time(),
        }
        self.save()  # before Cinder is asked: a restart watches it instead of asking again
        try:
            self.cloud.migrate(volume.id, pool)
        except CloudError as exc:
            self._end(volume.id, FAILED, f"Cinder refused its migration ({volume.status}): {exc}")
            return
        how = (
            f"attached to {', '.join(volume.attached_to)}" if volume.attached_to else volume.status
        )
        self.message(f"{self.host}: volume {self._label(volume.id)} ({how}) to {pool}")

    def _watch(self, volume_id: str, on_host: Volume | None) -> None:
        entry = self.volumes[volume_id]
        volume = on_host if on_host is not None else self.cloud.volume(volume_id)
        if volume.host != self.host and volume.migration not in UNDER_WAY:
            self._end(volume_id, MOVED, to=volume.pool)
        elif volume.migration == MIGRATION_FAILED:
            self._end(volume_id, FAILED, "Cinder's migration failed (migration_status error)")
        elif volume.migration == MIGRATED and volume.host == self.host:
            self._end(volume_id, FAILED, "Cinder says migrated, but the volume is still here")
        elif not volume.migration and volume.host == self.host:
            # asked for before a restart that came before Cinder took it: ask again
            entry["state"] = ""
            self.save()
        elif time.time() - float(entry.get("since", 0.0)) > self.settings.timeout:
            self._end(volume_id, FAILED, f"still migrating after {self.settings.timeout:g}s")

    def _end(self, volume_id: str, state: str, why: str = "", *, to: str = "") -> None:
        entry = self.volumes[volume_id]
        entry.update(state=state, **({"why": why} if why else {}), **({"to": to} if to else {}))
        self.save()
        if state == MOVED:
            self.message(f"{self.host}: volume {self._label(volume_id)} now in {entry['to']}")
        else:
            self.message(f"{self.host}: volume {self._label(volume_id)} left: {why}")
