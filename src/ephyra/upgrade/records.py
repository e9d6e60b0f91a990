"""What an upgrade run records: its metadata beside the engine's keys, its units' outcomes
and the table of which may follow which, and its own part of its status.

Imported by the kind's module when the command line is built: only the standard library
and the engine's light modules here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ephyra.engine.kinds import counts
from ephyra.engine.outcomes import Outcomes


@dataclass(frozen=True)
class UpgradeMeta:
    """What an upgrade run records of itself, beside the engine's keys: its cloud (None:
    none named), the release it goes to, its specification as given and its plan
    (:meth:`ephyra.upgrade.plan.Plan.to_dict`): resume and rollback go on with them."""

    cloud: str | None
    release: str
    spec: dict[str, Any]
    plan: dict[str, Any]
    heal: bool = False  # leaked Placement allocations of drained hosts are removed

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> UpgradeMeta:
        return cls(
            cloud=meta.get("cloud") or None,
            release=str(meta.get("release") or ""),
            spec=dict(meta.get("spec") or {}),
            plan=dict(meta.get("plan") or {}),
            heal=bool(meta.get("heal")),
        )

    def to_meta(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "release": self.release,
            "spec": dict(self.spec),
            "plan": dict(self.plan),
            **({"heal": True} if self.heal else {}),
        }

    @property
    def units(self) -> int:
        stages = self.plan.get("stages") or []
        return sum(len(b["units"]) for s in stages for b in s["batches"])


class Outcome(StrEnum):
    """A unit's outcome in a phase (its record's ``forward`` and ``rollback``)."""

    PENDING = "pending"  # not begun (nothing recorded)
    RUNNING = "running"
    UPGRADED = "upgraded"  # forward
    RESTORED = "restored"  # rollback
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    RETRY = "retry"  # forward: failed, and a resume tries it again from the start


_O = Outcome
#: (old, new): why a unit's outcome in a phase may change so.
TRANSITIONS: dict[tuple[Outcome, Outcome], str] = {
    (_O.PENDING, _O.RUNNING): "its flow begins",
    (_O.RUNNING, _O.RUNNING): "its process died: a resume runs its flow again",
    (_O.RUNNING, _O.UPGRADED): "forward: upgraded and through its health gate",
    (_O.RUNNING, _O.RESTORED): "rollback: taken back, with its strategies' downgrades",
    (_O.RUNNING, _O.FAILED): "a step failed",
    (_O.RUNNING, _O.INTERRUPTED): "a stop (pause, abort, Ctrl-C) reached it",
    (_O.INTERRUPTED, _O.RUNNING): "a resume or rollback goes on with it",
    (_O.UPGRADED, _O.FAILED): "a canary failed its health gate after its soak",
    (_O.FAILED, _O.RETRY): "a resume tries the failed units again, from the start",
    (_O.FAILED, _O.RUNNING): "a resumed rollback tries it again",
    (_O.RETRY, _O.RUNNING): "its flow begins again",
}
OUTCOMES = Outcomes("unit", Outcome.PENDING, TRANSITIONS)


@dataclass(frozen=True)
class UnitStatus:
    unit: str
    stage: str
    batch: int
    host: str
    forward: Outcome
    rollback: Outcome | None  # None: not taken back (yet)
    versions: str
    kept: str
    error: str
    output: list[str]
    healed: list[str] = field(default_factory=list)  # leaked allocations removed

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "stage": self.stage,
            "batch": self.batch,
            "host": self.host,
            "forward": self.forward.value,
            "rollback": self.rollback.value if self.rollback else "",
            "versions": self.versions,
            "kept": self.kept,
            "error": self.error,
            "output": list(self.output),
            "healed": list(self.healed),
        }


@dataclass(frozen=True)
class UpgradeDetail:
    """An upgrade run's own part of its status: its release and cloud, the hosts left
    alone, and each unit."""

    release: str
    cloud: str | None
    frozen: list[str]
    units: tuple[UnitStatus, ...]
    #: The compute API's availability during the run (:mod:`ephyra.upgrade.availability`).
    availability: Mapping[str, Any] = field(default_factory=dict)
    #: The verdicts of the run's last preflight (:mod:`ephyra.upgrade.preflight`).
    preflight: list[dict[str, Any]] = field(default_factory=list)
    #: The stages that wait for an approval, and who approved each
    #: (:mod:`ephyra.upgrade.approvals`).
    approvals: list[dict[str, Any]] = field(default_factory=list)

    def where(self) -> dict[str, Any]:
        return {"release": self.release, "cloud": self.cloud}

    def lists(self) -> dict[str, Any]:
        units = [unit.to_dict() for unit in self.units]
        return {
            "counts": counts(units),
            "frozen": list(self.frozen),
            "availability": dict(self.availability),
            "preflight": list(self.preflight),
            "approvals": list(self.approvals),
            "units": units,
        }
