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
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["networks"] = list(self.networks)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerRecord:
        values = dict(data)
        values["networks"] = tuple(values.get("networks") or ())
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
        body: dict[str, Any] = {"server": server}
        if group_id:
            body["os:scheduler_hints"] = {"group": group_id}
        return body


class Servers:
    """One control plane's Nova, as the forklift uses it."""

    def __init__(self, cloud: str, conn: Any) -> None:
        self.cloud = cloud
        self._conn = conn

    def _call(self, verb: str, path: str, action: str, body: Any = None, **extra: Any) -> Any:
        return answer(
            self._conn.compute,
            verb,
            path,
            self.cloud,
            action,
            COMPUTE,
            body,
            microversion=MICROVERSION,
            **extra,
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
        found = answer(
            self._conn.compute,
            "get",
            f"/servers/{server_id}",
            self.cloud,
            f"show server {server_id}",
            COMPUTE,
            missing_ok=True,
            microversion=MICROVERSION,
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

    def record(self, server: Mapping[str, Any]) -> ServerRecord:
        """What the forklift keeps of ``server``: the image named, the group looked up."""
        image = server.get("image") or {}
        image_id = str(image.get("id", "")) if isinstance(image, Mapping) else ""
        name = ""
        if image_id:
            shown = answer(
                self._conn.image,
                "get",
                f"/v2/images/{image_id}",
                self.cloud,
                f"show image {image_id}",
                "image",
                missing_ok=True,
            )
            name = str((shown or {}).get("name", ""))
        group = self.groups_of([str(server["id"])]).get(str(server["id"]))
        return ServerRecord.of(server, name, group)

    def delete(self, server_id: str) -> None:
        answer(
            self._conn.compute,
            "delete",
            f"/servers/{server_id}",
            self.cloud,
            f"delete server {server_id}",
            COMPUTE,
            missing_ok=True,
        )
