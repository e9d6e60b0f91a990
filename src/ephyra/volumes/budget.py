"""The volume drain's budget: how many of a storage host's volumes move at once."""

from __future__ import annotations

from dataclasses import dataclass

from ephyra.errors import UsageError


@dataclass(frozen=True)
class Settings:
    """The volume drain's budget (``volume_evacuation:`` of an upgrade)."""

    concurrency: int = 2
    per_pool: int = 1
    timeout: float = 900.0  # seconds one migration may take
    target: str = ""  # the pool every volume goes to; '' for any pool of another host
    poll: float = 1.0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.per_pool < 1:
            raise UsageError("volume_evacuation: concurrency and per_pool must be at least 1")
        if self.timeout <= 0 or self.poll <= 0:
            raise UsageError("volume_evacuation: timeout must be positive")
