"""The Nova server a bare-metal node carries when its control plane's Nova owns the node.

Where Nova runs on Ironic, a deployed node's instance is a Nova server: the node leaves the
old control plane only once its server is deleted there, and a server of the same name,
flavor, image, key pair, metadata and server group boots on the same node in the new one.
:class:`ServerRecord` is what the forklift writes down of the server before it touches
the node (no secret: Nova shows none of a server's), and :class:`Servers` the calls it makes
to a control plane's Nova, through the connection that reaches its Ironic (the catalog of
clouds.yaml's cloud).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ephyra.clouds import answer
from ephyra.errors import ServerInError, StepFailed

#: The compute API's microversion: the flavor shown by name in a server (2.47), a server
#: booted on a named host and node (2.74), and what this module reads of servers stays so.
MICROVERSION = "2.95"
COMPUTE = "compute"
#: Nova's attribute naming a server's node (its hypervisor: for Ironic, the node's UUID).
NODE_ATTR = "OS-EXT-SRV-ATTR:hypervisor_hostname"
HOST_ATTR = "OS-EXT-SRV-ATTR:host"


@dataclass(frozen=True)
class ServerRecord:
    """A server as it was on the node before the move."""

    id: str
    name: str
    project_id: str
    flavor: str
    image_id: str
    image_name: str
    status: str
    key_name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    group: str | None = None
    group_policy: str | None = None
    networks: tuple[str, ...] = ()
    #: booted with a config drive (Nova builds it anew for the new server)
    config_drive: bool = False
    #: the Cinder volumes attached to it (they do not move with the node)
    volumes: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        server: Mapping[str, Any],
        image_name: str,
        group: tuple[str, str] | None = None,
    ) -> ServerRecord:
        """From Nova's answer for the server (``GET /servers/{id}`` at :data:`MICROVERSION`),
        the image's name and the (name, policy) of its server group, if any."""
        image = server.get("image") or {}
        return cls(
            id=str(server["id"]),
            name=str(server["name"]),
            project_id=str(server["tenant_id"]),
            flavor=str((server.get("flavor") or {}).get("original_name", "")),
            image_id=str(image.get("id", "")) if isinstance(image, Mapping) else "",
            image_name=image_name,
            status=str(server.get("status", "")),
            key_name=server.get("key_name") or None,
            metadata={str(k): str(v) for k, v in (server.get("metadata") or {}).items()},
            group=group[0] if group else None,
            group_policy=group[1] if group else None,
            networks=tuple(sorted(server.get("addresses") or {})),
            config_drive=str(server.get("config_drive") or "").lower() in ("true", "1"),
            volumes=tuple(
                str(v.get("id"))
                for v in server.get("os-extended-volumes:volumes_attached") or ()
                if isinstance(v, Mapping)
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["networks"], data["volumes"] = list(self.networks), list(self.volumes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerRecord:
        values = dict(data)
        values["networks"] = tuple(values.get("networks") or ())
        values["volumes"] = tuple(values.get("volumes") or ())
        return cls(**values)

    def boot_body(
        self,
        host: str,
        node: str,
        flavor_id: str,
        image_id: str,
        networks: Iterable[str] = (),
        group_id: str | None = None,
    ) -> dict[str, Any]:
        """The request that boots this server on ``node`` of Nova's compute ``host``, with
        the ids the target has for its flavor, image, networks and server group."""
        wanted = [{"uuid": n} for n in networks]
        server: dict[str, Any] = {
            "name": self.name,
            "flavorRef": flavor_id,
            "imageRef": image_id,
            "networks": wanted or "none",
            "host": host,
            "hypervisor_hostname": node,
            "metadata": dict(self.metadata),
        }
        if self.key_name:
            server["key_name"] = self.key_name
        if self.config_drive:
            server["config_drive"] = True
        body: dict[str, Any] = {"server": server}
        if group_id:
            body["os:scheduler_hints"] = {"group": group_id}
        return body


class Servers:
    """One control plane's Nova, as the forklift uses it."""

    def __init__(self, cloud: str, conn: Any) -> None:
        self.cloud = cloud
        self._conn = conn

    def _call(
        self, verb: str, path: str, action: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        return answer(
            self._conn.compute,
            verb,
            path,
            self.cloud,
            action,
            COMPUTE,
            body,
            missing_ok=missing_ok,
            microversion=MICROVERSION,
        )

    def on_nodes(self, nodes: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The servers of every project on ``nodes``, by node UUID."""
        wanted = set(nodes)
        found: dict[str, dict[str, Any]] = {}
        listed = self._call("get", "/servers/detail?all_tenants=1", "list servers")
        for server in listed.get("servers", []):
            node = server.get(NODE_ATTR)
            if node in wanted:
                found[str(node)] = server
        return found

    def get(self, server_id: str) -> dict[str, Any] | None:
        found = self._call(
            "get", f"/servers/{server_id}", f"show server {server_id}", missing_ok=True
        )
        return None if found is None else dict(found["server"])

    def groups_of(self, server_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """(name, policy) of the server group of each of ``server_ids`` that is in one."""
        wanted = set(server_ids)
        groups = self._call("get", "/os-server-groups?all_projects=True", "list server groups")
        found = {}
        for group in groups.get("server_groups", []):
            for member in group.get("members") or []:
                if member in wanted:
                    found[str(member)] = (str(group["name"]), str(group.get("policy", "")))
        return found

    def record(
        self, server: Mapping[str, Any], groups: Mapping[str, tuple[str, str]] | None = None
    ) -> ServerRecord:
        """What the forklift keeps of ``server``: the image named, the group looked up
        (in ``groups``, :meth:`groups_of` of several servers, when given)."""
        image = server.get("image") or {}
        image_id = str(image.get("id", "")) if isinstance(image, Mapping) else ""
        name = ""
        if image_id:
            shown = answer(
                self._conn.image,
                "get",
                f"/images/{image_id}",
                self.cloud,
                f"show image {image_id}",
                "image",
                missing_ok=True,
            )
            name = str((shown or {}).get("name", ""))
        if groups is None:
            groups = self.groups_of([str(server["id"])])
        return ServerRecord.of(server, name, groups.get(str(server["id"])))

    def delete(self, server_id: str) -> None:
        self._call("delete", f"/servers/{server_id}", f"delete server {server_id}", missing_ok=True)

    # -- the target's side ---------------------------------------------------------------
    def node_host(self, node: str) -> str | None:
        """The nova-compute host that serves ``node`` (None while Nova does not list it)."""
        found = self._call(
            "get",
            f"/os-hypervisors/detail?hypervisor_hostname_pattern={node}",
            f"find hypervisor {node}",
            missing_ok=True,
        )
        for hypervisor in (found or {}).get("hypervisors", []):
            if hypervisor.get("hypervisor_hostname") == node:
                return str((hypervisor.get("service") or {}).get("host") or "") or None
        return None

    def offers(self, node: str, resource_class: str) -> bool:
        """Whether Nova offers ``node``: a hypervisor, and a provider in Placement with one
        free unit of the node's resource class (what a boot pinned to it needs)."""
        if self.node_host(node) is None:
            return False
        inventory = answer(
            self._conn.placement,
            "get",
            f"/resource_providers/{node}/inventories",
            self.cloud,
            f"read the inventory of {node}",
            "placement",
            missing_ok=True,
        )
        wanted = custom_class(resource_class)
        unit: Mapping[str, Any] = ((inventory or {}).get("inventories") or {}).get(wanted) or {}
        return int(unit.get("total", 0)) - int(unit.get("reserved", 0)) >= 1

    def missing(self, records: Iterable[ServerRecord]) -> list[str]:
        """What the servers ``records`` need and this cloud lacks: flavors, images,
        networks and key pairs by name, server groups by name in the server's project
        (each named once)."""
        records = list(records)
        found = self._catalog(records)
        return sorted({f"{what} (server {r.name})" for r in records for what in found.lacking(r)})

    def ids_for(self, record: ServerRecord) -> BootIds:
        """The ids this cloud has for what ``record`` names; StepFailed naming what is
        missing."""
        found = self._catalog([record])
        lacking = found.lacking(record)
        if lacking:
            raise StepFailed(f"{self.cloud} has no {', '.join(lacking)} for server {record.name}")
        return found.ids(record)

    def _catalog(self, records: list[ServerRecord]) -> Catalog:
        """The flavors, images, networks, key pairs and server groups ``records`` may
        name, as this cloud lists them (networks, key pairs and groups only if named)."""
        flavors = self._call("get", "/flavors/detail?is_public=None", "list flavors")
        images = answer(
            self._conn.image, "get", "/images?limit=1000", self.cloud, "list images", "image"
        )
        networks: Mapping[str, Any] = {}
        if any(r.networks for r in records):
            networks = answer(
                self._conn.network, "get", "/networks", self.cloud, "list networks", "network"
            )
        keypairs: Mapping[str, Any] = {}
        if any(r.key_name for r in records):  # the forklift's user's: it boots the servers
            keypairs = self._call("get", "/os-keypairs", "list key pairs")
        groups: Mapping[str, Any] = {}
        if any(r.group for r in records):
            groups = self._call("get", "/os-server-groups?all_projects=True", "list server groups")
        return Catalog(
            flavors=flavors.get("flavors", []),
            images=images.get("images", []),
            networks=networks.get("networks", []),
            keypairs=[k.get("keypair", {}) for k in keypairs.get("keypairs", [])],
            groups=groups.get("server_groups", []),
        )

    def in_project(self, project_id: str) -> Servers:
        """This Nova as seen from ``project_id`` (a server is created in the project of
        the token): the same login scoped to that project, unless it is so already."""
        if project_id == getattr(self._conn, "current_project_id", project_id):
            return self
        try:
            return Servers(self.cloud, self._conn.connect_as_project(project_id))
        except Exception as exc:
            raise StepFailed(
                f"{self.cloud}: cannot act in project {project_id}: {exc.__class__.__name__};"
                " the forklift's user needs a role in it to boot its server"
            ) from exc

    def can_act_in(self, project_id: str) -> bool:
        """Whether this login gets a token scoped to ``project_id`` (a role there)."""
        try:
            scoped = self.in_project(project_id)
            scoped._conn.authorize()
        except Exception:  # StepFailed, or Keystone's 401 for a project without a role
            return False
        return True

    def boot(self, body: Mapping[str, Any], action: str) -> str:
        """Create the server ``body`` describes; its id."""
        made = self._call("post", "/servers", action, dict(body))
        return str(made["server"]["id"])

    def status(self, server_id: str) -> str | None:
        """The server's status (None once it is gone); StepFailed if it is in error."""
        server = self.get(server_id)
        if server is None:
            return None
        if server.get("status") == "ERROR":
            fault = (server.get("fault") or {}).get("message", "no fault given")
            raise ServerInError(
                f"server {server.get('name')} ({server_id}) in {self.cloud}: {fault}"
            )
        return str(server.get("status"))


@dataclass(frozen=True)
class BootIds:
    """What a server is booted with, by the ids of the cloud it boots in."""

    flavor: str
    image: str
    networks: tuple[str, ...]
    group: str | None


@dataclass(frozen=True)
class Catalog:
    """What one cloud has that a server is booted with, as its APIs list it."""

    flavors: list[Mapping[str, Any]]
    images: list[Mapping[str, Any]]
    networks: list[Mapping[str, Any]]
    keypairs: list[Mapping[str, Any]]
    groups: list[Mapping[str, Any]]

    def _group(self, record: ServerRecord) -> str:
        mine = [g for g in self.groups if g.get("project_id") == record.project_id]
        return _one(mine, record.group) if record.group else ""

    def lacking(self, record: ServerRecord) -> list[str]:
        """What ``record`` names and this cloud has not (or has more than one of)."""
        keys = {str(k.get("name")) for k in self.keypairs}
        wanted = (
            (f"flavor {record.flavor!r}", _one(self.flavors, record.flavor)),
            (
                f"image {record.image_name!r}",
                not record.image_name or _one(self.images, record.image_name),
            ),
            *((f"network {n!r}", _one(self.networks, n)) for n in record.networks),
            (f"key pair {record.key_name!r}", not record.key_name or record.key_name in keys),
            (f"server group {record.group!r}", not record.group or self._group(record)),
        )
        return [what for what, found in wanted if not found]

    def ids(self, record: ServerRecord) -> BootIds:
        image = _one(self.images, record.image_name) if record.image_name else ""
        networks = tuple(_one(self.networks, n) for n in record.networks)
        return BootIds(
            _one(self.flavors, record.flavor), image, networks, self._group(record) or None
        )


def _one(items: Iterable[Mapping[str, Any]], name: str) -> str:
    """The id of the one item named ``name`` ('' if none or several)."""
    found = [str(i["id"]) for i in items if i.get("name") == name]
    return found[0] if len(found) == 1 else ""


def custom_class(resource_class: str) -> str:
    """Placement's name of an Ironic resource class, as Nova's ironic driver makes it
    (``baremetal-small`` -> ``CUSTOM_BAREMETAL_SMALL``)."""
    return "CUSTOM_" + "".join(c if c.isalnum() else "_" for c in resource_class.upper())
