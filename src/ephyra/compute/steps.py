"""The steps of one compute host's evacuation, and of its rollback, as TaskFlow tasks.

Forward: record -> maintenance-on -> drain -> verify-empty. Rollback: restart what the
run stopped -> maintenance-off. The hosts drained together are all recorded and disabled
before any of them drains (:func:`disable_first`). Every step checks the world first, so a
step killed half-way runs again safely. A failure reverts the host: its service is enabled again
if this run disabled it, and its servers stay where they are, which is safe wherever
that is. A pause, a stop, an unreachable cloud or a halted drain revert nothing: the
host stays in maintenance, for resume or rollback to carry on from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from taskflow import task
from taskflow.types.failure import Failure

from ephyra.compute.drain import LEFT_BY_POLICY, DrainResult, HostRecord
from ephyra.compute.maintenance import run_prefix, switch_off, switch_on
from ephyra.compute.nova import ComputeCloud
from ephyra.engine.control import Control
from ephyra.errors import ControlPlaneUnreachable, DrainHalted, Interrupted, StepFailed

KIND = "evacuate"


LEAVE_AS_IS = (Interrupted, ControlPlaneUnreachable, DrainHalted)


@dataclass
class HostContext:
    run_id: str
    cloud: ComputeCloud
    host: str
    record: HostRecord
    control: Control
    drain: Callable[[], DrainResult]
    on_step: Callable[[str, str, str, float], None] = field(default=lambda *a: None)
    message: Callable[[str], None] = field(default=lambda text: None)
    kind: str = KIND  # the kind of run the maintenance reason names
    revert: bool = True  # False: a failure leaves the host as it is (in maintenance)

    @property
    def prefix(self) -> str:
        return run_prefix(self.kind, self.run_id)

    @property
    def reason(self) -> str:
        return f"{self.prefix}: draining {self.host}"


class Step(task.Task):  # type: ignore[misc]
    title: ClassVar[str]

    def __init__(self, ctx: HostContext) -> None:
        super().__init__(name=self.title)
        self.ctx = ctx

    def execute(self) -> None:
        started = time.monotonic()
        self.ctx.on_step(self.ctx.host, self.title, "started", 0.0)
        try:
            self.apply()
        except Interrupted:
            raise
        except Exception:
            self.ctx.on_step(self.ctx.host, self.title, "failed", time.monotonic() - started)
            raise
        self.ctx.on_step(self.ctx.host, self.title, "done", time.monotonic() - started)

    def revert(self, result: Any, flow_failures: dict[str, Failure], **_: Any) -> None:
        if not self.ctx.revert or any(f.check(*LEAVE_AS_IS) for f in flow_failures.values()):
            return
        self.ctx.on_step(self.ctx.host, self.title, "reverting", 0.0)
        self.undo()

    def apply(self) -> None:
        raise NotImplementedError

    def undo(self) -> None:
        """Take this step back; by default nothing needs undoing."""


class Record(Step):
    """Write down the service as it was, once: rollback restores no more than this."""

    title = "record"

    def apply(self) -> None:
        if "service" in self.ctx.record.data:
            return
        svc = self.ctx.cloud.service(self.ctx.host)
        self.ctx.record.save(
            service={
                "enabled": svc.enabled,
                "reason": svc.reason,
                "up": svc.up,
                "forced_down": svc.forced_down,
            }
        )


class MaintenanceOn(Step):
    """Disable nova-compute so that nothing new lands on the host."""

    title = "maintenance-on"

    def apply(self) -> None:
        svc = self.ctx.cloud.service(self.ctx.host)
        text = switch_on(self.ctx.cloud, svc, self.ctx.reason)
        if not svc.enabled and not svc.reason.startswith(self.ctx.prefix):
            self.ctx.message(text)  # someone else's: left as it is, never enabled by us

    def undo(self) -> None:
        maintenance_off_ours(self.ctx)


class DrainHost(Step):
    """Move every server off the host within the run's budget."""

    title = "drain"

    def apply(self) -> None:
        result = self.ctx.drain()
        self.ctx.record.save(drain_seconds=round(result.seconds, 3), left=result.left)
        if result.stuck:
            listing = "; ".join(f"{label}: {why}" for label, why in sorted(result.left.items()))
            raise DrainHalted(f"{self.ctx.host}: {len(result.left)} server(s) left: {listing}")


class VerifyEmpty(Step):
    """Nothing is left on the host but what the policy chose to leave."""

    title = "verify-empty"

    def apply(self) -> None:
        allowed = {
            sid
            for sid, entry in self.ctx.record.servers.items()
            if entry.get("outcome") in LEFT_BY_POLICY
        }
        extra = [s for s in self.ctx.cloud.servers_on(self.ctx.host) if s.id not in allowed]
        if extra:
            names = ", ".join(s.label for s in extra)
            raise StepFailed(f"{self.ctx.host} is not empty after its drain: {names}")


class RestartStopped(Step):
    """Start again the servers this run stopped in place (their fate stop, or the
    fallback stop)."""

    title = "restart-stopped"

    def apply(self) -> None:
        restart_stopped(self.ctx, self.ctx.record)


def restart_stopped(ctx: HostContext, record: HostRecord) -> None:
    """Start the servers ``record`` says the run stopped, once each."""
    for sid, entry in record.servers.items():
        if not entry.get("stopped_by_run"):
            continue
        server = ctx.cloud.server(sid)
        if server is not None and server.status == "SHUTOFF" and not server.busy:
            ctx.cloud.start(sid)
            ctx.message(f"{server.label}: started again")
        record.update(sid, stopped_by_run=False)


class MaintenanceOff(Step):
    """Enable nova-compute again, if this run disabled it."""

    title = "maintenance-off"

    def apply(self) -> None:
        maintenance_off_ours(self.ctx)


class BackInService(MaintenanceOff):
    """The host back after its maintenance: nova-compute enabled again if this run
    disabled it, then the servers its drain stopped started again (``also``: more records
    of the run's that may name some, e.g. a rollback's of the forward drain's)."""

    def __init__(self, ctx: HostContext, also: tuple[HostRecord, ...] = ()) -> None:
        super().__init__(ctx)
        self.also = also

    def apply(self) -> None:
        maintenance_off_ours(self.ctx)
        for record in (self.ctx.record, *self.also):
            restart_stopped(self.ctx, record)


def maintenance_off_ours(ctx: HostContext) -> None:
    svc = ctx.cloud.service(ctx.host)
    if svc.enabled or svc.reason.startswith(ctx.prefix):
        ctx.message(switch_off(ctx.cloud, svc, ctx.prefix))
    else:
        ctx.message(
            f"{ctx.host}: nova-compute disabled by someone else "
            f"({svc.reason or 'no reason given'}): left disabled"
        )


def disable_first(contexts: Iterable[HostContext], record: bool = True) -> None:
    """Every host of a batch in maintenance before any of them drains, so that no server
    moved off one lands on another about to be drained: each host's service written down
    as it was (``record``), then disabled. Each host's own flow then finds this done. A
    host alone is left to its flow, which disables it before it drains."""
    contexts = list(contexts)
    if len(contexts) < 2:
        return
    for ctx in contexts:
        if record:
            Record(ctx).apply()
        MaintenanceOn(ctx).apply()


FORWARD: tuple[type[Step], ...] = (Record, MaintenanceOn, DrainHost, VerifyEmpty)
ROLLBACK: tuple[type[Step], ...] = (RestartStopped, MaintenanceOff)
