"""Step logic that a crash can reach only by chance in the functional crash matrix."""

from types import SimpleNamespace
from typing import Any
from unittest import mock

from ephyra.clouds import ControlPlane
from ephyra.engine.control import Control
from ephyra.forklift.context import MoveContext, NodeRecord, Phase
from ephyra.forklift.model import Attached, NodeSnapshot
from ephyra.forklift.secrets import NoCredentials
from ephyra.forklift.steps import Manage, enroll
from ephyra.workloads.noop import NoopWorkload
from tests.unit.forklift.test_model import node, port


def context(target: Any) -> MoveContext:
    snap = NodeSnapshot.of(node(driver_info={"ipmi_address": "a"}), [port("52:54:00:00:00:01")])
    record = mock.create_autospec(NodeRecord, instance=True)
    record.snapshot = snap
    record.uuid = snap.uuid
    source = mock.create_autospec(ControlPlane, instance=True)
    source.name, target.name = "cp1", "cp2"
    return MoveContext(
        run_id="r1",
        phase=Phase.FORWARD,
        record=record,
        source=source,
        target=target,
        credentials=NoCredentials(),
        workload=NoopWorkload({}),
        control=Control(),
        step_timeout=5,
        health_timeout=5,
    )


def test_enroll_patches_owner_of_a_node_created_before_a_crash() -> None:
    target = mock.create_autospec(ControlPlane, instance=True)
    ctx = context(target)
    created = SimpleNamespace(
        owner=None, lessee=None, is_maintenance=True, maintenance_reason=ctx.reason
    )
    target.find_node.return_value = created  # created, then the process died
    target.update_node.return_value = created
    target.ports.return_value = []
    enroll(ctx, "target")
    target.create_node.assert_not_called()
    target.update_node.assert_called_once_with(ctx.uuid, owner="tenant-a")
    target.create_port.assert_called_once()


def test_enroll_of_a_complete_node_changes_nothing() -> None:
    target = mock.create_autospec(ControlPlane, instance=True)
    ctx = context(target)
    target.find_node.return_value = SimpleNamespace(
        owner="tenant-a", lessee=None, is_maintenance=True, maintenance_reason=ctx.reason
    )
    target.ports.return_value = [SimpleNamespace(address="52:54:00:00:00:01")]
    enroll(ctx, "target")
    target.update_node.assert_not_called()
    target.set_maintenance.assert_not_called()
    target.create_port.assert_not_called()


def carrying(**over: Any) -> MoveContext:
    """A context whose node carries traits, a RAID configuration and a conductor group."""
    target = mock.create_autospec(ControlPlane, instance=True)
    ctx = context(target)
    raid = {"logical_disks": [{"size_gb": 100, "raid_level": "1", "is_root_volume": True}]}
    snap = NodeSnapshot.of(
        node(
            traits=["CUSTOM_GPU", "CUSTOM_A"],
            target_raid_config=raid,
            conductor_group="rack1",
            **over,
        ),
        [],
    )
    ctx.record.snapshot = snap  # type: ignore[misc]
    return ctx


def test_traits_raid_and_conductor_group_arrive_with_the_node() -> None:
    ctx = carrying()
    snap = ctx.snapshot()
    assert (snap.traits, snap.fields["conductor_group"]) == (("CUSTOM_A", "CUSTOM_GPU"), "rack1")
    assert NodeSnapshot.from_dict(snap.to_dict()) == snap
    target: Any = ctx.target
    bare = SimpleNamespace(
        owner="tenant-a",
        lessee=None,
        conductor_group="",
        traits=[],
        target_raid_config={},
        is_maintenance=True,
        maintenance_reason=ctx.reason,
    )
    target.find_node.return_value = bare
    target.update_node.return_value = bare
    target.ports.return_value = []
    enroll(ctx, "target")
    target.update_node.assert_called_once_with(ctx.uuid, conductor_group="rack1")
    target.set_traits.assert_called_once_with(ctx.uuid, ["CUSTOM_A", "CUSTOM_GPU"])
    target.set_raid_config.assert_called_once_with(ctx.uuid, snap.raid)


def test_traits_and_raid_already_there_are_not_set_again() -> None:
    ctx = carrying()
    target: Any = ctx.target
    target.find_node.return_value = SimpleNamespace(
        owner="tenant-a",
        lessee=None,
        conductor_group="rack1",
        traits=["CUSTOM_GPU", "CUSTOM_A"],
        target_raid_config=ctx.snapshot().raid,
        is_maintenance=True,
        maintenance_reason=ctx.reason,
    )
    target.ports.return_value = []
    enroll(ctx, "target")
    target.update_node.assert_not_called()
    target.set_traits.assert_not_called()
    target.set_raid_config.assert_not_called()


def test_port_groups_come_before_their_ports_and_volumes_arrive_with_the_node() -> None:
    source = mock.create_autospec(ControlPlane, instance=True)
    group = SimpleNamespace(
        id="pg-1",
        address="52:54:00:00:00:0a",
        name="bond0",
        mode="active-backup",
        properties={},
        extra={},
        is_standalone_ports_supported=True,
    )
    connector = SimpleNamespace(id="vc-1", type="iqn", connector_id="iqn.2026-12.x:n1", extra={})
    volume = SimpleNamespace(
        id="vt-1", volume_type="iscsi", properties={}, boot_index=0, volume_id="v-1", extra={}
    )
    found = {"port_group": [group], "volume_connector": [connector], "volume_target": [volume]}
    source.attached.side_effect = lambda kind, uuid: found[kind]
    member = port("52:54:00:00:00:01")
    member.port_group_id = "pg-1"
    attached = [Attached.of(k, i) for k in found for i in source.attached(k, "n")]
    snap = NodeSnapshot.of(node(), [member], attached)
    assert NodeSnapshot.from_dict(snap.to_dict()) == snap

    target = mock.create_autospec(ControlPlane, instance=True)
    ctx = context(target)
    ctx.record.snapshot = snap  # type: ignore[misc]
    calls: list[str] = []
    target.find_node.return_value = SimpleNamespace(
        owner="tenant-a", lessee=None, is_maintenance=True, maintenance_reason=ctx.reason
    )
    target.attached.return_value = []
    target.ports.return_value = []
    target.create_attached.side_effect = lambda kind, fields: calls.append(fields["id"])
    target.create_port.side_effect = lambda fields: calls.append(fields["port_group_id"])
    enroll(ctx, "target")
    assert calls == ["pg-1", "vc-1", "vt-1", "pg-1"]  # the port names its group, made first
    made = [c.args[1] for c in target.create_attached.call_args_list]
    assert made[2] == {
        "id": "vt-1",
        "node_id": ctx.uuid,
        "volume_type": "iscsi",
        "boot_index": 0,
        "volume_id": "v-1",
    }


def with_bios(have: dict[str, str], maintenance: bool = True) -> tuple[MoveContext, Any]:
    """A context whose node had BIOS settings (one of them secret-looking) and a target
    whose Ironic caches ``have`` for it; the node there is manageable."""
    target = mock.create_autospec(ControlPlane, instance=True)
    ctx = context(target)
    bios = {"BootMode": "uefi", "HyperThreading": "Disabled", "AdminPassword": "s3cret"}
    ctx.record.snapshot = NodeSnapshot.of(node(), [], bios=bios)  # type: ignore[misc]
    target.settle.return_value = SimpleNamespace(
        provision_state="manageable", is_maintenance=maintenance, maintenance_reason=ctx.reason
    )
    target.bios_settings.return_value = have
    return ctx, target


def test_the_bios_settings_that_differ_are_applied_with_maintenance_lifted_meanwhile() -> None:
    ctx, target = with_bios({"BootMode": "uefi", "HyperThreading": "Enabled"})
    assert ctx.snapshot().bios["AdminPassword"] == "******"  # never in the journal
    calls = mock.Mock()
    calls.attach_mock(target.unset_maintenance, "unset")
    calls.attach_mock(target.apply_bios, "apply")
    calls.attach_mock(target.set_maintenance, "set")
    target.settle.side_effect = [
        target.settle.return_value,  # manage: manageable already
        target.settle.return_value,  # before the cleaning
        SimpleNamespace(provision_state="manageable", is_maintenance=False),  # after it
    ]
    Manage(ctx).apply()
    assert [c[0] for c in calls.mock_calls] == ["unset", "apply", "set"]
    target.apply_bios.assert_called_once_with(
        ctx.uuid, {"HyperThreading": "Disabled"}, timeout=5, checkpoint=mock.ANY
    )
    target.set_maintenance.assert_called_once_with(ctx.uuid, ctx.reason)


def test_bios_settings_equal_in_the_target_start_no_cleaning() -> None:
    ctx, target = with_bios({"BootMode": "uefi", "HyperThreading": "Disabled", "Other": "x"})
    Manage(ctx).apply()
    target.apply_bios.assert_not_called()
    target.unset_maintenance.assert_not_called()
    target.set_maintenance.assert_not_called()


def test_a_manage_resumed_after_the_cleaning_puts_the_maintenance_back() -> None:
    """Killed once the cleaning was done, before maintenance was set again."""
    ctx, target = with_bios({"BootMode": "uefi", "HyperThreading": "Disabled"}, maintenance=False)
    Manage(ctx).apply()
    target.apply_bios.assert_not_called()
    target.set_maintenance.assert_called_once_with(ctx.uuid, ctx.reason)
