"""The steps of one node's move, each a TaskFlow task with ``execute`` and ``revert``.

Every step first looks at where the node is and what state it is in, then does
only what is missing, so a step that crashed midway simply runs again. The
order keeps the node enrolled somewhere at every moment: it is enrolled in the
target (in maintenance) before it is deleted from the source.

``revert`` undoes a step when a later step of the same node failed; it does
nothing when the node stopped because the run was paused or aborted, a control
plane became unreachable, or the workload deferred the node: those leave the
node where it is, and the run resumes it later (see runner).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from taskflow import task
from taskflow.types.failure import Failure

from ephyra.clouds import ControlPlane, Node
from ephyra.errors import ControlPlaneUnreachable, Interrupted, NodeDeferred, StepFailed
from ephyra.forklift.context import MoveContext
from ephyra.forklift.model import NodeSnapshot

UNDEPLOYED = frozenset({"available", "manageable", "enroll"})
# A node stopped by one of these stays where it is; the run resumes it later.
LEAVE_AS_IS = (Interrupted, NodeDeferred, ControlPlaneUnreachable)


class Step(task.Task):  # type: ignore[misc]
    title: ClassVar[str]

    def __init__(self, ctx: MoveContext) -> None:
        super().__init__(name=self.title)
        self.ctx = ctx

    def execute(self) -> None:
        started = time.monotonic()
        self.ctx.on_step(self.ctx, self.title, "started", 0.0)
        try:
            self.apply()
        except Interrupted:
            raise
        except Exception:
            self.ctx.on_step(self.ctx, self.title, "failed", time.monotonic() - started)
            raise
        self.ctx.on_step(self.ctx, self.title, "done", time.monotonic() - started)

    def revert(self, result: Any, flow_failures: dict[str, Failure], **_: Any) -> None:
        if any(f.check(*LEAVE_AS_IS) for f in flow_failures.values()):
            return
        if isinstance(result, Failure) and not self.undo_own_failure:
            return
        self.ctx.on_step(self.ctx, self.title, "reverting", 0.0)
        self.undo()

    undo_own_failure: ClassVar[bool] = True

    def apply(self) -> None:
        raise NotImplementedError

    def undo(self) -> None:
        """Take this step back; by default nothing needs undoing."""

    # helpers ---------------------------------------------------------------
    def in_source(self) -> Node | None:
        return self.ctx.source.find_node(self.ctx.uuid)

    def in_target(self) -> Node | None:
        return self.ctx.target.find_node(self.ctx.uuid)

    def settled(self, where: str) -> Node | None:
        """The node in ``where`` once any provision-state change under way has ended
        (one this step started before a crash, or one a pause left running)."""
        return self._plane(where).settle(
            self.ctx.uuid, timeout=self.ctx.step_timeout, checkpoint=self.ctx.control.checkpoint
        )

    def must_be_in_target(self) -> Node:
        """The node in the target, once any provision-state change under way has ended."""
        node = self.settled("target")
        if node is None:
            raise StepFailed(
                f"node {self.ctx.record.label} is not enrolled in {self.ctx.target.name}"
            )
        return node

    def _plane(self, where: str) -> ControlPlane:
        return self.ctx.source if where == "source" else self.ctx.target

    def provision(self, where: str, target: str, want: str) -> None:
        """Ask ``where`` (source or target) for a provision-state change and wait for it."""
        self._plane(where).provision(
            self.ctx.uuid,
            target,
            want,
            timeout=self.ctx.step_timeout,
            checkpoint=self.ctx.control.checkpoint,
        )

    def make_manageable(self, where: str, node: Node | None = None) -> None:
        node = node or self.settled(where)
        if node is not None and node.provision_state == "enroll":
            self.provision(where, "manage", "manageable")

    def make_available(self, where: str, node: Node | None = None) -> None:
        node = node or self.settled(where)
        if node is not None and node.provision_state == "manageable":
            self.provision(where, "provide", "available")


class Record(Step):
    """Write the node down (fields, ports, instance, secrets masked) before touching it."""

    title = "record"
    undo_own_failure = False

    def apply(self) -> None:
        if self.ctx.record.snapshot is not None:
            return
        node = self.in_source()
        if node is None:
            raise StepFailed(f"node {self.ctx.uuid} is not in {self.ctx.source.name}")
        snap = NodeSnapshot.of(node, self.ctx.source.ports(self.ctx.uuid))
        self.ctx.record.save(name=snap.name, snapshot=snap.to_dict())


class Prepare(Step):
    """Tell the workload the node is leaving; it may defer the node."""

    title = "prepare"
    undo_own_failure = False

    def apply(self) -> None:
        self.ctx.workload.prepare(self.ctx.node_ref())

    def undo(self) -> None:
        self.ctx.workload.return_node(self.ctx.node_ref())


class MaintenanceOn(Step):
    title = "maintenance-on"

    def apply(self) -> None:
        node = self.in_source()
        if node is None or self.ctx.ours(node):
            return
        if node.is_maintenance:
            raise StepFailed(
                f"node {self.ctx.record.label} was put in maintenance by someone else: "
                f"{node.maintenance_reason!r}"
            )
        self.ctx.source.set_maintenance(self.ctx.uuid, self.ctx.reason)

    def undo(self) -> None:
        node = self.in_source()
        if node is not None and self.ctx.ours(node):
            self.ctx.source.unset_maintenance(self.ctx.uuid)


class Undeploy(Step):
    title = "undeploy"

    def apply(self) -> None:
        node = self.settled("source")
        if node is None or node.provision_state in UNDEPLOYED:
            return
        self.provision("source", "deleted", "available")

    def undo(self) -> None:
        snap = self.ctx.snapshot()
        node = self.settled("source")
        if snap.provision_state != "active" or node is None or node.provision_state == "active":
            return
        if node.is_maintenance:  # Ironic refuses to deploy a node in maintenance
            self.ctx.source.unset_maintenance(self.ctx.uuid)
        self.ctx.source.update_node(self.ctx.uuid, instance_info=snap.instance_info)
        self.provision("source", "active", "active")
        self.ctx.source.set_maintenance(self.ctx.uuid, self.ctx.reason)


def enroll(ctx: MoveContext, into: str) -> None:
    """Enroll the snapshot in ``into`` (target or source), in maintenance, with its ports."""
    plane, holder = (ctx.target, ctx.source) if into == "target" else (ctx.source, ctx.target)
    snap = ctx.snapshot()
    node = plane.find_node(ctx.uuid)
    if node is None:
        secrets = ctx.credentials.secrets(snap, holder)
        node = plane.create_node(snap.create_fields(secrets))
    # Patched after the create (Ironic may refuse them on create), so a crash can fall
    # between the two: compare, whether the node was created now or before.
    unpatched = {k: v for k, v in snap.patch_fields().items() if getattr(node, k) != v}
    if unpatched:
        node = plane.update_node(ctx.uuid, **unpatched)
    if not ctx.ours(node):
        plane.set_maintenance(ctx.uuid, ctx.reason)
    have = {p.address.lower() for p in plane.ports(ctx.uuid)}
    for port in snap.ports:
        if port.address not in have:
            plane.create_port(port.create_fields(ctx.uuid))


class EnrollTarget(Step):
    title = "enroll-target"

    def apply(self) -> None:
        enroll(self.ctx, "target")

    def undo(self) -> None:
        node = self.settled("target")
        if node is None:
            return
        if self.in_source() is None:
            raise StepFailed(
                f"will not delete node {self.ctx.record.label} from {self.ctx.target.name}: "
                f"it is not enrolled in {self.ctx.source.name}"
            )
        if node.provision_state not in UNDEPLOYED:
            self.provision("target", "deleted", "available")
        self.ctx.target.delete_node(self.ctx.uuid)


class DeleteSource(Step):
    title = "delete-source"

    def apply(self) -> None:
        node = self.in_source()
        if node is None:
            return
        self.must_be_in_target()
        have = {p.address.lower() for p in self.ctx.target.ports(self.ctx.uuid)}
        lacking = [p.address for p in self.ctx.snapshot().ports if p.address not in have]
        if lacking:
            raise StepFailed(f"node {self.ctx.record.label}: ports {lacking} missing in target")
        if node.provision_state not in UNDEPLOYED:
            raise StepFailed(f"node {self.ctx.record.label} is {node.provision_state} in source")
        self.ctx.source.delete_node(self.ctx.uuid)

    def undo(self) -> None:
        if self.in_source() is None:
            enroll(self.ctx, "source")
        self.make_manageable("source")
        if self.ctx.snapshot().provision_state in ("available", "active"):
            self.make_available("source")


class Manage(Step):
    title = "manage"

    def apply(self) -> None:
        self.make_manageable("target", self.must_be_in_target())


class Provide(Step):
    title = "provide"

    def apply(self) -> None:
        if self.ctx.snapshot().provision_state in ("available", "active"):
            self.make_available("target", self.must_be_in_target())


class MaintenanceOff(Step):
    title = "maintenance-off"

    def apply(self) -> None:
        node = self.must_be_in_target()
        if self.ctx.ours(node):
            self.ctx.target.unset_maintenance(self.ctx.uuid)

    def undo(self) -> None:
        node = self.in_target()
        if node is not None and not node.is_maintenance:
            self.ctx.target.set_maintenance(self.ctx.uuid, self.ctx.reason)


class Deploy(Step):
    title = "deploy"

    def apply(self) -> None:
        snap = self.ctx.snapshot()
        if snap.provision_state != "active":
            return
        if self.must_be_in_target().provision_state == "active":
            return
        self.ctx.target.update_node(self.ctx.uuid, instance_info=snap.instance_info)
        self.provision("target", "active", "active")

    def undo(self) -> None:
        node = self.settled("target")
        if node is not None and node.provision_state in ("active", "deploy failed"):
            self.provision("target", "deleted", "available")


class Return(Step):
    """Hand the node back to the workload and wait until it reports the node healthy."""

    title = "return"

    def apply(self) -> None:
        ref = self.ctx.node_ref()
        self.ctx.workload.return_node(ref)
        deadline = time.monotonic() + self.ctx.health_timeout
        while not (health := self.ctx.workload.node_health(ref)).ok:
            if time.monotonic() > deadline:
                raise StepFailed(f"node {ref.label} unhealthy after return: {health.detail}")
            self.ctx.control.sleep(1.0)

    def undo(self) -> None:
        self.ctx.workload.prepare(self.ctx.node_ref())


STEPS: tuple[type[Step], ...] = (
    Record,
    Prepare,
    MaintenanceOn,
    Undeploy,
    EnrollTarget,
    DeleteSource,
    Manage,
    Provide,
    MaintenanceOff,
    Deploy,
    Return,
)
