from types import SimpleNamespace
from typing import Any

from ephyra.forklift.model import INTERFACES, MASK, NodeSnapshot, masked, secret_keys


def node(**over: Any) -> SimpleNamespace:
    base: dict[str, Any] = {
        "id": "0f7a2b7e-0000-4000-8000-000000000001",
        "name": "n1",
        "driver": "fake-hardware",
        "provision_state": "active",
        "resource_class": "baremetal",
        "properties": {"cpus": 8},
        "extra": {"rack": "r1"},
        "description": None,
        "owner": "tenant-a",
        "lessee": None,
        "driver_info": {"ipmi_address": "192.0.2.1", "ipmi_password": "s3cret"},
        "instance_info": {"image_source": "http://x/img", "image_type": "whole-disk"},
        "is_maintenance": False,
        "maintenance_reason": None,
        "power_state": "power on",
        "target_power_state": None,
    }
    base.update({i: "fake" for i in INTERFACES})
    base.update(over)
    return SimpleNamespace(**base)


def port(address: str) -> SimpleNamespace:
    return SimpleNamespace(
        id=f"p-{address}",
        address=address.upper(),
        is_pxe_enabled=True,
        extra={},
        local_link_connection={},
        physical_network=None,
    )


def test_snapshot_masks_secrets_and_drops_ironic_keys() -> None:
    snap = NodeSnapshot.of(node(), [port("52:54:00:00:00:02"), port("52:54:00:00:00:01")])
    assert snap.driver_info == {"ipmi_address": "192.0.2.1", "ipmi_password": MASK}
    assert snap.secret_fields == ["ipmi_password"]
    assert snap.instance_info == {"image_source": "http://x/img"}
    assert [p.address for p in snap.ports] == ["52:54:00:00:00:01", "52:54:00:00:00:02"]
    assert "s3cret" not in repr(snap.to_dict())


def test_snapshot_round_trips_through_the_journal_form() -> None:
    snap = NodeSnapshot.of(node(), [port("52:54:00:00:00:01")])
    assert NodeSnapshot.from_dict(snap.to_dict()) == snap


def test_create_fields_fill_secrets_and_keep_identity() -> None:
    snap = NodeSnapshot.of(node(), [])
    body = snap.create_fields({"ipmi_password": "s3cret"})
    assert body["id"] == snap.uuid and body["name"] == "n1"
    assert body["driver_info"]["ipmi_password"] == "s3cret"
    assert body["deploy_interface"] == "fake"
    assert "owner" not in body  # patched after create: noauth Ironic refuses it on POST
    assert snap.patch_fields() == {"owner": "tenant-a"}


def test_secret_keys_follow_ironic_masking() -> None:
    info = {"redfish_password": "x", "ipmi_address": "a", "snmp_auth_key": "k"}
    assert "redfish_password" in secret_keys(info)
    assert "ipmi_address" not in secret_keys(info)
    assert masked(info)["redfish_password"] == MASK
