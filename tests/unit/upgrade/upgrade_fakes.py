"""A strategy that upgrades an in-memory world, for tests of the upgrade's logic."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ephyra.errors import NoDowngrade, StrategyFailed
from ephyra.inventory.model import Inventory, Service, inventory, make_host
from ephyra.strategies.base import Change, Output, Strategy, Target


class World:
    """Versions per (host, service), every call made, and how many ran at once."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, str, tuple[str, ...], str]] = []
        self.fail: set[str] = set()
        self.log: Path | None = None  # each call also appended here: "WHAT HOST"
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()

    def key(self, target: Target) -> tuple[str, str]:
        return (target.host, ",".join(target.services) or "host")

    def act(self, what: str, target: Target, output: Output, delay: float) -> Change:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.calls.append((what, target.host, target.services, target.version))
            if self.log is not None:
                with self.log.open("a") as log:
                    log.write(f"{what} {target.host}\n")
        try:
            time.sleep(delay)
            output(f"{what} {target.host} to {target.version}")
            if target.host in self.fail:
                raise StrategyFailed(f"{target.host}: the package would not install")
            before = self.versions.get(self.key(target), "1.0")
            self.versions[self.key(target)] = target.version
            return Change(before, target.version)
        finally:
            with self.lock:
                self.running -= 1


WORLD = World()


class FakeStrategy(Strategy):
    name = "fake"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.delay = float(options.get("delay", 0.05))

    def version(self, target: Target) -> str:
        return WORLD.versions.get(WORLD.key(target), "1.0")

    def upgrade(self, target: Target, output: Output) -> Change:
        return WORLD.act("upgrade", target, output, self.delay)

    def can_downgrade(self) -> bool:
        return not self.options.get("no_downgrade")

    def downgrade(self, target: Target, output: Output) -> Change:
        if not self.can_downgrade():
            raise NoDowngrade("fake: no downgrade")
        return WORLD.act("downgrade", target, output, self.delay)


def build(options: Mapping[str, Any]) -> Strategy:
    return FakeStrategy({k: v for k, v in options.items() if k != "type"})


def cloud(controllers: int = 2, computes: int = 5) -> Inventory:
    ctl = [
        make_host(
            f"ctl-{i}",
            roles={"controller"},
            services=[
                Service("keystone", "identity"),
                Service("glance-api", "image"),
                Service("nova-api", "compute"),
                Service("nova-scheduler", "compute"),
                Service("nova-conductor", "compute"),
            ],
        )
        for i in range(1, controllers + 1)
    ]
    cmp = [
        make_host(
            f"cmp-{i}",
            roles={"compute"},
            services=[Service("nova-compute", "compute")],
            servers=i,
        )
        for i in range(1, computes + 1)
    ]
    return inventory([*ctl, *cmp])
