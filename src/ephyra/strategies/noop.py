"""The ``noop`` strategy: changes nothing, and says the target runs what it was last asked
to run in this process (until then, its ``start`` option, default ``''``).

For dry rehearsals of a rollout's order and rules, and for measuring the orchestration
itself without the cost of any real tool. Options: ``start`` (the version before the first
upgrade).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ephyra.strategies.base import Change, Output, Strategy, Target
from ephyra.strategies.options import Options


class NoopStrategy(Strategy):
    name = "noop"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.start = Options(self.name, options, ("start",)).text("start", "") or ""
        self._versions: dict[str, str] = {}
        self._lock = threading.Lock()

    def version(self, target: Target) -> str:
        with self._lock:
            return self._versions.get(target.host, self.start)

    def _set(self, target: Target) -> Change:
        with self._lock:
            before = self._versions.get(target.host, self.start)
            self._versions[target.host] = target.version
        return Change(before, target.version)

    def upgrade(self, target: Target, output: Output) -> Change:
        return self._set(target)

    def can_downgrade(self) -> bool:
        return True

    def downgrade(self, target: Target, output: Output) -> Change:
        return self._set(target)
