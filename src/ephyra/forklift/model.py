"""What a forklift keeps of a node: the fields that must arrive unchanged.

A snapshot is written to the journal before the node is touched, so it never
holds a secret: every BMC secret is masked (what Ironic masks, and the keys of
:data:`SECRET_DRIVER_INFO` it shows in clear), and filled in again from a
credential source only at the moment the node is enrolled. Secrets in a deployed
node's ``instance_info`` are masked too (:func:`instance_secrets`) and filled in from the
credential source at its deploy; the preflight refuses a node whose source lacks them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from oslo_utils import strutils

from ephyra.clouds import INTERFACES
from ephyra.inventory.catalog import is_secret
from ephyra.urls import redact_text

MASK = "******"

# Fields set when the node is created; owner, lessee and conductor group are patched after.
CREATE_FIELDS = ("name", "driver", "resource_class", "properties", "extra", "description")
PATCH_FIELDS = ("owner", "lessee", "conductor_group")
# instance_info keys Ironic adds itself during a deploy (``image_url``: what it made of
# ``image_source``, masked in its answers; it makes it again at the next deploy).
IRONIC_INSTANCE_KEYS = frozenset({"image_type", "image_url"})
# Provision states a node may leave from: anything else is mid-operation or broken.
MOVABLE_STATES = frozenset({"active", "available", "manageable"})


#: The ``driver_info`` keys that hold a BMC secret, per hardware interface: Ironic's own
#: names (ironic/drivers/modules/ipmitool.py, redfish/utils.py) and those of drivers it had.
#: Ironic's API masks only what oslo's list matches (``*password*``...) and the SNMP keys;
#: the rest (``ipmi_kg``, ``ipmi_hex_kg_key``, SNMP communities) it shows in clear.
SECRET_DRIVER_INFO: Mapping[str, frozenset[str]] = {
    "ipmi": frozenset({"ipmi_password", "ipmi_kg", "ipmi_hex_kg_key"}),
    "redfish": frozenset({"redfish_password"}),
    "snmp": frozenset(
        {
            "snmp_auth_key",
            "snmp_priv_key",
            "snmp_community",
            "snmp_community_read",
            "snmp_community_write",
        }
    ),
    "idrac": frozenset({"drac_password"}),
    "ilo": frozenset({"ilo_password"}),
    "irmc": frozenset({"irmc_password"}),
}
SECRET_KEYS = frozenset().union(*SECRET_DRIVER_INFO.values())
#: ``instance_info`` keys Ironic masks whole in its answers (besides oslo's list).
SECRET_INSTANCE_KEYS = frozenset({"configdrive"})


def is_secret_key(key: object) -> bool:
    """Whether a ``driver_info`` or ``instance_info`` key holds a secret: a known BMC
    secret, a key oslo masks, or one whose words look like a credential (``..._key``,
    ``token``, ``secret``, ``community``)."""
    name = str(key)
    return (
        name in SECRET_KEYS
        or name in SECRET_INSTANCE_KEYS
        or "community" in name.lower()
        or is_secret(name)
        or strutils.mask_dict_password({name: ""}, MASK)[name] == MASK
    )


def masked(info: Mapping[str, Any]) -> dict[str, Any]:
    """``info`` (a ``driver_info`` or ``instance_info``) with every secret masked: the whole
    value of a secret key, or of any value holding a secret (a nested key oslo masks, a
    ``--password`` in a command line, a URL's ``user:password@``)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        hidden = strutils.mask_dict_password({key: value}, MASK)[key]
        if is_secret_key(key) or hidden != value or _url_secret(value):
            out[key] = MASK
        else:
            out[key] = value
    return out


def _url_secret(value: Any) -> bool:
    return isinstance(value, str) and redact_text(value) != value


def secret_keys(driver_info: Mapping[str, Any]) -> list[str]:
    """The keys of ``driver_info`` that hold secrets (masked or not)."""
    hidden = masked(driver_info)
    return sorted(k for k, v in driver_info.items() if hidden.get(k) == MASK)


def instance_secrets(instance_info: Mapping[str, Any]) -> list[str]:
    """The keys of a deployed node's ``instance_info`` that hold a secret (or that Ironic
    masked): the journal never keeps them, so a forklift cannot deploy the node again
    with them."""
    kept = {k: v for k, v in instance_info.items() if k not in IRONIC_INSTANCE_KEYS}
    return secret_keys(kept)


#: What else a node has enrolled with it, by kind (the API's resource, singular), and the
#: fields of each that are created again with it (openstacksdk's names).
ATTACHED: Mapping[str, tuple[str, ...]] = {
    "port_group": (
        "address",
        "name",
        "mode",
        "properties",
        "extra",
        "is_standalone_ports_supported",
    ),
    "volume_connector": ("type", "connector_id", "extra"),
    "volume_target": ("volume_type", "properties", "boot_index", "volume_id", "extra"),
}


@dataclass(frozen=True)
class Attached:
    """A port group, volume connector or volume target of a node, as it is created again
    (its UUID kept)."""

    kind: str
    uuid: str
    fields: dict[str, Any]

    @classmethod
    def of(cls, kind: str, item: Any) -> Attached:
        kept = {f: getattr(item, f, None) for f in ATTACHED[kind]}
        return cls(kind, str(item.id), {k: v for k, v in kept.items() if v not in (None, {})})

    def create_fields(self, node_uuid: str) -> dict[str, Any]:
        return {"id": self.uuid, "node_id": node_uuid, **self.fields}


@dataclass(frozen=True)
class PortSnapshot:
    uuid: str
    address: str
    pxe_enabled: bool
    extra: dict[str, Any] = field(default_factory=dict)
    local_link_connection: dict[str, Any] = field(default_factory=dict)
    physical_network: str | None = None
    port_group: str | None = None

    @classmethod
    def of(cls, port: Any) -> PortSnapshot:
        return cls(
            uuid=port.id,
            address=port.address.lower(),
            pxe_enabled=bool(port.is_pxe_enabled),
            extra=dict(port.extra or {}),
            local_link_connection=dict(port.local_link_connection or {}),
            physical_network=port.physical_network,
            port_group=getattr(port, "port_group_id", None),
        )

    def create_fields(self, node_uuid: str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "id": self.uuid,
            "node_id": node_uuid,
            "address": self.address,
            "is_pxe_enabled": self.pxe_enabled,
            "extra": self.extra,
        }
        if self.local_link_connection:
            fields["local_link_connection"] = self.local_link_connection
        if self.physical_network:
            fields["physical_network"] = self.physical_network
        if self.port_group:
            fields["port_group_id"] = self.port_group
        return fields


@dataclass(frozen=True)
class NodeSnapshot:
    """A node as it was before the move, secrets masked."""

    uuid: str
    name: str | None
    driver: str
    provision_state: str
    fields: dict[str, Any]
    interfaces: dict[str, str]
    driver_info: dict[str, Any]
    instance_info: dict[str, Any]
    ports: tuple[PortSnapshot, ...]
    maintenance: bool = False
    maintenance_reason: str | None = None
    traits: tuple[str, ...] = ()
    #: the RAID configuration asked for (``target_raid_config``), applied at its next cleaning
    raid: dict[str, Any] = field(default_factory=dict)
    #: port groups first (its ports name them), then volume connectors and targets
    attached: tuple[Attached, ...] = ()
    #: the BIOS settings Ironic has cached (secret-looking ones masked)
    bios: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.uuid

    @property
    def secret_fields(self) -> list[str]:
        return sorted(k for k, v in self.driver_info.items() if v == MASK)

    @property
    def instance_secret_fields(self) -> list[str]:
        return sorted(k for k, v in self.instance_info.items() if v == MASK)

    @classmethod
    def of(
        cls,
        node: Any,
        ports: list[Any],
        attached: Iterable[Attached] = (),
        bios: Mapping[str, str] | None = None,
    ) -> NodeSnapshot:
        keep = {f: getattr(node, f, None) for f in (*CREATE_FIELDS, *PATCH_FIELDS)}
        instance = {
            k: v for k, v in (node.instance_info or {}).items() if k not in IRONIC_INSTANCE_KEYS
        }
        return cls(
            uuid=node.id,
            name=node.name,
            driver=node.driver,
            provision_state=node.provision_state,
            fields={k: v for k, v in keep.items() if v not in (None, {}, "")},
            interfaces={i: getattr(node, i) for i in INTERFACES if getattr(node, i, None)},
            driver_info=masked(node.driver_info or {}),
            instance_info=masked(instance),
            ports=tuple(sorted((PortSnapshot.of(p) for p in ports), key=lambda p: p.address)),
            maintenance=bool(node.is_maintenance),
            maintenance_reason=node.maintenance_reason,
            traits=tuple(sorted(getattr(node, "traits", None) or ())),
            raid=dict(getattr(node, "target_raid_config", None) or {}),
            attached=tuple(sorted(attached, key=lambda a: (list(ATTACHED).index(a.kind), a.uuid))),
            bios=masked(bios or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeSnapshot:
        values = dict(data)
        values["ports"] = tuple(PortSnapshot(**p) for p in values["ports"])
        values["traits"] = tuple(values.get("traits") or ())
        values["attached"] = tuple(Attached(**a) for a in values.get("attached") or ())
        return cls(**values)

    def create_fields(self, secrets: Mapping[str, Any]) -> dict[str, Any]:
        """The body that enrolls this node elsewhere, secrets filled in."""
        driver_info = {**self.driver_info, **secrets}
        body: dict[str, Any] = {"id": self.uuid, "driver": self.driver, "driver_info": driver_info}
        body.update({k: v for k, v in self.fields.items() if k in CREATE_FIELDS})
        body.update(self.interfaces)
        return body

    def patch_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.fields.items() if k in PATCH_FIELDS}
