"""The settings document: an environment's settings as a stable YAML or JSON text, and the
flat objects the diff and the apply work with.

The document is grouped by service (``identity``, ``compute``, ``placement``, ``network``);
each object in it is named, never identified by an id (projects, users and groups by
``domain/name``, flavors and aggregates by name, subnets by their network and CIDR), and
every list is sorted, so that two exports of equal settings are equal texts.

Inside, the same settings are *objects*: for each kind (in :data:`ORDER`), a mapping of
the object's key (the values of its :data:`KEYS` fields) to a flat dict of its fields,
keys included. Only this module knows the document's shape.

Imported by the run kind's module when the command line is built: only the standard
library here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ephyra.errors import UsageError

VERSION = 1
#: The document's version key, and the key naming the cloud it was exported from.
VERSION_KEY = "ephyra_settings"
SOURCE_KEY = "source"
SECTIONS = ("identity", "compute", "placement", "network")

#: Every kind of object, in the order they are made (deleted in the reverse order).
ORDER = (
    "domain",
    "project",
    "role",
    "user",
    "group",
    "assignment",
    "flavor",
    "flavor_access",
    "default_quota",
    "quota",
    "aggregate",
    "server_group",
    "resource_class",
    "trait",
    "network",
    "subnet",
)
#: The fields that identify an object of each kind.
KEYS: dict[str, tuple[str, ...]] = {
    "domain": ("name",),
    "project": ("domain", "name"),
    "role": ("name",),
    "user": ("domain", "name"),
    "group": ("domain", "name"),
    "assignment": ("role", "actor", "name", "target", "on", "inherited"),
    "flavor": ("name",),
    "flavor_access": ("flavor", "project"),
    "default_quota": ("name",),
    "quota": ("project",),
    "aggregate": ("name",),
    "server_group": ("project", "name"),
    "resource_class": ("name",),
    "trait": ("name",),
    "network": ("name",),
    "subnet": ("network", "cidr"),
}
#: The section each kind is in.
SECTION_OF = {
    **dict.fromkeys(("domain", "project", "role", "user", "group", "assignment"), "identity"),
    **dict.fromkeys(
        ("flavor", "flavor_access", "default_quota", "quota", "aggregate", "server_group"),
        "compute",
    ),
    **dict.fromkeys(("resource_class", "trait"), "placement"),
    **dict.fromkeys(("network", "subnet"), "network"),
}
#: Where each kind is in the document: its section and the key there.
FIELD_OF = {
    "domain": ("identity", "domains"),
    "project": ("identity", "projects"),
    "role": ("identity", "roles"),
    "user": ("identity", "users"),
    "group": ("identity", "groups"),
    "assignment": ("identity", "assignments"),
    "flavor": ("compute", "flavors"),
    "flavor_access": ("compute", "flavors"),
    "default_quota": ("compute", "default_quotas"),
    "quota": ("compute", "quotas"),
    "aggregate": ("compute", "aggregates"),
    "server_group": ("compute", "server_groups"),
    "resource_class": ("placement", "resource_classes"),
    "trait": ("placement", "traits"),
    "network": ("network", "networks"),
    "subnet": ("network", "networks"),
}
#: Kinds whose objects always exist on a cloud (quotas): never created, never pruned.
ALWAYS = frozenset({"default_quota", "quota"})
#: The compute quotas a document carries (those every Nova API version shows).
QUOTAS = (
    "cores",
    "instances",
    "key_pairs",
    "metadata_items",
    "ram",
    "server_group_members",
    "server_groups",
)

Objects = dict[str, dict[str, dict[str, Any]]]


def key_of(kind: str, obj: Mapping[str, Any]) -> str:
    """The object's key, as the diff, the journal and the plan name it."""
    return " ".join(_said(obj.get(f)) for f in KEYS[kind])


def _said(value: Any) -> str:
    if isinstance(value, bool):
        return "inherited" if value else "direct"
    return str(value)


def empty() -> Objects:
    return {kind: {} for kind in ORDER}


def add(objects: Objects, kind: str, obj: dict[str, Any]) -> None:
    objects.setdefault(kind, {})[key_of(kind, obj)] = obj


# -- document -> objects ------------------------------------------------------------------
def objects_of(document: Mapping[str, Any]) -> tuple[Objects, set[str]]:
    """The objects a document holds, and the kinds it has: a kind whose key the document
    lacks (a section the source cloud had no service for, a list left out) is not
    compared, nor pruned."""
    check(document)
    try:
        return _objects_of(document)
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise UsageError(
            f"settings document: not as `ephyra settings export` writes: {exc}"
        ) from exc


def _objects_of(document: Mapping[str, Any]) -> tuple[Objects, set[str]]:
    found = empty()
    identity = document.get("identity")
    if identity is not None:
        for d in identity.get("domains") or ():
            add(found, "domain", _fields(d, name="", description="", enabled=True))
        for p in identity.get("projects") or ():
            add(
                found,
                "project",
                {
                    **_fields(p, domain="", name="", description="", enabled=True, parent=""),
                    "tags": sorted(p.get("tags") or ()),
                },
            )
        for r in identity.get("roles") or ():
            add(found, "role", _fields(r, name="", description=""))
        for u in identity.get("users") or ():
            add(
                found,
                "user",
                _fields(u, domain="", name="", enabled=True, email="", description=""),
            )
        for g in identity.get("groups") or ():
            group = _fields(g, domain="", name="", description="")
            add(found, "group", {**group, "members": sorted(g.get("members") or ())})
        for a in identity.get("assignments") or ():
            add(found, "assignment", assignment_of(a))
    compute = document.get("compute")
    if compute is not None:
        for f in compute.get("flavors") or ():
            flavor = _fields(
                f, name="", vcpus=1, ram=0, disk=0, ephemeral=0, swap=0, is_public=True
            )
            flavor["extra_specs"] = {
                str(k): str(v) for k, v in (f.get("extra_specs") or {}).items()
            }
            add(found, "flavor", flavor)
            for project in f.get("access") or ():
                add(found, "flavor_access", {"flavor": flavor["name"], "project": project})
        if compute.get("default_quotas") is not None:
            add(
                found,
                "default_quota",
                {"name": "default", **quota_values(compute["default_quotas"])},
            )
        for project, values in (compute.get("quotas") or {}).items():
            add(found, "quota", {"project": project, **quota_values(values)})
        for a in compute.get("aggregates") or ():
            aggregate = _fields(a, name="", availability_zone="")
            aggregate["metadata"] = {str(k): str(v) for k, v in (a.get("metadata") or {}).items()}
            add(found, "aggregate", aggregate)
        for s in compute.get("server_groups") or ():
            group = _fields(s, project="", name="", policy="")
            add(found, "server_group", {**group, "rules": dict(s.get("rules") or {})})
    placement = document.get("placement")
    if placement is not None:
        for name in placement.get("resource_classes") or ():
            add(found, "resource_class", {"name": name})
        for name in placement.get("traits") or ():
            add(found, "trait", {"name": name})
    network = document.get("network")
    if network is not None:
        for n in network.get("networks") or ():
            net = _fields(
                n,
                name="",
                project="",
                shared=False,
                external=False,
                mtu=None,
                network_type="",
                physical_network="",
                segmentation_id=None,
            )
            add(found, "network", net)
            for s in n.get("subnets") or ():
                subnet = _fields(s, cidr="", name="", ip_version=4, gateway="", dhcp=True)
                subnet["pools"] = sorted(s.get("pools") or ())
                add(found, "subnet", {"network": net["name"], **subnet})
    kinds = {
        kind
        for kind, (section, key) in FIELD_OF.items()
        if isinstance(document.get(section), Mapping) and key in document[section]
    }
    return found, kinds


def sections_of(kinds: Iterable[str]) -> set[str]:
    """The sections ``kinds`` are in."""
    return {SECTION_OF[kind] for kind in kinds}


def _fields(raw: Mapping[str, Any], **defaults: Any) -> dict[str, Any]:
    """The fields named, each from ``raw`` or its default (None stays None)."""
    out: dict[str, Any] = {}
    for name, default in defaults.items():
        value = raw.get(name, default)
        if value is None:
            value = default
        out[name] = value
    return out


def quota_values(raw: Mapping[str, Any]) -> dict[str, int]:
    return {k: int(raw[k]) for k in QUOTAS if k in raw and raw[k] is not None}


def assignment_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An assignment of the document (``role``, ``user`` or ``group``, ``project`` or
    ``domain``, ``inherited``) as an object."""
    actor = "user" if "user" in raw else "group"
    target = "project" if "project" in raw else "domain"
    if actor not in raw or target not in raw:
        raise UsageError(f"settings document: an assignment names no user/group or target: {raw}")
    return {
        "role": str(raw["role"]),
        "actor": actor,
        "name": str(raw[actor]),
        "target": target,
        "on": str(raw[target]),
        "inherited": bool(raw.get("inherited", False)),
    }


def check(document: Mapping[str, Any]) -> None:
    """Refuse what is not a settings document of this version."""
    if not isinstance(document, Mapping):
        raise UsageError("settings document: not a mapping")
    version = document.get(VERSION_KEY)
    if version != VERSION:
        raise UsageError(
            f"settings document: {VERSION_KEY} is {version!r}, this Ephyra reads {VERSION}"
        )
    unknown = set(document) - {VERSION_KEY, SOURCE_KEY, *SECTIONS}
    if unknown:
        raise UsageError(f"settings document: unknown keys {', '.join(sorted(unknown))}")
    for section in SECTIONS:
        if document.get(section) is not None and not isinstance(document[section], Mapping):
            raise UsageError(f"settings document: {section} is not a mapping")


# -- objects -> document --------------------------------------------------------------------
def document_of(
    objects: Objects, sections: Iterable[str], source: str, network_types: Iterable[str] = ()
) -> dict[str, Any]:
    """The document of ``objects`` (its sections: those the cloud has), sorted."""
    have = set(sections)

    def rows(kind: str, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        found = objects.get(kind) or {}
        return [{k: v for k, v in found[key].items() if k not in drop} for key in sorted(found)]

    doc: dict[str, Any] = {VERSION_KEY: VERSION, SOURCE_KEY: source}
    if "identity" in have:
        doc["identity"] = {
            "domains": rows("domain"),
            "projects": rows("project"),
            "roles": rows("role"),
            "users": rows("user"),
            "groups": rows("group"),
            "assignments": sorted(
                (_assignment_row(a) for a in (objects.get("assignment") or {}).values()),
                key=lambda a: json.dumps(a, sort_keys=True),
            ),
        }
    if "compute" in have:
        access: dict[str, list[str]] = {}
        for a in (objects.get("flavor_access") or {}).values():
            access.setdefault(a["flavor"], []).append(a["project"])
        flavors = [{**f, "access": sorted(access.get(f["name"], []))} for f in rows("flavor")]
        defaults = (objects.get("default_quota") or {}).get("default")
        doc["compute"] = {
            "flavors": flavors,
            "default_quotas": {k: v for k, v in (defaults or {}).items() if k != "name"},
            "quotas": {
                q["project"]: {k: v for k, v in q.items() if k != "project"} for q in rows("quota")
            },
            "aggregates": rows("aggregate"),
            "server_groups": rows("server_group"),
        }
    if "placement" in have:
        doc["placement"] = {
            "resource_classes": sorted(objects.get("resource_class") or {}),
            "traits": sorted(objects.get("trait") or {}),
        }
    if "network" in have:
        subnets: dict[str, list[dict[str, Any]]] = {}
        for s in rows("subnet"):
            subnets.setdefault(s["network"], []).append(
                {k: v for k, v in s.items() if k != "network"}
            )
        doc["network"] = {
            "network_types": sorted(set(network_types)),
            "networks": [{**n, "subnets": subnets.get(n["name"], [])} for n in rows("network")],
        }
    return doc


def _assignment_row(a: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "role": a["role"],
        a["actor"]: a["name"],
        a["target"]: a["on"],
        "inherited": a["inherited"],
    }


def dumps(document: Mapping[str, Any], fmt: str = "yaml") -> str:
    """The document as text: YAML (the default) or JSON, keys sorted."""
    if fmt == "json":
        return json.dumps(document, indent=2, sort_keys=True) + "\n"
    import yaml

    return str(yaml.safe_dump(dict(document), sort_keys=True, default_flow_style=False))


def loads(text: str) -> dict[str, Any]:
    """A document read from YAML or JSON text (JSON is YAML), checked."""
    import yaml

    try:
        found = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"settings document: not YAML nor JSON: {exc}") from exc
    if not isinstance(found, dict):
        raise UsageError("settings document: not a mapping")
    check(found)
    return found
