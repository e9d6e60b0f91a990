"""What a tenant has in one cloud, read through openstacksdk, and described without ids.

:func:`collect` reads a project's resources from a cloud as plain dicts (openstacksdk's
``to_dict()``), one list per kind; :func:`describe` turns them into :class:`Resource` rows
(what a migration plan lists: kind, name, size, and why one cannot move) and an *export*,
the same resources with every id replaced by the name it points to. Two clouds holding the
same tenant give equal exports: that is how a moved tenant is checked.

A key pair belongs to a user, not to a project: the key pairs of a tenant are those of the
users holding a role on its project.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ephyra.tenants.mapping import MARK_TRANSFER, MARKS

#: The kinds of resource, in the order a move brings them to the other cloud: what a
#: server refers to comes before the server.
KINDS = (
    "quota",
    "flavor",
    "keypair",
    "server_group",
    "security_group",
    "network",
    "subnet",
    "router",
    "image",
    "server",
)
#: Server states a copy can be made from (a snapshot of a running or stopped server).
MOVABLE_SERVER = ("ACTIVE", "SHUTOFF", "SUSPENDED", "PAUSED")
#: Image properties that belong to one cloud's Glance, not to the image.
GLANCE_OWN = frozenset(
    {
        "id",
        "owner",
        "created_at",
        "updated_at",
        "file",
        "schema",
        "self",
        "direct_url",
        "locations",
        "location",
        "status",
        "tags",
        "virtual_size",
        "stores",
        "os_hash_algo",
        "os_hash_value",
        "checksum",
        "name",
        "size",
        "disk_format",
        "container_format",
        "visibility",
        "min_disk",
        "min_ram",
        "protected",
        "os_hidden",
        "is_hidden",
        "properties",
        "image_location",
        "base_image_ref",
        "image_type",
        "instance_uuid",
        "user_id",
        "owner_specified.openstack.md5",
        "owner_specified.openstack.object",
        "owner_specified.openstack.sha256",
    }
)


@dataclass(frozen=True)
class Resource:
    """One resource of a tenant: what a plan lists."""

    kind: str
    name: str
    id: str
    size: int = 0  # bytes a move copies (images, server snapshots)
    blocker: str = ""  # why it cannot move ('' when it can)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "id": self.id,
            "size": self.size,
            "movable": not self.blocker,
            "blocker": self.blocker,
        }


@dataclass
class Tenant:
    """A tenant as read from one cloud: its resources and its export."""

    project: str
    resources: list[Resource] = field(default_factory=list)
    export: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def blocked(self) -> list[Resource]:
        return [r for r in self.resources if r.blocker]

    def size(self) -> int:
        return sum(r.size for r in self.resources if not r.blocker)


def collect(
    conn: Any, project_id: str, users: Mapping[str, str] | None = None
) -> dict[str, list[Any]]:
    """The project's resources in the cloud of ``conn`` (an admin connection), as plain
    dicts by kind; ``users``: the names of the users whose key pairs belong to the tenant,
    by id."""

    def dicts(items: Iterable[Any]) -> list[dict[str, Any]]:
        return [item.to_dict() if hasattr(item, "to_dict") else dict(item) for item in items]

    servers = dicts(conn.compute.servers(details=True, all_projects=True, project_id=project_id))
    flavor_names = {s["flavor"].get("original_name") or s["flavor"].get("name") for s in servers}
    flavors = [
        f
        for f in dicts(conn.compute.flavors(details=True, is_public=None))
        if f["name"] in flavor_names
    ]
    for flavor in flavors:
        flavor["extra_specs"] = dict(
            conn.compute.fetch_flavor_extra_specs(flavor["id"]).extra_specs or {}
        )
    raw: dict[str, list[Any]] = {
        "server": servers,
        "flavor": flavors,
        "server_group": [
            g
            for g in dicts(conn.compute.server_groups(all_projects=True))
            if g.get("project_id") == project_id
        ],
        "keypair": [
            {**k, "user": name}
            for user, name in sorted((users or {}).items())
            for k in dicts(conn.compute.keypairs(user_id=user))
        ],
        "image": [
            i
            for i in dicts(conn.image.images(owner=project_id))
            if MARK_TRANSFER not in (i.get("properties") or {})  # a migration's own
        ],
        "quota": [{"name": "compute", **_quota(conn.compute.get_quota_set(project_id))}],
    }
    if conn.has_service("network"):
        for kind, listing in (
            ("network", conn.network.networks),
            ("subnet", conn.network.subnets),
            ("router", conn.network.routers),
            ("security_group", conn.network.security_groups),
        ):
            raw[kind] = dicts(listing(project_id=project_id))
        raw["port"] = dicts(conn.network.ports(project_id=project_id))
        raw["quota"].append({"name": "network", **_quota(conn.network.get_quota(project_id))})
    return raw


def _quota(found: Any) -> dict[str, Any]:
    data = found.to_dict() if hasattr(found, "to_dict") else dict(found)
    drop = {"id", "name", "location", "project_id", "tenant_id", "reservation", "usage"}
    return {k: v for k, v in data.items() if k not in drop and isinstance(v, int)}


def describe(project: str, raw: Mapping[str, list[dict[str, Any]]]) -> Tenant:
    """The resources and the id-free export of what :func:`collect` read."""
    names = _Names(raw)
    tenant = Tenant(project)
    for kind in KINDS:
        rows = []
        for item in raw.get(kind, []):
            spec, resource = _DESCRIBE[kind](item, names, raw)
            rows.append(spec)
            tenant.resources.append(resource)
        tenant.export[kind] = sorted(rows, key=_order)
    return tenant


def _order(spec: Mapping[str, Any]) -> str:
    return f"{spec.get('name', '')}\0{sorted(spec.items(), key=str)}"


class _Names:
    """The name of what an id points to, for the export (an unknown id stays as it is)."""

    def __init__(self, raw: Mapping[str, list[dict[str, Any]]]) -> None:
        self._by_id: dict[str, str] = {}
        for kind in ("network", "subnet", "security_group", "image", "server_group", "flavor"):
            for item in raw.get(kind, []):
                self._by_id[str(item.get("id"))] = str(item.get("name") or "")

    def __call__(self, ident: object) -> str:
        return self._by_id.get(str(ident), str(ident)) if ident else ""


def _server(
    item: dict[str, Any], names: _Names, raw: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], Resource]:
    flavor = item.get("flavor") or {}
    image = item.get("image") or {}
    image_id = image.get("id") if isinstance(image, Mapping) else image
    ports = [p for p in raw.get("port", []) if p.get("device_id") == item.get("id")]
    networks = sorted({names(p.get("network_id")) for p in ports}) or sorted(
        item.get("addresses") or {}
    )
    groups = sorted(
        g["name"] for g in raw.get("server_group", []) if item.get("id") in g.get("member_ids", [])
    )
    spec = {
        "name": item.get("name"),
        "flavor": flavor.get("original_name") or flavor.get("name"),
        "key_name": item.get("key_name"),
        "metadata": {k: v for k, v in (item.get("metadata") or {}).items() if k not in MARKS},
        "server_groups": groups,
        "networks": networks,
        "security_groups": sorted({g.get("name", "") for g in item.get("security_groups") or []}),
        "status": item.get("status"),
    }
    blocker = ""
    volumes = item.get("attached_volumes") or item.get("volumes_attached") or []
    if not image_id:
        blocker = "boots from a volume: volumes are not moved"
    elif volumes:
        blocker = f"{len(volumes)} volume(s) attached: volumes are not moved"
    elif item.get("status") not in MOVABLE_SERVER:
        blocker = f"status {item.get('status')}: only {', '.join(MOVABLE_SERVER)} servers move"
    size = int(flavor.get("disk") or 0) * 1024**3
    return spec, Resource("server", str(item.get("name")), str(item.get("id")), size, blocker)


def _flavor(
    item: dict[str, Any], names: _Names, raw: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], Resource]:
    spec = {
        key: item.get(key)
        for key in ("name", "vcpus", "ram", "disk", "swap", "ephemeral", "is_public")
    }
    spec["extra_specs"] = dict(item.get("extra_specs") or {})
    return spec, Resource("flavor", str(item["name"]), str(item.get("id")))


def _keypair(
    item: dict[str, Any], names: _Names, raw: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], Resource]:
    spec = {
        "name": item.get("name"),
        "user": item.get("user"),
        "type": item.get("type") or "ssh",
        "public_key": (item.get("public_key") or "").strip(),
    }
    return spec, Resource("keypair", str(item["name"]), f"{item.get('user')}/{item['name']}")


def _server_group(
    item: dict[str, Any], names: _Names, raw: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], Resource]:
    policy = item.get("policy") or (item.get("policies") or [None])[0]
    spec = {"name": item.get("name"), "policy": policy, "rules": dict(item.get("rules") or {})}
    return spec, Resource("server_group", str(item["name"]), str(item.get("id")))


def _security_group(
    item: dict[str, Any], names: _Names, raw: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], Resource]:
    rules = [
        {
            "direction": r.get("direction"),
            "ethertype": r.get("ether_type") or r.get("ethertype"),
            "protocol": r.get("protocol"),
            "port_range_min": r.get("port_range_min"),
            "port_range_max": r.get("port_range_max"),
            "remote_ip_prefix": r.get("remote_ip_prefix"),
            "remote_group": names(r.get("remote_group_id")),
        }
        for r in item.get("security_group_rules") or []
    ]
    spec = {
        "name": item.get("name"),
        "description": item.get("description") or "",
        "rules": sorted(rules, key=str),
    }
    return spec, Resource("security_group", str(item.get("name")), str(item.get("id")))


def _network(
    item: dict[str, Any], names: _Names, raw: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], Resource]:
    spec = {
        "name": item.get("name"),
        "admin_state_up": item.get("is_admin_state_up", item.get("admin_state_up")),
        "shared": item.get("is_shared", item.get("shared")),
        "mtu": item.get("mtu"),
    }
    blocker = (
        "an external network: the other cloud has its own"
        if item.get("is_router_external", item.get("router:external"))
        else ""
    )
    return spec, Resource("network", str(item.get("name")), str(item.get("id")), blocker=blocker)


def _subnet(
    item: dict[str, Any], names: _Names, raw: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], Resource]:
    spec = {
        "name": item.get("name"),
        "network": names(item.get("network_id")),
        "cidr": item.get("cidr"),
        "ip_version": item.get("ip_version"),
        "gateway_ip": item.get("gateway_ip"),
        "enable_dhcp": item.get("is_dhcp_enabled", item.get("enable_dhcp")),
        "allocation_pools": sorted(item.get("allocation_pools") or [], key=str),
        "dns_nameservers": list(item.get("dns_nameservers") or []),
        "host_routes": sorted(item.get("host_routes") or [], key=str),
    }
    return spec, Resource("subnet", str(item.get("name")), str(item.get("id")))


def _router(
    item: dict[str, Any], names: _Names, raw: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], Resource]:
    ports = [
        p
        for p in raw.get("port", [])
        if p.get("device_id") == item.get("id")
        and p.get("device_owner") == "network:router_interface"
    ]
    interfaces = sorted(
        names(ip.get("subnet_id")) for p in ports for ip in p.get("fixed_ips") or []
    )
    gateway = item.get("external_gateway_info") or {}
    spec = {
        "name": item.get("name"),
        "admin_state_up": item.get("is_admin_state_up", item.get("admin_state_up")),
        "interfaces": interfaces,
        "external_network": names(gateway.get("network_id")),
    }
    return spec, Resource("router", str(item.get("name")), str(item.get("id")))


def _image(
    item: dict[str, Any], names: _Names, raw: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], Resource]:
    properties = {
        k: v
        for k, v in (item.get("properties") or {}).items()
        if k not in GLANCE_OWN and k not in MARKS
    }
    spec = {
        "name": item.get("name"),
        "disk_format": item.get("disk_format"),
        "container_format": item.get("container_format"),
        "size": item.get("size"),
        "checksum": item.get("os_hash_value") or item.get("checksum"),
        "visibility": item.get("visibility"),
        "min_disk": item.get("min_disk"),
        "min_ram": item.get("min_ram"),
        "properties": properties,
    }
    status = item.get("status")
    blocker = "" if status == "active" else f"status {status}: only active images are copied"
    size = int(item.get("size") or 0)
    return spec, Resource("image", str(item.get("name")), str(item.get("id")), size, blocker)


def _quota_row(
    item: dict[str, Any], names: _Names, raw: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], Resource]:
    return dict(item), Resource("quota", str(item["name"]), str(item["name"]))


_DESCRIBE = {
    "quota": _quota_row,
    "flavor": _flavor,
    "keypair": _keypair,
    "server_group": _server_group,
    "security_group": _security_group,
    "network": _network,
    "subnet": _subnet,
    "router": _router,
    "image": _image,
    "server": _server,
}
