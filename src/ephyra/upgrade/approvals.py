"""Stages that wait for an admin's approval, and a run that goes one stage at a time.

A specification names the stages that wait: ``approvals:``, patterns of stage names as
the shell matches file names (``data plane: compute``, ``database: *``; a pattern that
names no stage of the plan is refused when planning), and ``roles.ROLE.approval: true``
(every stage of that role: ``data plane: ROLE``; for ``controller``, each control-plane
stage). The plan marks them (:attr:`ephyra.upgrade.plan.Stage.approval`).

Before such a stage, while a unit of it is still to be upgraded, the runner pauses the
run, saying so, until the stage is approved: ``ephyra upgrade approve RUN [--stage
NAME]`` (``POST /v1/upgrade/runs/{run}/approve``) keeps who approved it, when and from
where in the run's record ``approvals``, then resumes the run.

``ephyra upgrade step RUN`` keeps the name of the next stage still to do in the same
record (``stop_after``) and resumes the run: once that stage's last batch is done the
runner forgets it and pauses the run again (the last stage of the plan just ends the run).
A step stopped on the way (a failure, a pause, an approval it waits for) still stops after
its stage when the run goes on.

Every write of the record is made holding the run's locks: by the runner, or by approve
and step before they resume the run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from ephyra.engine.states import Phase
from ephyra.errors import IllegalTransition, UsageError
from ephyra.upgrade.records import OUTCOMES, Outcome, UpgradeMeta

if TYPE_CHECKING:  # the journal (SQLAlchemy, TaskFlow): not for building the parser
    from ephyra.engine.journal import Journal, RunInfo
    from ephyra.engine.service import RunService
    from ephyra.upgrade.plan import Plan, Stage
    from ephyra.upgrade.spec import Spec

#: The run's record of its approvals and its step.
RECORD = "approvals"
#: How the reason of a run paused after the stage a step ran begins.
STEPPED = "stepped:"


# -- planning ---------------------------------------------------------------------------
def marked(stages: Sequence[Stage], spec: Spec) -> list[Stage]:
    """``stages``, those the specification holds for an approval marked so."""
    names = [s.name for s in stages]
    for pattern in spec.approvals:
        if not any(fnmatchcase(name, pattern) for name in names):
            raise UsageError(
                f"approvals: {pattern!r} names no stage of the plan (its stages: "
                f"{', '.join(names) or 'none'})"
            )
    roles = {role for role, rule in spec.roles.items() if rule.approval}
    return [
        replace(s, approval=True)
        if s.role in roles or any(fnmatchcase(s.name, p) for p in spec.approvals)
        else s
        for s in stages
    ]


# -- the record -------------------------------------------------------------------------
@dataclass
class Kept:
    """What the record ``approvals`` holds: stage -> who approved it (``by``), when
    (``at``) and from where (``source``: cli, api); and the stage a step stops after."""

    approved: dict[str, dict[str, Any]] = field(default_factory=dict)
    stop_after: str = ""

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> Kept:
        data = data or {}
        approved = {str(k): dict(v) for k, v in (data.get("approved") or {}).items()}
        return cls(approved, str(data.get("stop_after") or ""))

    def to_dict(self) -> dict[str, Any]:
        return {"approved": self.approved, "stop_after": self.stop_after}


def kept(journal: Journal, run_id: str) -> Kept | None:
    """The run's record; None for a run made before approvals were kept."""
    found = journal.records(run_id, RECORD).get(RECORD)
    return None if found is None else Kept.of(found)


def pending(stage: Stage, records: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a unit of ``stage`` is still to be upgraded (``records``: the units')."""
    return any(
        OUTCOMES.parse(records.get(f"unit:{u.id}", {}).get(Phase.FORWARD.value))
        is not Outcome.UPGRADED
        for u in stage.units()
    )


def shown(plan: Plan, found: Kept | None) -> list[dict[str, Any]]:
    """The stages that wait for an approval, each with who approved it ('' if no one)."""
    found = found or Kept()
    return [
        {
            "stage": s.name,
            "by": str(found.approved.get(s.name, {}).get("by") or ""),
            "at": float(found.approved.get(s.name, {}).get("at") or 0.0),
            "source": str(found.approved.get(s.name, {}).get("source") or ""),
        }
        for s in plan.stages
        if s.approval
    ]


# -- the runner's side ------------------------------------------------------------------
class Gate:
    """What the runner asks before a stage and after its last batch."""

    def __init__(self, journal: Journal, run: RunInfo) -> None:
        self.journal, self.run = journal, run

    def before(self, stage: Stage) -> str:
        """Why the run stops before ``stage`` ('' when it goes on)."""
        if not stage.approval:
            return ""
        found = kept(self.journal, self.run.id) or Kept()
        if stage.name in found.approved:
            return ""
        return f"stage {stage.name} waits for approval (ephyra upgrade approve {self.run.short})"

    def after(self, stage: Stage, last: bool) -> str:
        """Why the run stops after ``stage``, its last batch done ('' when it goes on):
        a step that asked to stop there, forgotten then."""
        found = kept(self.journal, self.run.id)
        if found is None or found.stop_after != stage.name:
            return ""
        found.stop_after = ""
        self.journal.save_record(self.run.id, RECORD, found.to_dict())
        if last:
            return ""
        short = self.run.short
        return (
            f"{STEPPED} stage {stage.name} done (ephyra upgrade step {short}: the next stage;"
            f" ephyra upgrade resume {short}: the rest)"
        )


# -- approve and step, before they resume the run -----------------------------------------
@dataclass(frozen=True)
class Done:
    """What approve or step wrote: the run, and what it did, in words."""

    run: RunInfo
    message: str


def _taken(service: RunService[Any], ident: str | None) -> tuple[RunInfo, Plan]:
    from ephyra.engine.service import Action
    from ephyra.upgrade.plan import Plan

    run = service.target(ident, Action.RESUME)
    if run.phase == Phase.ROLLBACK.value:
        raise IllegalTransition(f"run {run.short} is rolling back: nothing to approve or step")
    return run, Plan.from_dict(UpgradeMeta.from_meta(run.meta).plan)


def _record(service: RunService[Any], run: RunInfo) -> Kept:
    found = kept(service.journal, run.id)
    if found is None:
        raise IllegalTransition(f"run {run.short} was made before approvals were kept")
    return found


def approve(
    service: RunService[Any], ident: str | None, stage: str | None, by: str, source: str
) -> Done:
    """Approve ``stage`` of the run (None: the first stage still to do that waits for
    one), as ``by``; refused while a process drives the run (its locks are held)."""
    run, plan = _taken(service, ident)
    with service.holding(service.locks(run)):
        found = _record(service, run)
        records = service.journal.records(run.id, "unit:")
        if stage is None:
            waiting = [
                s
                for s in plan.stages
                if s.approval and s.name not in found.approved and pending(s, records)
            ]
            if not waiting:
                raise IllegalTransition(
                    f"run {run.short} waits for no approval: no stage still to do needs one"
                )
            stage = waiting[0].name
        named = next((s for s in plan.stages if s.name == stage), None)
        if named is None:
            stages = ", ".join(s.name for s in plan.stages)
            raise UsageError(f"run {run.short} has no stage {stage!r} (its stages: {stages})")
        if not named.approval:
            raise UsageError(f"stage {stage} of run {run.short} waits for no approval")
        before = found.approved.get(stage)
        if before:
            return Done(run, f"stage {stage} was approved already, by {before.get('by')}")
        found.approved[stage] = {"by": by, "at": time.time(), "source": source}
        service.journal.save_record(run.id, RECORD, found.to_dict())
    return Done(run, f"stage {stage} approved by {by}")


def step(service: RunService[Any], ident: str | None) -> Done:
    """Ask the run to stop after its next stage still to do; refused while a process
    drives the run."""
    run, plan = _taken(service, ident)
    with service.holding(service.locks(run)):
        found = _record(service, run)
        records = service.journal.records(run.id, "unit:")
        todo = next((s for s in plan.stages if pending(s, records)), None)
        if todo is None:
            raise IllegalTransition(
                f"run {run.short} has no stage left to do: resume it (ephyra upgrade resume)"
            )
        found.stop_after = todo.name
        service.journal.save_record(run.id, RECORD, found.to_dict())
    return Done(run, f"run {run.short}: stage {todo.name}, then it pauses")
