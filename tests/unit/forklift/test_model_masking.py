"""BMC secrets masked per hardware interface; instance_info secrets never kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ephyra.forklift.model import (
    MASK,
    SECRET_DRIVER_INFO,
    NodeSnapshot,
    instance_secrets,
    masked,
    secret_keys,
)
from ephyra.forklift.secrets import FileCredentials
from tests.unit.forklift.test_model import node

#: Every secret key of every hardware interface, each with a value no other key has.
SECRETS = {key: f"v-{key}-9f3c" for keys in SECRET_DRIVER_INFO.values() for key in keys}
PLAIN = {
    "ipmi_address": "192.0.2.7",
    "ipmi_username": "admin",
    "ipmi_priv_level": "ADMINISTRATOR",
    "redfish_address": "https://192.0.2.8",
    "redfish_system_id": "/redfish/v1/Systems/1",
    "deploy_kernel": "http://images/k",
    "snmp_version": "3",
}


@pytest.mark.parametrize("interface", sorted(SECRET_DRIVER_INFO))
def test_every_secret_of_every_interface_is_masked(interface: str) -> None:
    info = {**PLAIN, **{k: SECRETS[k] for k in SECRET_DRIVER_INFO[interface]}}
    hidden = masked(info)
    assert {k for k, v in hidden.items() if v == MASK} == SECRET_DRIVER_INFO[interface]
    assert {k: hidden[k] for k in PLAIN} == PLAIN  # nothing else touched


def test_keys_oslo_masks_and_secret_words_are_masked() -> None:
    info = {
        "ipmi_password": "a",  # oslo's list, and Ironic's
        "ssh_key_contents": "b",  # a word: key
        "vendor_api_token": "c",
        "bmc_secret": "d",
        "snmp_community_v2": "e",
        "console_command": "ipmitool --password hunter2 sol activate",  # oslo, in a value
        "nested": {"password": "f"},
        "keystone_url": "http://ks",  # not a secret: 'keystone' is not the word 'key'
    }
    hidden = masked(info)
    assert secret_keys(info) == sorted(set(info) - {"keystone_url"})
    assert hidden["keystone_url"] == "http://ks"
    assert "hunter2" not in json.dumps(hidden)


def test_a_snapshot_keeps_only_masks_and_asks_for_every_secret() -> None:
    snap = NodeSnapshot.of(node(driver_info={**PLAIN, **SECRETS}), [])
    text = json.dumps(snap.to_dict())
    assert not [v for v in SECRETS.values() if v in text]
    assert snap.secret_fields == sorted(SECRETS)
    body = snap.create_fields(SECRETS)
    assert body["driver_info"] == {**PLAIN, **SECRETS}


def test_file_credentials_must_give_the_kg_and_snmp_keys(tmp_path: Path) -> None:
    wanted = {"ipmi_password": "p", "ipmi_kg": "k", "snmp_auth_key": "a", "snmp_priv_key": "q"}
    snap = NodeSnapshot.of(node(driver_info={"ipmi_address": "192.0.2.7", **wanted}), [])
    partial = tmp_path / "partial.yaml"
    partial.write_text("nodes: {n1: {ipmi_password: p}}\n")
    lacking = FileCredentials(str(partial)).missing(snap)
    assert lacking == ["ipmi_kg", "snmp_auth_key", "snmp_priv_key"]
    full = tmp_path / "full.yaml"
    full.write_text(json.dumps({"nodes": {"n1": wanted}}))
    assert FileCredentials(str(full)).secrets(snap, None) == wanted  # type: ignore[arg-type]


def test_instance_info_secrets_are_masked_and_named() -> None:
    info = {
        "image_source": "http://mirror:s3cr3t@images.internal/img.qcow2",
        "configdrive": "H4sIAAAAAAAA...",
        "root_gb": 100,
        "image_checksum": "abc",
        "capabilities": {"boot_mode": "uefi"},
        "image_url": "******",  # Ironic's own, masked in its answers: not carried
        "image_type": "whole-disk",
    }
    snap = NodeSnapshot.of(node(instance_info=info), [])
    assert snap.instance_info == {
        "image_source": MASK,
        "configdrive": MASK,
        "root_gb": 100,
        "image_checksum": "abc",
        "capabilities": {"boot_mode": "uefi"},
    }
    assert instance_secrets(info) == ["configdrive", "image_source"]
    assert instance_secrets({"configdrive": MASK}) == ["configdrive"]  # as Ironic shows it
    assert instance_secrets({"image_source": "http://images.internal/img", "root_gb": 10}) == []
