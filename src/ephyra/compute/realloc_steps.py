"""The steps of one compute host's reallocation from cloud A (``--from``) to cloud B
(``--to``), and of its way back, as TaskFlow tasks.

Forward: record -> maintenance-on -> drain -> verify-empty (A, as an evacuation) ->
release (the hand-over stops nova-compute; A's service forced down) -> remove (A's compute
service deleted, its resource provider gone; refused while Placement holds allocations on
it) -> adopt (the hand-over points nova-compute at B) -> register (B lists the service up;
disabled at once with this run's reason) -> map-cell (B's cells map the host) -> check (B's
resource provider with its inventory; A's custom traits and aggregates given again) ->
enable.

Rollback, from wherever the host is: maintenance-on-b -> drain-b -> verify-empty-b ->
release-b -> remove-b (each only where B has the host) -> adopt-a -> register-a ->
map-cell-a -> check-a (each only when the host was released from A) -> maintenance-off
(A's service as it was before the run: enabled only if it was, and only by this run).

Every step reads the world first, so one killed half-way runs again safely; the hand-over's
commands are idempotent by contract. A failure reverts nothing: the host stays where it is,
for a resume or a rollback to carry on from. The host is never enabled in two clouds: B's
service is disabled as soon as it registers, and A's is deleted before B's exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar

from ephyra.compute.drain import DrainResult
from ephyra.compute.maintenance import PREFIX, switch_on
from ephyra.compute.nova import ComputeCloud, Service
from ephyra.compute.steps import DrainHost, HostContext, MaintenanceOn, Step, maintenance_off_ours
from ephyra.errors import DrainHalted, StepFailed
from ephyra.strategies.handover import Handover

#: Seconds between two looks at a cloud while waiting for a host to register.
POLL_S = 1.0
#: Seconds allocations left on a host's provider may take to go after its moves ended.
SETTLE_S = 30.0
#: Resources every compute node's provider must have an inventory of.
RESOURCES = ("VCPU", "MEMORY_MB", "DISK_GB")


@dataclass
class ReallocContext(HostContext):
    target: ComputeCloud | None = None  # B
    handover: Handover | None = None
    register_timeout: float = 600.0
    drain_back: Callable[[], DrainResult] | None = None
    output: Callable[[str], None] = field(default=lambda line: None)

    @property
    def b(self) -> ComputeCloud:
        assert self.target is not None
        return self.target

    @property
    def moves(self) -> Handover:
        assert self.handover is not None
        return self.handover

    def side(self, back: bool) -> tuple[ComputeCloud, ComputeCloud]:
        """(the cloud the host leaves, the cloud it joins) in a direction."""
        return (self.b, self.cloud) if back else (self.cloud, self.b)


class ReallocStep(Step):
    ctx: ReallocContext

    def __init__(self, ctx: ReallocContext) -> None:
        super().__init__(ctx)

    def provider(self, cloud: ComputeCloud) -> str:
        """The host's resource provider in ``cloud`` as last seen ('' if never)."""
        return str((self.ctx.record.data.get("providers") or {}).get(cloud.name) or "")

    def saw_provider(self, cloud: ComputeCloud, uuid: str) -> None:
        providers = dict(self.ctx.record.data.get("providers") or {})
        if providers.get(cloud.name) != uuid:
            self.ctx.record.save(providers={**providers, cloud.name: uuid})


class Record(ReallocStep):
    """Write down, once, A's service, the host's resource provider, its traits and its
    aggregates: rollback restores no more than this, and B gets the custom ones."""

    title = "record"

    def apply(self) -> None:
        if "service" in self.ctx.record.data:
            return
        cloud, host = self.ctx.cloud, self.ctx.host
        svc = cloud.service(host)
        provider = cloud.hypervisors().get(host, "")
        traits = cloud.traits(provider)[0] if provider else []
        self.ctx.record.save(
            service={"enabled": svc.enabled, "reason": svc.reason},
            providers={cloud.name: provider} if provider else {},
            traits=traits,
            aggregates=sorted(a["name"] for a in cloud.aggregates() if host in a["hosts"]),
        )


class VerifyEmpty(ReallocStep):
    """Nothing at all is left on the host: a host handed over takes no server with it."""

    title = "verify-empty"
    back: ClassVar[bool] = False

    def apply(self) -> None:
        leaving = self.ctx.side(self.back)[0]
        if leaving.find_service(self.ctx.host) is None:
            return  # removed already
        left = leaving.servers_on(self.ctx.host)
        if left:
            names = ", ".join(s.label for s in left)
            raise StepFailed(f"{self.ctx.host} is not empty in {leaving.name}: {names}")


class Release(ReallocStep):
    """The hand-over stops nova-compute on the host; the service is then forced down."""

    title = "release"
    back: ClassVar[bool] = False

    def apply(self) -> None:
        leaving = self.ctx.side(self.back)[0]
        svc = leaving.find_service(self.ctx.host)
        if svc is None and not self.back:
            return  # removed: released before that
        self.ctx.moves.release(self.ctx.host, leaving.name, self.ctx.output)
        self.ctx.record.save(**{self.flag: True})
        if svc is not None and not svc.forced_down:
            leaving.force_down(svc)

    @property
    def flag(self) -> str:
        return "released_b" if self.back else "released"


class Remove(ReallocStep):
    """Delete the host's compute service from the cloud it leaves, and with it its compute
    node and resource provider; never while Placement holds allocations on it."""

    title = "remove"
    back: ClassVar[bool] = False

    def apply(self) -> None:
        leaving = self.ctx.side(self.back)[0]
        host = self.ctx.host
        svc = leaving.find_service(host)
        provider = self.provider(leaving) or next(
            (str(p["uuid"]) for p in leaving.providers_named(host)), ""
        )
        if provider:
            held = self._settled(leaving, provider)
            if held:
                raise StepFailed(
                    f"{host}: {leaving.name}'s Placement still holds allocations on its "
                    f"resource provider {provider} (consumers {', '.join(held)}); heal them "
                    "(nova-manage placement audit) and resume"
                )
        if svc is not None:
            if not svc.forced_down:
                raise StepFailed(f"{host}: nova-compute in {leaving.name} is not forced down")
            leaving.delete_service(svc)
            self.ctx.message(f"{host}: nova-compute removed from {leaving.name}")
        if provider and leaving.provider(provider) is not None:
            leaving.delete_provider(provider)  # a Nova that left it behind
        if leaving.find_service(host) is not None:
            raise StepFailed(f"{host}: its nova-compute came back in {leaving.name}")

    def _settled(self, cloud: ComputeCloud, provider: str) -> list[str]:
        """The consumers still holding allocations on ``provider`` once Nova has had
        :data:`SETTLE_S` seconds to let go of those of the moves just ended (a server is
        ACTIVE on its new host a moment before its source's allocation is freed)."""
        waited = 0.0
        while True:
            held = cloud.consumers_on(provider)
            if not held or waited >= SETTLE_S:
                return held
            self.ctx.control.sleep(POLL_S)
            waited += POLL_S


class Adopt(ReallocStep):
    """The hand-over points the host's nova-compute at the cloud it joins and starts it."""

    title = "adopt"
    back: ClassVar[bool] = False

    def apply(self) -> None:
        if self.back and not self.ctx.record.data.get("released"):
            return  # never left A
        joining = self.ctx.side(self.back)[1]
        self.ctx.moves.adopt(self.ctx.host, joining.name, self.ctx.output)


class Register(ReallocStep):
    """Wait until the cloud it joins lists the host's nova-compute up with its hypervisor;
    disable the service at once with this run's reason (enabled only once checked)."""

    title = "register"
    back: ClassVar[bool] = False

    def apply(self) -> None:
        if self.back and not self.ctx.record.data.get("released"):
            return
        joining = self.ctx.side(self.back)[1]
        host = self.ctx.host
        svc, provider = self._wait(joining, host)
        self.saw_provider(joining, provider)
        if svc.enabled or not svc.reason.startswith(self.ctx.prefix):
            switch_on_ours(self.ctx, joining, svc)
        self.ctx.message(f"{host}: nova-compute registered in {joining.name}")

    def _wait(self, cloud: ComputeCloud, host: str) -> tuple[Service, str]:
        """The host's service, up, and its resource provider (by name: the hypervisor
        listing shows a host only once a cell maps it)."""
        ours = self.ctx.record.data.get("released" if self.back else "released_b")
        deadline = time.monotonic() + self.ctx.register_timeout
        while True:
            svc = cloud.find_service(host)
            if svc is not None and svc.forced_down and ours:
                cloud.force_down(svc, down=False)  # this run's release forced it down
                svc = replace(svc, forced_down=False)
            found = cloud.providers_named(host) if svc is not None and svc.up else []
            if svc is not None and len(found) == 1:
                return svc, str(found[0]["uuid"])
            if time.monotonic() >= deadline:
                raise StepFailed(
                    f"{host}: nova-compute not registered and up in {cloud.name} after "
                    f"{self.ctx.register_timeout:g}s (see the hand-over's adopt and the "
                    "host's nova-compute log)"
                )
            self.ctx.control.sleep(POLL_S)  # a pause or abort is seen here


def switch_on_ours(ctx: ReallocContext, cloud: ComputeCloud, svc: Service) -> None:
    """Disable ``svc`` with this run's reason, whatever it had (a new registration)."""
    if svc.enabled:
        switch_on(cloud, svc, ctx.reason)
    else:
        cloud.disable(svc, ctx.reason)


class MapCell(ReallocStep):
    """The hand-over maps the host into the cells of the cloud it joins."""

    title = "map-cell"
    back: ClassVar[bool] = False

    def apply(self) -> None:
        if self.back and not self.ctx.record.data.get("released"):
            return
        joining = self.ctx.side(self.back)[1]
        if not self.ctx.moves.discover(self.ctx.host, joining.name, self.ctx.output):
            self.ctx.message(
                f"{self.ctx.host}: no discover command; {joining.name}'s scheduler maps it"
            )


class Check(ReallocStep):
    """The host's resource provider in the cloud it joins has an inventory; the custom
    traits and the aggregates (by name) it had in A are given to it there."""

    title = "check"
    back: ClassVar[bool] = False

    def apply(self) -> None:
        if self.back and not self.ctx.record.data.get("released"):
            return
        joining = self.ctx.side(self.back)[1]
        host, data = self.ctx.host, self.ctx.record.data
        provider = joining.hypervisors().get(host)
        if not provider:
            raise StepFailed(
                f"{host}: {joining.name} lists no hypervisor for it: no cell of "
                f"{joining.name} maps it (see the hand-over's discover)"
            )
        if joining.provider(provider) is None:
            raise StepFailed(f"{host}: no resource provider in {joining.name}'s Placement")
        inventory = joining.inventories(provider)
        missing = [r for r in RESOURCES if not (inventory.get(r) or {}).get("total")]
        if missing:
            raise StepFailed(
                f"{host}: its resource provider in {joining.name} has no {', '.join(missing)}"
            )
        traits = list(data.get("traits") or [])
        added = joining.add_traits(provider, [t for t in traits if t.startswith("CUSTOM_")])
        if added:
            self.ctx.message(f"{host}: traits {', '.join(added)} set in {joining.name}")
        have = set(joining.traits(provider)[0])
        differ = sorted(t for t in traits if not t.startswith("CUSTOM_") and t not in have)
        if differ:
            self.ctx.message(f"{host}: reports no {', '.join(differ)} in {joining.name}")
        self._aggregates(joining, list(data.get("aggregates") or []))

    def _aggregates(self, cloud: ComputeCloud, names: list[str]) -> None:
        host = self.ctx.host
        found = {a["name"]: a for a in cloud.aggregates()}
        for name in names:
            aggregate = found.get(name)
            if aggregate is None:
                self.ctx.message(f"{host}: {cloud.name} has no aggregate {name}: not joined")
            elif host not in aggregate["hosts"]:
                cloud.add_to_aggregate(aggregate["id"], host)
                self.ctx.message(f"{host}: added to aggregate {name} in {cloud.name}")


class Enable(ReallocStep):
    """Enable the host's nova-compute in B, which this run disabled; a host someone else
    had disabled in A stays disabled in B, with that reason."""

    title = "enable"

    def apply(self) -> None:
        restore_service(self.ctx, self.ctx.b)


def restore_service(ctx: ReallocContext, cloud: ComputeCloud) -> None:
    """The host's service in ``cloud`` as A's was before the run: enabled if it was (and
    only if this run disabled it), else disabled with the reason it had."""
    before = ctx.record.data.get("service") or {}
    svc = cloud.service(ctx.host)
    if before.get("enabled", True):
        ctx.message(_enabled(ctx, cloud, svc))
    elif svc.enabled or svc.reason.startswith(ctx.prefix):
        reason = str(before.get("reason") or "") or f"{PREFIX}kept disabled as it was"
        cloud.disable(svc, reason)
        ctx.message(f"{ctx.host}: left disabled in {cloud.name}, as it was ({reason})")


def _enabled(ctx: ReallocContext, cloud: ComputeCloud, svc: Service) -> str:
    if svc.enabled:
        return f"{ctx.host}: nova-compute already enabled in {cloud.name}"
    if not svc.reason.startswith(ctx.prefix):
        return (
            f"{ctx.host}: nova-compute disabled in {cloud.name} by someone else "
            f"({svc.reason or 'no reason given'}): left disabled"
        )
    cloud.enable(svc)
    return f"{ctx.host}: nova-compute enabled in {cloud.name}"


# -- the way back ---------------------------------------------------------------------


class MaintenanceOnB(ReallocStep):
    title = "maintenance-on-b"

    def apply(self) -> None:
        svc = self.ctx.b.find_service(self.ctx.host)
        if svc is not None and svc.enabled:
            self.ctx.message(switch_on(self.ctx.b, svc, self.ctx.reason))


class DrainB(ReallocStep):
    """Move off the servers B placed on the host since it joined, within the budget."""

    title = "drain-b"

    def apply(self) -> None:
        if self.ctx.b.find_service(self.ctx.host) is None:
            return
        assert self.ctx.drain_back is not None
        result = self.ctx.drain_back()
        if result.stuck:
            listing = "; ".join(f"{label}: {why}" for label, why in sorted(result.left.items()))
            raise DrainHalted(f"{self.ctx.host}: {len(result.left)} server(s) left: {listing}")


class VerifyEmptyB(VerifyEmpty):
    title = "verify-empty-b"
    back = True


class ReleaseB(Release):
    title = "release-b"
    back = True

    def apply(self) -> None:
        if self.ctx.b.find_service(self.ctx.host) is None and not self.ctx.record.data.get(
            "adopted"
        ):
            return  # never joined B
        super().apply()


class RemoveB(Remove):
    title = "remove-b"
    back = True


class AdoptA(Adopt):
    title = "adopt-a"
    back = True


class RegisterA(Register):
    title = "register-a"
    back = True


class MapCellA(MapCell):
    title = "map-cell-a"
    back = True


class CheckA(Check):
    title = "check-a"
    back = True


class MaintenanceOff(ReallocStep):
    """A's service as it was before the run (never enabled unless this run disabled it)."""

    title = "maintenance-off"

    def apply(self) -> None:
        if self.ctx.record.data.get("released"):
            restore_service(self.ctx, self.ctx.cloud)
        else:
            maintenance_off_ours(self.ctx)


class MarkAdopted(Adopt):
    """(forward) ``adopt``, remembering that B may have the host from now on."""

    def apply(self) -> None:
        self.ctx.record.save(adopted=True)
        super().apply()


FORWARD: tuple[type[Step], ...] = (
    Record,
    MaintenanceOn,
    DrainHost,
    VerifyEmpty,
    Release,
    Remove,
    MarkAdopted,
    Register,
    MapCell,
    Check,
    Enable,
)
ROLLBACK: tuple[type[Step], ...] = (
    MaintenanceOnB,
    DrainB,
    VerifyEmptyB,
    ReleaseB,
    RemoveB,
    AdoptA,
    RegisterA,
    MapCellA,
    CheckA,
    MaintenanceOff,
)
