"""The steps of one unit of an upgrade (one host's part of a stage), as TaskFlow tasks.

Forward: [record -> maintenance-on -> drain -> verify-empty -> placement-audit] ->
[move-volumes] -> upgrade-1..n -> [reboot] -> gate -> [maintenance-off]; the bracketed
steps are a drained compute host's (the evacuation's own steps, then the Placement
audit; its maintenance-off starts again the servers its drain stopped), and a storage
host's volumes moved off it. Rollback:
[maintenance-on -> drain -> verify-empty] -> [move-volumes] -> downgrade-n..1 -> gate ->
[maintenance-off] (which starts again the servers stopped by either drain).

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

from ephyra.compute import audit
from ephyra.compute import steps as compute_steps
from ephyra.compute.drain import HostRecord
from ephyra.compute.nova import ComputeCloud
from ephyra.engine.control import Control
from ephyra.errors import EphyraError, GateFailed, Interrupted, StrategyFailed
from ephyra.names import is_version, shown
from ephyra.strategies import shell
from ephyra.strategies.base import Output, Strategy, Target, render, stream
from ephyra.upgrade import pins
from ephyra.upgrade.gates import Gate
from ephyra.upgrade.plan import MIGRATE, PIN, PROJECT_KINDS, SERVICE, SYNC, UNPIN, Action, Unit
from ephyra.upgrade.spec import ProjectSteps, Spec
from ephyra.volumes.cinder import VolumeCloud
from ephyra.volumes.drain import VolumeDrain

KIND = "upgrade"
#: Most runs of a project's data migrations command, each saying it has more to do.
MIGRATE_ROUNDS = 1000


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
    heal: bool = False  # leaked Placement allocations removed (else they fail the unit)
    volumes: VolumeCloud | None = None  # the cloud's Cinder, for a storage host's volumes
    batch: frozenset[str] = frozenset()  # the hosts of the unit's batch (no volume goes there)

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
    """One action, to the run's release; before and after recorded. A strategy's upgrade
    of services is followed by their restart (``restart``); a project's own actions run
    its commands (``project_steps``)."""

    title = "upgrade"

    def __init__(self, ctx: UnitContext, index: int) -> None:
        super().__init__(ctx, f"upgrade-{index + 1}")
        self.index = index

    def _line(self, line: str) -> None:
        self.ctx.output(self.name, line)

    def apply(self) -> None:
        key = str(self.index)
        if "after" in self.ctx.actions.get(key, {}):
            return
        action = self.ctx.unit.actions[self.index]
        if action.kind in PROJECT_KINDS:
            self._project(action, key)
            return
        strategy = self.ctx.strategies[action.strategy]
        version = self.ctx.spec.version_for(action.strategy)
        change = strategy.upgrade(self.ctx.target(action, version), self._line)
        first = self.ctx.actions.get(key, {})  # a retry keeps the version of the first try
        entry = {
            "strategy": action.strategy,
            "before": first.get("before", change.before),
            "installed": change.after,
        }
        self.ctx.actions[key] = entry
        self.ctx.record.save()  # a restart that fails leaves the downgrade what to go back to
        if action.kind == SERVICE:
            restart(self.ctx, action, version, self._line)
        entry["after"] = change.after
        self.ctx.record.save(since=time.time())
        self.ctx.message(
            f"{self.ctx.unit.host}: {action.strategy} {change.before or '?'} -> {change.after}"
        )

    def _project(self, action: Action, key: str) -> None:
        steps = self.ctx.spec.project_steps[action.project]
        target = self.ctx.target(action, self.ctx.spec.release)
        done = {SYNC: "synced", PIN: "pinned", UNPIN: "unpinned", MIGRATE: "migrated"}
        # begun: a rollback takes back a pin written or removed by a step that then failed
        self.ctx.actions[key] = {"project": action.project, "began": True}
        self.ctx.record.save()
        if action.kind == SYNC:
            for command in steps.sync:
                project_command(steps, command, target, self._line, "sync")
        elif action.kind in (PIN, UNPIN):
            assert steps.pin is not None
            mode = pins.SET if action.kind == PIN else pins.UNSET
            pins.apply(steps.pin, mode, target, self._line, steps.options, steps.timeout)
            if action.kind == UNPIN:
                restart(self.ctx, action, self.ctx.spec.release, self._line)
        else:
            migrate(steps, target, self._line, self.ctx.control)
        self.ctx.actions[key] = {"project": action.project, "after": done[action.kind]}
        self.ctx.record.save(since=time.time())
        self.ctx.message(f"{self.ctx.unit.host}: {action.describe()}: {done[action.kind]}")


def project_command(
    steps: ProjectSteps, command: str, target: Target, output: Output, what: str
) -> str:
    """Run one of a project's commands on the target's host."""
    return shell.run(
        command, target, output, what=what, options=steps.options, timeout=steps.timeout
    )


def migrate(steps: ProjectSteps, target: Target, output: Output, control: Control) -> None:
    """The project's data migrations, again while they exit ``migrate_again`` (more to
    do), until they exit 0; at most :data:`MIGRATE_ROUNDS` times."""
    for rounds in range(1, MIGRATE_ROUNDS + 1):
        control.checkpoint()
        try:
            project_command(steps, steps.migrate, target, output, f"migrations (round {rounds})")
            return
        except StrategyFailed as exc:
            if exc.returncode != steps.migrate_again:
                raise
    raise StrategyFailed(
        f"{target.host}: the data migrations still had more to do after {MIGRATE_ROUNDS} rounds"
    )


def restart(ctx: UnitContext, action: Action, version: str, output: Output) -> None:
    """Restart each service of ``action`` that has a restart command, in order."""
    for service in action.services:
        command = ctx.spec.restart_of(service)
        if command:
            target = Target(ctx.unit.host, version, (service,))
            shell.run(command, target, output, what=f"restart of {service}")


class Downgrade(UnitStep):
    """Take one action back to the version recorded before it, where its strategy can."""

    title = "downgrade"

    def __init__(self, ctx: UnitContext, index: int) -> None:
        super().__init__(ctx, f"downgrade-{index + 1}")
        self.index = index

    def _line(self, line: str) -> None:
        self.ctx.output(self.name, line)

    def apply(self) -> None:
        entry = self.ctx.actions.get(str(self.index))
        if not entry or "back" in entry or "kept" in entry:
            return
        action = self.ctx.unit.actions[self.index]
        if action.kind in PROJECT_KINDS:
            self._project(action, entry)  # begun is enough: each is idempotent
            return
        done = entry.get("after") or entry.get("installed")
        if not done:
            return
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
            self._keep(action, entry, f"left at {done}: {why}")
            return
        target = self.ctx.target(action, str(entry["before"]))
        change = strategy.downgrade(target, self._line)
        if action.kind == SERVICE:
            restart(self.ctx, action, str(entry["before"]), self._line)
        entry["back"] = change.after
        self.ctx.record.save(since=time.time())
        self.ctx.message(f"{self.ctx.unit.host}: {action.strategy} back to {change.after}")

    def _keep(self, action: Action, entry: dict[str, Any], why: str) -> None:
        entry["kept"] = why
        self.ctx.record.save()
        self.ctx.message(f"{self.ctx.unit.host}: {action.describe()}: {why}")

    def _project(self, action: Action, entry: dict[str, Any]) -> None:
        steps = self.ctx.spec.project_steps[action.project]
        release = self.ctx.spec.release
        if action.kind == SYNC:
            how = "expand only: the previous release runs on them" if steps.expand_only else ""
            self._keep(
                action,
                entry,
                f"the {action.project} databases stay at {release} ({how or 'no way back'})",
            )
            return
        if action.kind == MIGRATE:
            self._keep(action, entry, f"the {action.project} data stays migrated to {release}")
            return
        assert steps.pin is not None
        target = self.ctx.target(action, release)
        mode = pins.UNSET if action.kind == PIN else pins.SET
        pins.apply(steps.pin, mode, target, self._line, steps.options, steps.timeout)
        if action.kind == UNPIN:  # back to the pinned services the older ones need
            restart(self.ctx, action, release, self._line)
        entry["back"] = "unpinned" if action.kind == PIN else "pinned"
        self.ctx.record.save(since=time.time())
        self.ctx.message(f"{self.ctx.unit.host}: {action.describe()}: {entry['back']}")


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


class PlacementAudit(UnitStep):
    """A drained host must be empty to Placement too: allocations against it that no
    server or migration holds any more (:mod:`ephyra.compute.audit`) fail the unit, or
    with ``heal`` are removed, each recorded in the unit's record."""

    title = "placement-audit"

    def apply(self) -> None:
        assert self.ctx.cloud is not None
        host = self.ctx.unit.host
        found = audit.leaks(self.ctx.cloud, [host])
        if not found:
            return
        if not self.ctx.heal:
            raise GateFailed(
                f"{host}: Placement allocations leaked after the drain: "
                + "; ".join(leak.describe() for leak in found)
                + " (start the upgrade with --heal to remove them, or run "
                "nova-manage placement audit --delete)"
            )
        healed = list(self.ctx.record.data.get("healed") or [])
        for leak in found:
            audit.heal(self.ctx.cloud, leak)
            healed.append({**leak.to_dict(), "at": time.time()})
            self.ctx.record.save(healed=healed)
            self.ctx.message(f"{host}: removed a leaked allocation: {leak.describe()}")


class MoveVolumes(UnitStep):
    """A storage host's volumes moved to other storage hosts by Cinder's own migration,
    within ``volume_evacuation``'s budget (:mod:`ephyra.volumes.drain`), before its
    cinder-volume is upgraded (or, ``back``, downgraded); each volume's move is kept in
    the unit's record."""

    title = "move-volumes"

    def __init__(self, ctx: UnitContext, back: bool = False) -> None:
        super().__init__(ctx)
        self.key = "volumes_back" if back else "volumes"

    def apply(self) -> None:
        if f"{self.key}_moved" in self.ctx.record.data:
            return
        if self.ctx.volumes is None:
            raise EphyraError("moving a storage host's volumes needs a cloud (--os-cloud)")
        drain = VolumeDrain(
            self.ctx.volumes,
            self.ctx.unit.host,
            self.ctx.spec.volume_evacuation,
            self.ctx.control,
            self.ctx.batch,
            self.ctx.record.data,
            self.ctx.record.save,
            self.ctx.message,
            key=self.key,
        )
        result = drain.run()
        self.ctx.record.save(**{f"{self.key}_moved": result.moved})
        self.ctx.message(
            f"{self.ctx.unit.host}: {result.moved} volume(s) moved in {result.seconds:.1f}s"
        )


class HealthGate(UnitStep):
    """Wait until the unit's services are healthy again (see ``gates``)."""

    title = "gate"

    def __init__(self, ctx: UnitContext, back: bool = False) -> None:
        super().__init__(ctx)
        self.back = back

    def apply(self) -> None:
        # the hypervisor's version is checked where a strategy upgraded nova-compute
        computes = [
            a for a in self.ctx.unit.actions if a.kind == SERVICE and "nova-compute" in a.services
        ]
        spec = self.ctx.spec
        version = spec.version_for(computes[0].strategy) if computes else spec.release
        check_version = bool(computes)
        if self.back:  # the version it went back to, if the hypervisor's went back
            befores = [
                e["before"]
                for i, e in self.ctx.actions.items()
                if "back" in e and self.ctx.unit.actions[int(i)] in computes
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
        steps.append(PlacementAudit(ctx))
    if ctx.unit.move_volumes:
        steps.append(MoveVolumes(ctx))
    steps += [Upgrade(ctx, i) for i in range(len(ctx.unit.actions))]
    if ctx.unit.reboot:
        steps.append(Reboot(ctx))
    steps.append(HealthGate(ctx))
    if host_ctx is not None:
        steps.append(compute_steps.BackInService(host_ctx))
    return steps


def backward(ctx: UnitContext, host_ctx: compute_steps.HostContext | None) -> list[Any]:
    steps: list[Any] = []
    if host_ctx is not None:
        forward_drain = compute_steps.FORWARD[1:]  # the record of the forward run stands
        steps += [step(host_ctx) for step in forward_drain]
    if ctx.unit.move_volumes:
        steps.append(MoveVolumes(ctx, back=True))
    steps += [Downgrade(ctx, i) for i in reversed(range(len(ctx.unit.actions)))]
    steps.append(HealthGate(ctx, back=True))
    if host_ctx is not None:  # ctx.record: the forward drain's (a unit it did not finish)
        steps.append(compute_steps.BackInService(host_ctx, also=(ctx.record,)))
    return steps
