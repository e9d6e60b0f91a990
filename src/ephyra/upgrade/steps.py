"""The steps of one unit of an upgrade (one host's part of a stage), as TaskFlow tasks.

Forward: [record -> maintenance-on -> drain -> verify-empty] -> upgrade-1..n ->
[reboot] -> gate -> [maintenance-off]; the bracketed steps are a drained compute
host's (the evacuation's own steps). Rollback: [maintenance-on -> drain ->
verify-empty] -> downgrade-n..1 -> gate -> [maintenance-off].

A unit that fails is left as it is: a compute host stays in maintenance, and nothing
is taken back by itself (the run pauses at its failure threshold; resume retries the
unit from its start, its strategies' upgrades included; rollback takes back what was
done). Every step records what it did in the unit's
journal record first, so a step killed half-way is redone, and one done is not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from taskflow import task

from ephyra.compute import steps as compute_steps
from ephyra.compute.drain import HostRecord
from ephyra.compute.nova import ComputeCloud
from ephyra.engine.control import Control
from ephyra.errors import Interrupted
from ephyra.names import is_version, shown
from ephyra.strategies import shell
from ephyra.strategies.base import Strategy, Target, render, stream
from ephyra.upgrade.gates import Gate
from ephyra.upgrade.plan import Action, Unit
from ephyra.upgrade.spec import Spec

KIND = "upgrade"


@dataclass
class UnitContext:
    run_id: str
    unit: Unit
    spec: Spec
    strategies: Mapping[str, Strategy]
    record: HostRecord  # the journal's "unit:<id>"
    control: Control
    cloud: ComputeCloud | None
    output: Callable[[str, str], None]  # (step, line)
    on_step: Callable[[str, str, str, float], None] = field(default=lambda *a: None)
    message: Callable[[str], None] = field(default=lambda text: None)

    def target(self, action: Action, version: str) -> Target:
        return Target(self.unit.host, version, action.services, action.kind)

    @property
    def actions(self) -> dict[str, dict[str, Any]]:
        done: dict[str, dict[str, Any]] = self.record.data.setdefault("actions", {})
        return done


class UnitStep(task.Task):  # type: ignore[misc]
    title: ClassVar[str]

    def __init__(self, ctx: UnitContext, name: str | None = None) -> None:
        super().__init__(name=name or self.title)
        self.ctx = ctx

    def execute(self) -> None:
        started = time.monotonic()
        self.ctx.control.checkpoint()
        self.ctx.on_step(self.ctx.unit.host, self.name, "started", 0.0)
        try:
            self.apply()
        except Interrupted:
            raise
        except Exception:
            self.ctx.on_step(self.ctx.unit.host, self.name, "failed", time.monotonic() - started)
            raise
        self.ctx.on_step(self.ctx.unit.host, self.name, "done", time.monotonic() - started)

    def apply(self) -> None:
        raise NotImplementedError


class Upgrade(UnitStep):
    """One strategy action, to the run's release; before and after recorded."""

    title = "upgrade"

    def __init__(self, ctx: UnitContext, index: int) -> None:
        super().__init__(ctx, f"upgrade-{index + 1}")
        self.index = index

    def apply(self) -> None:
        key = str(self.index)
        if "after" in self.ctx.actions.get(key, {}):
            return
        action = self.ctx.unit.actions[self.index]
        strategy = self.ctx.strategies[action.strategy]
        target = self.ctx.target(action, self.ctx.spec.release)
        change = strategy.upgrade(target, lambda line: self.ctx.output(self.name, line))
        first = self.ctx.actions.get(key, {})  # a retry keeps the version of the first try
        self.ctx.actions[key] = {
            "strategy": action.strategy,
            "before": first.get("before", change.before),
            "after": change.after,
        }
        self.ctx.record.save(since=time.time())
        self.ctx.message(
            f"{self.ctx.unit.host}: {action.strategy} {change.before or '?'} -> {change.after}"
        )


class Downgrade(UnitStep):
    """Take one action back to the version recorded before it, where its strategy can."""

    title = "downgrade"

    def __init__(self, ctx: UnitContext, index: int) -> None:
        super().__init__(ctx, f"downgrade-{index + 1}")
        self.index = index

    def apply(self) -> None:
        entry = self.ctx.actions.get(str(self.index))
        if not entry or "after" not in entry or "back" in entry or "kept" in entry:
            return
        action = self.ctx.unit.actions[self.index]
        strategy = self.ctx.strategies[action.strategy]
        before = entry.get("before")
        if not strategy.can_downgrade() or not before or not is_version(before):
            why = (
                f"the {strategy.name} strategy has no downgrade"
                if not strategy.can_downgrade()
                else "the version before is unknown"
                if not before
                else f"the version before, {shown(before)}, is not a valid version"
            )
            entry["kept"] = f"left at {entry['after']}: {why}"
            self.ctx.record.save()
            self.ctx.message(f"{self.ctx.unit.host}: {action.strategy}: {entry['kept']}")
            return
        target = self.ctx.target(action, str(entry["before"]))
        change = strategy.downgrade(target, lambda line: self.ctx.output(self.name, line))
        entry["back"] = change.after
        self.ctx.record.save(since=time.time())
        self.ctx.message(f"{self.ctx.unit.host}: {action.strategy} back to {change.after}")


class Reboot(UnitStep):
    """The host upgrade's reboot command; the gate then waits for its services."""

    title = "reboot"

    def apply(self) -> None:
        if self.ctx.record.data.get("rebooted"):
            return
        hu = self.ctx.spec.host_upgrade
        assert hu is not None and hu.reboot
        target = Target(self.ctx.unit.host, self.ctx.spec.release, (), "host")
        command = render(hu.reboot, target, shell=True)
        stream(
            shell.shell_argv(command, target),
            lambda line: self.ctx.output(self.name, line),
            what=command,
            timeout=hu.reboot_timeout,
        )
        self.ctx.record.save(rebooted=True, since=time.time())


class HealthGate(UnitStep):
    """Wait until the unit's services are healthy again (see ``gates``)."""

    title = "gate"

    def __init__(self, ctx: UnitContext, back: bool = False) -> None:
        super().__init__(ctx)
        self.back = back

    def apply(self) -> None:
        version = self.ctx.spec.release
        check_version = True
        if self.back:  # the version it went back to, if the hypervisor's went back
            befores = [
                e["before"]
                for i, e in self.ctx.actions.items()
                if "back" in e and "nova-compute" in self.ctx.unit.actions[int(i)].services
            ]
            check_version = bool(befores)
            version = befores[0] if befores else version
        gate = Gate(
            self.ctx.spec.gates,
            self.ctx.cloud,
            Target(self.ctx.unit.host, version, self.ctx.unit.services),
            since=float(self.ctx.record.data.get("since") or 0.0),
            check_version=check_version,
        )
        gate.wait(self.ctx.control)


def forward(ctx: UnitContext, host_ctx: compute_steps.HostContext | None) -> list[Any]:
    steps: list[Any] = []
    if host_ctx is not None:
        steps += [step(host_ctx) for step in compute_steps.FORWARD]
    steps += [Upgrade(ctx, i) for i in range(len(ctx.unit.actions))]
    if ctx.unit.reboot:
        steps.append(Reboot(ctx))
    steps.append(HealthGate(ctx))
    if host_ctx is not None:
        steps.append(compute_steps.MaintenanceOff(host_ctx))
    return steps


def backward(ctx: UnitContext, host_ctx: compute_steps.HostContext | None) -> list[Any]:
    steps: list[Any] = []
    if host_ctx is not None:
        forward_drain = compute_steps.FORWARD[1:]  # the record of the forward run stands
        steps += [step(host_ctx) for step in forward_drain]
    steps += [Downgrade(ctx, i) for i in reversed(range(len(ctx.unit.actions)))]
    steps.append(HealthGate(ctx, back=True))
    if host_ctx is not None:
        steps.append(compute_steps.MaintenanceOff(host_ctx))
    return steps
