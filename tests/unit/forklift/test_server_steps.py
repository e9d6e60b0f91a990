"""The steps of a node Nova owns, against two Novas in memory: the server deleted in the
source only if it is one the run recorded or booted, booted once in the target (a resume
after a crash between the boot and its record finds it), and taken back."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast
from unittest import mock

import pytest

from ephyra.clouds import ControlPlane
from ephyra.engine.control import Control
from ephyra.errors import ServerInError, StepFailed
from ephyra.forklift.context import MoveContext, NodeRecord, Phase
from ephyra.forklift.model import Attached, NodeSnapshot
from ephyra.forklift.secrets import NoCredentials
from ephyra.forklift.servers import BootIds, ServerRecord
from ephyra.forklift.steps import DELETE_TRIES, BootServer, DeleteServer, Deploy, Step
from ephyra.workloads.noop import NoopWorkload
from tests.unit.forklift.test_model import node

RECORD = ServerRecord(
    id="s-old",
    name="web-0",
    project_id="p-acme",
    flavor="bm.small",
    image_id="i-1",
    image_name="ubuntu",
    status="ACTIVE",
    metadata={"role": "web"},
)


class FakeNova:
    """One cloud's servers by id, each on a node; servers go ACTIVE or vanish at once."""

    def __init__(self, cloud: str, offered: bool = True) -> None:
        self.cloud = cloud
        self.servers: dict[str, dict[str, Any]] = {}
        self.offered = offered
        self.boots: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def put(self, server_id: str, name: str, node: str, project: str = "p-acme") -> None:
        self.servers[server_id] = {
            "id": server_id,
            "name": name,
            "tenant_id": project,
            "status": "ACTIVE",
            "OS-EXT-SRV-ATTR:hypervisor_hostname": node,
        }

    def on_nodes(self, nodes: Any) -> dict[str, dict[str, Any]]:
        wanted = set(nodes)
        return {
            s["OS-EXT-SRV-ATTR:hypervisor_hostname"]: s
            for s in self.servers.values()
            if s["OS-EXT-SRV-ATTR:hypervisor_hostname"] in wanted
        }

    def status(self, server_id: str) -> str | None:
        server = self.servers.get(server_id)
        return None if server is None else str(server["status"])

    def delete(self, server_id: str) -> None:
        self.deleted.append(server_id)
        self.servers.pop(server_id, None)

    def offers(self, node: str, resource_class: str) -> bool:
        return self.offered

    def node_host(self, node: str) -> str:
        return f"ironic-{self.cloud}"

    def ids_for(self, record: ServerRecord) -> BootIds:
        return BootIds(f"{self.cloud}-flavor", f"{self.cloud}-image", (), None)

    def in_project(self, project_id: str) -> FakeNova:
        return self

    def boot(self, body: dict[str, Any], action: str) -> str:
        self.boots.append(body)
        server_id = f"s-new-{len(self.boots)}"
        self.put(server_id, body["server"]["name"], body["server"]["hypervisor_hostname"])
        return server_id


class Record:
    """A node record in memory (what NodeRecord keeps in the journal)."""

    def __init__(self, snap: NodeSnapshot, data: dict[str, Any]) -> None:
        self.uuid = snap.uuid
        self.snapshot = snap
        self.data = data
        self.label = snap.label

    def save(self, **changes: Any) -> None:
        self.data.update(changes)


TARGET = Attached("volume_target", "vt-1", {"volume_type": "iscsi", "boot_index": 0})


def context(source: FakeNova, target: FakeNova, phase: Phase = Phase.FORWARD) -> MoveContext:
    snap = NodeSnapshot.of(node(resource_class="baremetal-small"), [], [TARGET])
    record = Record(snap, {"server": RECORD.to_dict(), "server_cloud": "cp1"})
    planes = []
    for name in (source.cloud, target.cloud):
        plane = mock.create_autospec(ControlPlane, instance=True)
        plane.name = name
        plane.settle.return_value = SimpleNamespace(
            provision_state="available", is_maintenance=False, maintenance_reason=None
        )
        planes.append(plane)
    return MoveContext(
        run_id="r1",
        phase=phase,
        record=cast(NodeRecord, record),
        source=planes[0],
        target=planes[1],
        credentials=NoCredentials(),
        workload=NoopWorkload({}),
        control=Control(),
        step_timeout=2,
        health_timeout=2,
        source_servers=cast(Any, source),
        target_servers=cast(Any, target),
    )


def test_the_recorded_server_is_deleted_and_booted_once_on_the_same_node() -> None:
    cp1, cp2 = FakeNova("cp1"), FakeNova("cp2")
    ctx = context(cp1, cp2)
    cp1.put("s-old", "web-0", ctx.uuid)
    DeleteServer(ctx).apply()
    assert cp1.deleted == ["s-old"] and cp1.servers == {}

    BootServer(ctx).apply()
    BootServer(ctx).apply()  # run again after a crash: the server booted is waited for
    (body,) = cp2.boots
    assert body["server"]["hypervisor_hostname"] == ctx.uuid
    assert (body["server"]["host"], body["server"]["flavorRef"]) == ("ironic-cp2", "cp2-flavor")
    assert ctx.booted("cp2") == "s-new-1"


def test_a_boot_cut_short_before_its_record_is_found_not_made_twice() -> None:
    cp1, cp2 = FakeNova("cp1"), FakeNova("cp2")
    ctx = context(cp1, cp2)
    cp2.put("s-made", "web-0", ctx.uuid)  # booted, then the process died
    BootServer(ctx).apply()
    assert cp2.boots == [] and ctx.booted("cp2") == "s-made"


def test_someone_else_s_server_is_neither_deleted_nor_booted_over() -> None:
    cp1, cp2 = FakeNova("cp1"), FakeNova("cp2")
    ctx = context(cp1, cp2)
    cp1.put("s-other", "db-0", ctx.uuid)
    with pytest.raises(StepFailed, match="did not boot nor record"):
        DeleteServer(ctx).apply()
    assert cp1.deleted == []
    cp2.put("s-theirs", "db-0", ctx.uuid)
    with pytest.raises(StepFailed, match="not the one this run boots"):
        BootServer(ctx).apply()
    assert cp2.boots == []


@pytest.mark.parametrize("step", [Deploy, BootServer])
def test_a_node_the_target_does_not_offer_fails_the_step_in_time(step: type[Step]) -> None:
    """The deploy of a node that carries a server waits for the target's Nova to offer
    it (and does not deploy it from Ironic); a boot after a crash looks again."""
    ctx = context(FakeNova("cp1"), FakeNova("cp2", offered=False))
    with pytest.raises(StepFailed, match="cp2's Nova offering the node not within 2s"):
        step(ctx).apply()
    cast(Any, ctx.target).update_node.assert_not_called()


def test_rollback_deletes_only_the_server_the_run_booted_and_boots_it_home() -> None:
    cp1, cp2 = FakeNova("cp1"), FakeNova("cp2")
    forward = context(cp1, cp2)
    cp1.put("s-old", "web-0", forward.uuid)
    DeleteServer(forward).apply()
    BootServer(forward).apply()

    back = context(cp2, cp1, Phase.ROLLBACK)  # the planes swap places
    back.record = forward.record
    DeleteServer(back).apply()
    assert cp2.deleted == ["s-new-1"]
    BootServer(back).apply()
    assert [b["server"]["name"] for b in cp1.boots] == ["web-0"]
    assert back.booted("cp1") == "s-new-1" and cp1.status("s-new-1") == "ACTIVE"


def test_undoing_the_delete_boots_the_server_again_with_maintenance_lifted_meanwhile() -> None:
    cp1, cp2 = FakeNova("cp1"), FakeNova("cp2")
    ctx = context(cp1, cp2)
    held = SimpleNamespace(
        provision_state="available", is_maintenance=True, maintenance_reason=ctx.reason
    )
    cast(Any, ctx.source).settle.return_value = held
    DeleteServer(ctx).undo()
    assert [b["server"]["name"] for b in cp1.boots] == ["web-0"]
    source = cast(Any, ctx.source)
    source.unset_maintenance.assert_called_once_with(ctx.uuid)
    source.set_maintenance.assert_called_once_with(ctx.uuid, ctx.reason)
    # Nova deleted the node's volume targets with the server: they are made again
    source.create_attached.assert_called_once_with("volume_target", TARGET.create_fields(ctx.uuid))


def test_without_a_server_the_steps_do_nothing() -> None:
    cp1, cp2 = FakeNova("cp1"), FakeNova("cp2")
    ctx = context(cp1, cp2)
    ctx.record.data.pop("server")
    DeleteServer(ctx).apply()
    BootServer(ctx).apply()
    assert cp1.deleted == [] and cp2.boots == []


class FailingDeletes(FakeNova):
    """A Nova whose first ``failures`` deletes of a server end it in ERROR (the driver
    could not reach a service half-way through the tear-down)."""

    def __init__(self, cloud: str, failures: int) -> None:
        super().__init__(cloud)
        self.failures = failures

    def status(self, server_id: str) -> str | None:
        status = super().status(server_id)
        if status == "ERROR":
            raise ServerInError(f"server {server_id} in {self.cloud}: ConnectFailure")
        return status

    def delete(self, server_id: str) -> None:
        if len(self.deleted) < self.failures:
            self.deleted.append(server_id)
            self.servers[server_id]["status"] = "ERROR"
            return
        super().delete(server_id)


def test_a_delete_that_nova_ends_in_error_is_asked_again() -> None:
    cp1 = FailingDeletes("cp1", failures=DELETE_TRIES - 1)
    ctx = context(cp1, FakeNova("cp2"))
    cp1.put("s-old", "web-0", ctx.uuid)
    DeleteServer(ctx).apply()
    assert cp1.deleted == ["s-old"] * DELETE_TRIES and cp1.servers == {}


def test_a_server_that_stays_in_error_fails_the_step_with_its_fault() -> None:
    cp1 = FailingDeletes("cp1", failures=DELETE_TRIES)
    ctx = context(cp1, FakeNova("cp2"))
    cp1.put("s-old", "web-0", ctx.uuid)
    with pytest.raises(ServerInError, match="ConnectFailure"):
        DeleteServer(ctx).apply()
    assert cp1.deleted == ["s-old"] * DELETE_TRIES and cp1.servers["s-old"]["status"] == "ERROR"
