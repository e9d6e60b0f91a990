"""A forklift run's settings, kept in its journal record (no secrets: the credential
source is kept as its spec, ``file:PATH`` or ``source``, never its content)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ephyra.errors import UsageError


@dataclass(frozen=True)
class Settings:
    concurrency: int = 1
    batch_size: int = 0  # 0: the concurrency
    max_failures: int = 0
    step_timeout: float = 1800.0
    health_timeout: float = 600.0
    gate_timeout: float = 600.0
    max_deferrals: int = 20
    defer_wait: float = 30.0
    workload: str = "noop"
    workload_options: dict[str, str] = field(default_factory=dict)
    credentials: str | None = None
    #: Nova owns the nodes: each node's server is deleted and booted again with it.
    nova: bool = False

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        if self.batch_size < 0 or self.max_failures < 0 or self.max_deferrals < 0:
            raise UsageError("--batch-size, --max-failures and --max-deferrals cannot be negative")
        for name in ("step_timeout", "health_timeout", "gate_timeout", "defer_wait"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{name.replace('_', '-')} must be positive")

    @property
    def batch(self) -> int:
        return self.batch_size or self.concurrency

    def to_meta(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Settings:
        return cls(**meta)
