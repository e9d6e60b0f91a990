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

import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

from taskflow import task
from taskflow.types.failure import Failure

from ephyra.clouds import ControlPlane, Node
from ephyra.errors import (
    ControlPlaneUnreachable,
    Interrupted,
    NodeDeferred,
    ServerInError,
    StepFailed,
)
from ephyra.forklift.context import MoveContext
from ephyra.forklift.model import ATTACHED, MASK, Attached, NodeSnapshot
from ephyra.forklift.secrets import deployable
from ephyra.forklift.servers import Servers

LOG = logging.getLogger(__name__)

UNDEPLOYED = frozenset({"available", "manageable", "enroll"})
#: How often a step looks at a server it waits for (s).
SERVER_POLL_S = 0.5
#: How often a server's delete is asked for when Nova ends it in ERROR.
DELETE_TRIES = 3
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
        source, uuid = self.ctx.source, self.ctx.uuid
        attached = [Attached.of(k, i) for k in ATTACHED for i in source.attached(k, uuid)]
        snap = NodeSnapshot.of(node, source.ports(uuid), attached, source.bios_settings(uuid))
        server = None
        servers = self.ctx.source_servers
        instance = getattr(node, "instance_id", None)
        if servers is not None and instance:
            found = servers.get(str(instance))
            server = servers.record(found).to_dict() if found is not None else None
        self.ctx.record.save(
            name=snap.name,
            snapshot=snap.to_dict(),
            server=server,
            server_cloud=self.ctx.source.name if server else None,
        )


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


class DeleteServer(Step):
    """Where Nova owns the node: the server it carries in the source deleted (the one it
    carried before the move, or the one this run booted there), and the node torn down."""

    title = "delete-server"

    def apply(self) -> None:
        servers = self.ctx.source_servers
        if servers is None or self.ctx.server is None:
            return
        unboot(self.ctx, servers, "source")

    def undo(self) -> None:
        servers = self.ctx.source_servers
        if servers is None or self.ctx.server is None:
            return
        node = self.settled("source")
        held = node is not None and self.ctx.ours(node)
        if held:  # Nova offers no node in maintenance
            self.ctx.source.unset_maintenance(self.ctx.uuid)
        boot(self.ctx, servers)
        attach(self.ctx, self.ctx.source)  # Nova deleted its volume targets with the server
        if held:
            self.ctx.source.set_maintenance(self.ctx.uuid, self.ctx.reason)


class Undeploy(Step):
    title = "undeploy"

    def apply(self) -> None:
        node = self.settled("source")
        if node is None or node.provision_state in UNDEPLOYED:
            return
        self.provision("source", "deleted", "available")

    def undo(self) -> None:
        if self.ctx.server is not None:  # its server comes back by delete-server's undo
            return
        snap = self.ctx.snapshot()
        node = self.settled("source")
        if snap.provision_state != "active" or node is None or node.provision_state == "active":
            return
        if node.is_maintenance:  # Ironic refuses to deploy a node in maintenance
            self.ctx.source.unset_maintenance(self.ctx.uuid)
        self.ctx.source.update_node(
            self.ctx.uuid, instance_info=deployable(snap, self.ctx.credentials)
        )
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
    if snap.traits and tuple(sorted(node.traits or ())) != snap.traits:
        plane.set_traits(ctx.uuid, list(snap.traits))
    if snap.raid and (node.target_raid_config or {}) != snap.raid:
        plane.set_raid_config(ctx.uuid, snap.raid)
    if not ctx.ours(node):
        plane.set_maintenance(ctx.uuid, ctx.reason)
    attach(ctx, plane)
    have = {p.address.lower() for p in plane.ports(ctx.uuid)}
    for port in snap.ports:
        if port.address not in have:
            plane.create_port(port.create_fields(ctx.uuid))


def attach(ctx: MoveContext, plane: ControlPlane) -> None:
    """The port groups, volume connectors and volume targets the node had, made again
    in ``plane`` where they are missing (port groups first: ports name them)."""
    for item in missing_attached(ctx, plane):
        plane.create_attached(item.kind, item.create_fields(ctx.uuid))


def missing_attached(ctx: MoveContext, plane: ControlPlane) -> list[Attached]:
    """What the node had attached and ``plane`` has not, in the order of ATTACHED."""
    snap = ctx.snapshot()
    lacking: list[Attached] = []
    for kind in ATTACHED:
        wanted = [item for item in snap.attached if item.kind == kind]
        if wanted:
            there = {str(item.id) for item in plane.attached(kind, ctx.uuid)}
            lacking += [item for item in wanted if item.uuid not in there]
    return lacking


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
        snap = self.ctx.snapshot()
        have = {p.address.lower() for p in self.ctx.target.ports(self.ctx.uuid)}
        lacking = [p.address for p in snap.ports if p.address not in have]
        lacking += [a.uuid for a in missing_attached(self.ctx, self.ctx.target)]
        if lacking:
            raise StepFailed(
                f"node {self.ctx.record.label}: ports or attachments {lacking} missing in target"
            )
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
    """The node made manageable in the target, and the BIOS settings it had applied there
    where they differ (a driver that reads them from the machine when the node is managed
    shows them equal already) by manual cleaning: Ironic cleans no node in maintenance,
    so it is lifted meanwhile."""

    title = "manage"

    def apply(self) -> None:
        self.make_manageable("target", self.must_be_in_target())
        wanted = {k: v for k, v in self.ctx.snapshot().bios.items() if v != MASK}
        if not wanted:
            return
        node = self.must_be_in_target()  # a cleaning a crash cut short has ended
        have = self.ctx.target.bios_settings(self.ctx.uuid)
        differ = {k: v for k, v in wanted.items() if have.get(k) != v}
        if differ and node.provision_state == "manageable":
            if node.is_maintenance:
                self.ctx.target.unset_maintenance(self.ctx.uuid)
            self.ctx.target.apply_bios(
                self.ctx.uuid,
                differ,
                timeout=self.ctx.step_timeout,
                checkpoint=self.ctx.control.checkpoint,
            )
        if not self.must_be_in_target().is_maintenance:  # lifted here, before a crash perhaps
            self.ctx.target.set_maintenance(self.ctx.uuid, self.ctx.reason)


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
        servers = self.ctx.target_servers
        if self.ctx.server is not None and servers is not None:
            offered(self.ctx, servers)  # deployed by its server's boot, once Nova offers it
            return
        if snap.provision_state != "active":
            return
        if self.must_be_in_target().provision_state == "active":
            return
        self.ctx.target.update_node(
            self.ctx.uuid, instance_info=deployable(snap, self.ctx.credentials)
        )
        self.provision("target", "active", "active")

    def undo(self) -> None:
        node = self.settled("target")
        if node is not None and node.provision_state in ("active", "deploy failed"):
            self.provision("target", "deleted", "available")


class BootServer(Step):
    """Where Nova owns the node: once the target's Nova offers it, the server it carried
    booted on it again (same name, flavor, image, key pair, metadata, group, networks),
    in the server's project; taken back, that server deleted and the node torn down."""

    title = "boot-server"

    def apply(self) -> None:
        servers = self.ctx.target_servers
        if servers is not None and self.ctx.server is not None:
            boot(self.ctx, servers)

    def undo(self) -> None:
        servers = self.ctx.target_servers
        if servers is not None and self.ctx.server is not None:
            unboot(self.ctx, servers, "target")


def _until(ctx: MoveContext, done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + ctx.step_timeout
    while not done():
        if time.monotonic() > deadline:
            raise StepFailed(f"node {ctx.record.label}: {what} not within {ctx.step_timeout:.0f}s")
        ctx.control.sleep(SERVER_POLL_S)


def offered(ctx: MoveContext, servers: Servers) -> None:
    """Until ``servers``' Nova offers the node (its power state known first: Nova holds
    back a node whose power state Ironic does not know)."""
    plane = ctx.target if servers is ctx.target_servers else ctx.source
    plane.power_off_if_unknown(
        ctx.uuid, timeout=ctx.step_timeout, checkpoint=ctx.control.checkpoint
    )
    resource_class = str(ctx.snapshot().fields.get("resource_class") or "")
    _until(
        ctx,
        lambda: servers.offers(ctx.uuid, resource_class),
        f"{servers.cloud}'s Nova offering the node",
    )


def boot(ctx: MoveContext, servers: Servers) -> None:
    """The recorded server booted on the node in ``servers``' cloud (once: a server this
    run booted there, or one of the record's name and project found on the node after a
    crash cut its record short, is waited for instead)."""
    record = ctx.server
    assert record is not None
    server_id = ctx.booted(servers.cloud)
    if server_id is None or servers.status(server_id) is None:
        server_id = _found_booted(ctx, servers)
    if server_id is None:
        offered(ctx, servers)
        host = servers.node_host(ctx.uuid)
        ids = servers.ids_for(record)
        body = record.boot_body(str(host), ctx.uuid, ids.flavor, ids.image, ids.networks, ids.group)
        in_project = servers.in_project(record.project_id)
        server_id = in_project.boot(body, f"boot server {record.name} on {ctx.record.label}")
        ctx.save_booted(servers.cloud, server_id)
    _until(ctx, lambda: servers.status(str(server_id)) == "ACTIVE", f"server {record.name} active")


def _found_booted(ctx: MoveContext, servers: Servers) -> str | None:
    """A server of the record's name and project on the node (booted before a crash)."""
    record = ctx.server
    assert record is not None
    found = servers.on_nodes([ctx.uuid]).get(ctx.uuid)
    if found is None:
        return None
    if (found.get("name"), found.get("tenant_id")) != (record.name, record.project_id):
        raise StepFailed(
            f"node {ctx.record.label} carries server {found.get('name')} ({found.get('id')}) "
            f"in {servers.cloud}, not the one this run boots"
        )
    ctx.save_booted(servers.cloud, str(found["id"]))
    return str(found["id"])


def unboot(ctx: MoveContext, servers: Servers, where: str) -> None:
    """The server on the node in ``servers``' cloud deleted, if it is one this run may
    delete (StepFailed for any other), and the node torn down there."""
    found = servers.on_nodes([ctx.uuid]).get(ctx.uuid)
    if found is not None:
        server_id = str(found["id"])
        if server_id not in ctx.servers_ours(servers.cloud):
            raise StepFailed(
                f"node {ctx.record.label} carries server {found.get('name')} ({server_id}) "
                f"in {servers.cloud}, which this run did not boot nor record"
            )
        _delete(ctx, servers, server_id)
    plane = ctx.source if where == "source" else ctx.target
    node = plane.settle(ctx.uuid, timeout=ctx.step_timeout, checkpoint=ctx.control.checkpoint)
    if node is not None and node.provision_state not in UNDEPLOYED:
        raise StepFailed(
            f"node {ctx.record.label} is {node.provision_state} in {plane.name} "
            "after its server was deleted"
        )


def _delete(ctx: MoveContext, servers: Servers, server_id: str) -> None:
    """``server_id`` deleted, and gone. A delete that Nova ends in ERROR (its driver failed
    to reach a service half-way, say) is asked again, as an operator would, up to
    DELETE_TRIES times; Nova then takes up the node's tear-down where it stopped."""
    asked = 1
    servers.delete(server_id)

    def gone() -> bool:
        nonlocal asked
        try:
            return servers.status(server_id) is None
        except ServerInError as exc:
            if asked >= DELETE_TRIES:
                raise
            LOG.warning("node %s: %s; deleting it again", ctx.record.label, exc)
            asked += 1
            servers.delete(server_id)
            return False

    _until(ctx, gone, f"server {server_id} deleted")


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
    DeleteServer,
    Undeploy,
    EnrollTarget,
    DeleteSource,
    Manage,
    Provide,
    MaintenanceOff,
    Deploy,
    BootServer,
    Return,
)
#: The steps that act on a node's Nova server: they do nothing without ``--nova``.
SERVER_STEPS = frozenset({DeleteServer.title, BootServer.title})


def steps_for(nova: bool) -> list[type[Step]]:
    """The steps a node goes through: those of its server only with ``nova``."""
    return [step for step in STEPS if nova or step.title not in SERVER_STEPS]


def titles(nova: bool) -> list[str]:
    return [step.title for step in steps_for(nova)]
