"""The plan of a host reallocation: the evacuation of the hosts in A (with its capacity
check), what B can hold before and after they join it, and the steps each host goes
through. Planning reads both clouds and changes nothing; it refuses, with every reason at
once, what cannot be done."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from ephyra.compute import capacity
from ephyra.compute.budget import Settings
from ephyra.compute.nova import ComputeCloud
from ephyra.compute.plan import ALL_AT_ONCE, Batching, EvacuationPlan, make_plan
from ephyra.compute.realloc_steps import FORWARD, ROLLBACK
from ephyra.errors import PlanRefused
from ephyra.strategies import handover

Room = dict[str, dict[str, float]]


@dataclass(frozen=True)
class ReallocationPlan:
    evacuation: EvacuationPlan
    to: str
    handover: str
    before: Room  # B's capacity and use now
    after: Room  # and with the hosts in it, empty
    target: ComputeCloud | None = None

    def to_dict(self) -> dict[str, Any]:
        data = self.evacuation.to_dict()
        return {
            **data,
            "from": data.pop("cloud"),
            "to": self.to,
            "handover": self.handover,
            "steps": [s.title for s in FORWARD],
            "rollback": [s.title for s in ROLLBACK],
            "capacity_to": {"before": self.before, "after": self.after},
        }

    def tree(self) -> Tree:
        plan = self.evacuation
        root = Tree(
            f"[bold]reallocate[/] {len(plan.hosts)} host(s) from {plan.cloud} to {self.to} "
            f"(hand-over {self.handover})"
        )
        root.add(f"limits in {plan.cloud}: {plan.settings.describe()}")
        root.add(f"capacity in {plan.cloud}: {plan.capacity.summary()}")
        root.add(f"capacity of {self.to}: {_room(self.before)} -> {_room(self.after)}")
        for h in plan.hosts:
            branch = root.add(
                f"{h.host}: {' -> '.join(s.title for s in FORWARD)}; "
                f"undo: {' -> '.join(s.title for s in ROLLBACK)}"
            )
            for s in h.servers:
                where = plan.capacity.placed.get(s.id, "?")
                branch.add(escape(f"{s.label} [{s.project}] {s.status} -> {where}"))
        return root


def _room(room: Room) -> str:
    return ", ".join(
        f"{values['used']:g}/{values['capacity']:g} {rc}" for rc, values in sorted(room.items())
    )


def make_realloc_plan(
    source: ComputeCloud,
    target: ComputeCloud,
    hosts: Sequence[str],
    settings: Settings,
    handover_name: str,
    batching: Batching = ALL_AT_ONCE,
) -> ReallocationPlan:
    handover.build(handover_name)  # configured, and its options good: before anything
    problems = []
    if source.name == target.name:
        problems.append(f"--from and --to both name {source.name}")
    services_b = target.services()
    for host in hosts:
        if any(s.host == host for s in services_b):
            problems.append(f"{host}: {target.name} has a nova-compute on this host already")
    if problems:
        raise PlanRefused("cannot reallocate:\n  " + "\n  ".join(problems))
    evacuation = make_plan(source, hosts, settings, (), batching)
    before = capacity.cloud_room(target, services_b)
    after = {rc: dict(values) for rc, values in before.items()}
    providers = source.hypervisors()
    for host in hosts:
        room = capacity.room_of(source, providers[host]) if host in providers else {}
        capacity.add_room(after, {rc: {**v, "used": 0.0} for rc, v in room.items()})
    return ReallocationPlan(evacuation, target.name, handover_name, before, after, target)
