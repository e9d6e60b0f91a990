"""Preflight: what bites operators in an upgrade, checked before it begins.

Each check is a plugin of the entry-point group ``ephyra.preflight``: a class with a
``name`` whose ``run(context)`` gives verdicts, each ``ok``, ``warn`` or ``block``, about
a subject, with what to do. ``ephyra upgrade preflight`` runs them all and prints the
verdicts (exit 1 when one blocks); every run runs them as its first stage, and a block
pauses it before any host is touched, naming each blocking verdict (``resume`` runs them
again). A check the specification skips (``preflight: {skip: [NAME]}``) does not run; a
check that needs the cloud's APIs does not run without one; a check that fails to run
blocks, saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from ephyra import plugins
from ephyra.compute.nova import ComputeCloud
from ephyra.errors import EphyraError
from ephyra.upgrade.availability import why
from ephyra.upgrade.plan import Plan
from ephyra.upgrade.spec import Spec

NAMESPACE = "ephyra.preflight"
RECORD = "preflight"


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    BLOCK = "block"


@dataclass(frozen=True)
class Verdict:
    check: str
    level: Level
    subject: str
    message: str
    todo: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "level": self.level.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(**{**data, "level": Level(data["level"])})

    def describe(self) -> str:
        todo = f" ({self.todo})" if self.todo else ""
        return f"{self.check}: {self.subject}: {self.message}{todo}"


@dataclass
class Context:
    """What a check reads: the specification, the plan, the cloud (None: none named)."""

    spec: Spec
    plan: Plan
    cloud: ComputeCloud | None
    output: Callable[[str], None] = field(default=lambda line: None)


class Check:
    """Base of every preflight plugin."""

    name: ClassVar[str]
    #: Whether the check reads the cloud's APIs (it does not run without a cloud).
    needs_cloud: ClassVar[bool] = True

    def run(self, ctx: Context) -> list[Verdict]:
        raise NotImplementedError


def checks(skip: Sequence[str] = ()) -> list[Check]:
    """Every preflight plugin, by name, but those skipped."""
    return [
        plugins.load(NAMESPACE, name, Check)()
        for name in plugins.names(NAMESPACE)
        if name not in skip
    ]


def run(ctx: Context) -> list[Verdict]:
    """The verdicts of every check that can run here, check by check."""
    verdicts: list[Verdict] = []
    for check in checks(ctx.spec.preflight_skip):
        if check.needs_cloud and ctx.cloud is None:
            continue
        try:
            verdicts += check.run(ctx)
        except EphyraError as exc:
            verdicts.append(Verdict(check.name, Level.BLOCK, "the check", f"did not run: {exc}"))
        except Exception as exc:  # a plugin's own failure is a block, not a crash
            verdicts.append(
                Verdict(check.name, Level.BLOCK, "the check", f"did not run: {why(exc)}")
            )
    return verdicts


def blocking(verdicts: Sequence[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.level is Level.BLOCK]
