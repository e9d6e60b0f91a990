"""One cloud's compute service (Nova) and its Placement, through openstacksdk.

Calls go through openstacksdk's session (clouds.yaml, auth, endpoints) as plain REST
calls with an explicit microversion: one request per action, none of the refetches its
resource layer adds, and errors translated at the edge like every cloud call in Ephyra.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from openstack import exceptions as sdk_exc
from openstack import utils as sdk_utils

from ephyra.clouds import COMPUTE, PLACEMENT, connect, translated
from ephyra.errors import CloudError
from ephyra.inventory.openstack import ANTI_AFFINITY

#: Newest compute microversion Ephyra speaks; 2.60 is the oldest it accepts (Queens).
COMPUTE_MAX = "2.95"
COMPUTE_MIN = "2.60"
#: Evacuation keeps the server's power state up to 2.94 (2.95 always lands it stopped).
EVACUATE_MICROVERSION = "2.94"
PLACEMENT_MICROVERSION = "1.14"
#: The newest microversion of the compute API's image proxy (image properties).
IMAGES_MICROVERSION = "2.35"
#: Placement's microversion where an allocation's consumer has a generation (1.28).
AUDIT_MICROVERSION = "1.28"
#: Hypervisor listings are read below 2.88, whose detail asks every compute for its
#: uptime over RPC: a compute that just died but is not yet "down" would stall the call.
HYPERVISORS_MICROVERSION = "2.87"

#: Migration records in these states are over: Nova has let go of the source host
#: (its allocation freed) or given up.
MIGRATION_FINAL = frozenset(
    {"completed", "confirmed", "done", "error", "failed", "cancelled", "reverted"}
)
#: A cold migration's record once the server waits in VERIFY_RESIZE for confirmation.
TO_CONFIRM = "finished"


@dataclass(frozen=True)
class Service:
    """A nova-compute service."""

    id: str
    host: str
    enabled: bool
    up: bool
    forced_down: bool
    reason: str
    zone: str = ""  # its availability zone

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Service:
        return cls(
            id=str(raw["id"]),
            host=raw["host"],
            enabled=raw["status"] == "enabled",
            up=raw["state"] == "up",
            forced_down=bool(raw.get("forced_down")),
            reason=raw.get("disabled_reason") or "",
            zone=raw.get("zone") or "",
        )


@dataclass(frozen=True)
class Server:
    id: str
    name: str
    project: str
    status: str
    task_state: str | None
    host: str | None
    ram: int = 0
    vcpus: int = 0
    disk: int = 0
    groups: tuple[str, ...] = field(default=())
    #: What its fate is read from (ephyra.compute.fate): its embedded flavor's extra
    #: specs, its image ('' when booted from a volume), its tags and metadata.
    extra_specs: Mapping[str, str] = field(default_factory=dict, compare=False)
    image: str = ""
    tags: tuple[str, ...] = field(default=(), compare=False)
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any], groups: tuple[str, ...] = ()) -> Server:
        flavor = raw.get("flavor") or {}
        image = raw.get("image") or {}
        return cls(
            id=raw["id"],
            name=raw.get("name") or raw["id"],
            project=raw.get("tenant_id") or "",
            status=raw.get("status") or "",
            task_state=raw.get("OS-EXT-STS:task_state"),
            host=raw.get("OS-EXT-SRV-ATTR:host"),
            ram=int(flavor.get("ram") or 0),
            vcpus=int(flavor.get("vcpus") or 0),
            disk=int(flavor.get("disk") or 0) + int(flavor.get("ephemeral") or 0),
            groups=groups,
            extra_specs={str(k): str(v) for k, v in (flavor.get("extra_specs") or {}).items()},
            image=str(image.get("id") or "") if isinstance(image, Mapping) else "",
            tags=tuple(str(t) for t in raw.get("tags") or ()),
            metadata={str(k): str(v) for k, v in (raw.get("metadata") or {}).items()},
        )

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id[:8]})"

    @property
    def busy(self) -> bool:
        """A task (migration, resize, rebuild...) is under way."""
        return self.task_state is not None


class ComputeCloud:
    """The compute side of one cloud named in clouds.yaml."""

    def __init__(self, name: str, conn: Any) -> None:
        self.name = name
        self._conn = conn
        self._microversion: str | None = None
        self._images: dict[str, dict[str, Any]] = {}

    @classmethod
    def connect(cls, name: str) -> ComputeCloud:
        return cls(name, connect(name))

    # -- plumbing ---------------------------------------------------------------
    @property
    def microversion(self) -> str:
        if self._microversion is None:
            with translated(self.name, "negotiate the compute API version", COMPUTE):
                found = sdk_utils.maximum_supported_microversion(self._conn.compute, COMPUTE_MAX)
                oldest = sdk_utils.supports_microversion(self._conn.compute, COMPUTE_MIN)
            if found is None or oldest is False:
                raise CloudError(
                    f"{self.name}: the compute API must offer microversion {COMPUTE_MIN} or newer"
                )
            self._microversion = str(found)
        return self._microversion

    def _call(
        self,
        verb: str,
        path: str,
        action: str,
        body: Any = None,
        *,
        service: str = "compute",
        microversion: str | None = None,
        missing_ok: bool = False,
    ) -> Any:
        if microversion is None:
            microversion = PLACEMENT_MICROVERSION if service == "placement" else self.microversion
        with translated(self.name, action, PLACEMENT if service == "placement" else COMPUTE):
            proxy = getattr(self._conn, service)  # its first use authenticates
            response = getattr(proxy, verb)(
                path, json=body, microversion=microversion, raise_exc=False
            )
            if missing_ok and response.status_code == 404:
                return None
            sdk_exc.raise_from_response(response, error_message=f"{self.name}: {action}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def answers(self) -> None:
        """Raise unless the compute API lists servers (what its users ask it most)."""
        self._call("get", "/servers?limit=1", "list servers")

    # -- services ------------------------------------------------------------
    def services(self) -> list[Service]:
        raw = self._call("get", "/os-services?binary=nova-compute", "list compute services")
        return [Service.from_api(s) for s in raw["services"]]

    def every_service(self) -> list[dict[str, Any]]:
        """Every Nova service record (all binaries, all cells), as the API gives it."""
        raw = self._call("get", "/os-services", "list services")
        return list(raw["services"])

    def service(self, host: str) -> Service:
        raw = self._call(
            "get",
            "/os-services?" + urlencode({"binary": "nova-compute", "host": host}),
            f"show the compute service of {host}",
        )
        found = [Service.from_api(s) for s in raw["services"] if s["host"] == host]
        if not found:
            raise CloudError(f"{self.name}: no nova-compute service on host {host!r}")
        return found[0]

    def service_records(self, host: str) -> list[dict[str, Any]]:
        """Every Nova service (any binary) of ``host``, as the API gives it."""
        raw = self._call(
            "get", "/os-services?" + urlencode({"host": host}), f"list the services of {host}"
        )
        return [s for s in raw["services"] if s["host"] == host]

    def disable(self, service: Service, reason: str) -> None:
        self._call(
            "put",
            f"/os-services/{service.id}",
            f"disable nova-compute on {service.host}",
            {"status": "disabled", "disabled_reason": reason},
        )

    def find_service(self, host: str) -> Service | None:
        """The nova-compute service of ``host``, or None when the cloud has none."""
        found = [s for s in self.service_records(host) if s.get("binary") == "nova-compute"]
        return Service.from_api(found[0]) if found else None

    def force_down(self, service: Service, down: bool = True) -> None:
        """Mark the service down (fenced: its host's nova-compute is known to be stopped),
        or with ``down`` false no longer so."""
        self._call(
            "put",
            f"/os-services/{service.id}",
            f"{'force' if down else 'unforce'} nova-compute down on {service.host}",
            {"forced_down": down},
        )

    def delete_service(self, service: Service) -> None:
        """Delete the compute service record; Nova deletes its compute nodes and their
        resource providers with it. Gone already: nothing done."""
        self._call(
            "delete",
            f"/os-services/{service.id}",
            f"delete nova-compute of {service.host}",
            missing_ok=True,
        )

    def enable(self, service: Service) -> None:
        self._call(
            "put",
            f"/os-services/{service.id}",
            f"enable nova-compute on {service.host}",
            {"status": "enabled"},
        )

    # -- servers ---------------------------------------------------------------
    def _groups(self) -> list[dict[str, Any]]:
        raw = self._call("get", "/os-server-groups?all_projects=True&limit=1000", "list groups")
        return list(raw["server_groups"])

    def group_index(self) -> dict[str, tuple[str, ...]]:
        """Server id -> the server groups it is a member of."""
        index: dict[str, list[str]] = {}
        for group in self._groups():
            for member in group.get("members") or []:
                index.setdefault(member, []).append(group["id"])
        return {k: tuple(v) for k, v in index.items()}

    def anti_affinity(self) -> frozenset[str]:
        """The server groups that keep their servers on different hosts (hard or soft)."""
        return frozenset(
            g["id"]
            for g in self._groups()
            if {g.get("policy"), *(g.get("policies") or ())} & ANTI_AFFINITY
        )

    def servers_on(
        self, host: str, groups: Mapping[str, tuple[str, ...]] | None = None
    ) -> list[Server]:
        """Every server (all projects) whose compute host is ``host``."""
        servers = [
            Server.from_api(s, (groups or {}).get(s["id"], ()))
            for s in self._servers_detail(f"list the servers of {host}", host=host)
        ]
        return [s for s in servers if s.host == host]

    def _servers_detail(self, action: str, **query: str) -> list[dict[str, Any]]:
        """``GET /servers/detail`` of every project with ``query``, page after page."""
        params = urlencode({"all_tenants": "True", **query, "limit": 1000})
        found: list[dict[str, Any]] = []
        path: str | None = f"/servers/detail?{params}"
        while path:
            raw = self._call("get", path, action)
            found += raw["servers"]
            path = _next_link(raw.get("servers_links"))
        return found

    def server(self, server_id: str) -> Server | None:
        raw = self._call(
            "get", f"/servers/{server_id}", f"show server {server_id}", missing_ok=True
        )
        return Server.from_api(raw["server"]) if raw else None

    def _action(self, server: str, body: Mapping[str, Any], what: str, **kw: Any) -> None:
        self._call("post", f"/servers/{server}/action", f"{what} server {server}", body, **kw)

    def live_migrate(self, server: str, host: str | None = None) -> None:
        self._action(
            server, {"os-migrateLive": {"host": host, "block_migration": "auto"}}, "live-migrate"
        )

    def cold_migrate(self, server: str, host: str | None = None) -> None:
        self._action(server, {"migrate": {"host": host} if host else None}, "migrate")

    def confirm_resize(self, server: str) -> None:
        self._action(server, {"confirmResize": None}, "confirm the migration of")

    def stop(self, server: str) -> None:
        self._action(server, {"os-stop": None}, "stop")

    def start(self, server: str) -> None:
        self._action(server, {"os-start": None}, "start")

    def evacuate(self, server: str, host: str | None = None) -> None:
        self._action(
            server,
            {"evacuate": {"host": host} if host else {}},
            "evacuate",
            microversion=EVACUATE_MICROVERSION,
        )

    def image_properties(self, image: str) -> dict[str, Any]:
        """The properties of ``image`` (none for '' or an image gone), once per image:
        read through the compute API's image proxy, which microversion 2.35 still offers."""
        if not image:
            return {}
        if image not in self._images:
            raw = self._call(
                "get",
                f"/images/{image}",
                f"show image {image}",
                microversion=IMAGES_MICROVERSION,
                missing_ok=True,
            )
            self._images[image] = dict(((raw or {}).get("image") or {}).get("metadata") or {})
        return self._images[image]

    # -- migrations ----------------------------------------------------------------
    def migrations(self, server: str) -> list[Any]:
        """The migration records (all types) of ``server``, newest first."""
        raw = self._call(
            "get",
            "/os-migrations?" + urlencode({"instance_uuid": server}),
            f"list the migrations of {server}",
        )
        return sorted(raw["migrations"], key=lambda m: int(m["id"]), reverse=True)

    def live_migration(self, server: str) -> Any | None:
        """The live migration of ``server`` under way, if any."""
        raw = self._call(
            "get", f"/servers/{server}/migrations", f"list migrations of {server}", missing_ok=True
        )
        found = (raw or {}).get("migrations") or []
        return found[0] if found else None

    def abort_live_migration(self, server: str, migration: int) -> None:
        self._call(
            "delete",
            f"/servers/{server}/migrations/{migration}",
            f"abort migration {migration} of {server}",
            missing_ok=True,
        )

    def force_complete(self, server: str, migration: int) -> None:
        self._call(
            "post",
            f"/servers/{server}/migrations/{migration}/action",
            f"force-complete migration {migration} of {server}",
            {"force_complete": None},
        )

    # -- placement -------------------------------------------------------------------
    def hypervisors(self) -> dict[str, str]:
        """Compute service host -> resource provider uuid (the compute node's uuid)."""
        raw = self._hypervisors()
        return {h["service"]["host"]: str(h["id"]) for h in raw}

    def hypervisor_versions(self) -> dict[str, int]:
        """Compute service host -> the version its hypervisor reports."""
        return {
            h["service"]["host"]: int(h.get("hypervisor_version") or 0) for h in self._hypervisors()
        }

    def _hypervisors(self) -> list[dict[str, Any]]:
        microversion = HYPERVISORS_MICROVERSION
        with translated(self.name, "negotiate the compute API version", COMPUTE):
            supported = sdk_utils.supports_microversion(self._conn.compute, microversion)
        if supported is False:
            microversion = self.microversion
        raw = self._call(
            "get", "/os-hypervisors/detail", "list hypervisors", microversion=microversion
        )
        return list(raw["hypervisors"])

    def inventories(self, provider: str) -> dict[str, dict[str, Any]]:
        raw = self._call(
            "get",
            f"/resource_providers/{provider}/inventories",
            f"read the inventory of {provider}",
            service="placement",
        )
        return dict(raw["inventories"])

    def usages(self, provider: str) -> dict[str, int]:
        raw = self._call(
            "get",
            f"/resource_providers/{provider}/usages",
            f"read the usage of {provider}",
            service="placement",
        )
        return {k: int(v) for k, v in raw["usages"].items()}

    def provider(self, uuid: str) -> dict[str, Any] | None:
        """A resource provider, or None when this Placement has none of that uuid."""
        return self._call(  # type: ignore[no-any-return]
            "get",
            f"/resource_providers/{uuid}",
            f"show resource provider {uuid}",
            service="placement",
            missing_ok=True,
        )

    def providers_named(self, name: str) -> list[dict[str, Any]]:
        """The resource providers of that name (a compute node's is its hypervisor name)."""
        raw = self._call(
            "get",
            "/resource_providers?" + urlencode({"name": name}),
            f"find resource provider {name}",
            service="placement",
        )
        return list(raw["resource_providers"])

    def delete_provider(self, uuid: str) -> None:
        self._call(
            "delete",
            f"/resource_providers/{uuid}",
            f"delete resource provider {uuid}",
            service="placement",
            missing_ok=True,
        )

    def consumers_on(self, provider: str) -> list[str]:
        """The consumers (servers, migrations) holding allocations against ``provider``."""
        return sorted(self.allocations_on(provider))

    def traits(self, provider: str) -> tuple[list[str], int]:
        """The traits of ``provider`` and its generation."""
        raw = self._call(
            "get",
            f"/resource_providers/{provider}/traits",
            f"read the traits of {provider}",
            service="placement",
        )
        return sorted(raw["traits"]), int(raw["resource_provider_generation"])

    def add_traits(self, provider: str, wanted: list[str]) -> list[str]:
        """Give ``provider`` the traits ``wanted`` (custom ones created first); the ones
        added. One conflict (another writer) is read again and retried once."""
        for name in wanted:
            if name.startswith("CUSTOM_"):
                self._call("put", f"/traits/{name}", f"create trait {name}", service="placement")
        for attempt in (1, 2):
            have, generation = self.traits(provider)
            missing = sorted(set(wanted) - set(have))
            if not missing:
                return []
            body = {"traits": sorted({*have, *missing}), "resource_provider_generation": generation}
            with translated(self.name, f"set the traits of {provider}", PLACEMENT):
                response = self._conn.placement.put(
                    f"/resource_providers/{provider}/traits",
                    json=body,
                    microversion=PLACEMENT_MICROVERSION,
                    raise_exc=False,
                )
                if response.status_code == 409 and attempt == 1:
                    continue
                sdk_exc.raise_from_response(response, error_message=f"{self.name}: traits")
            return missing
        return []

    # -- aggregates -----------------------------------------------------------------
    def aggregates(self) -> list[dict[str, Any]]:
        raw = self._call("get", "/os-aggregates", "list host aggregates")
        return list(raw["aggregates"])

    def add_to_aggregate(self, aggregate: int | str, host: str) -> None:
        """Add ``host`` to the aggregate (Nova refuses a host it has not mapped to a cell)."""
        self._call(
            "post",
            f"/os-aggregates/{aggregate}/action",
            f"add {host} to aggregate {aggregate}",
            {"add_host": {"host": host}},
        )

    # -- the Placement audit ----------------------------------------------------------
    def servers(self) -> dict[str, str]:
        """Every server (all projects): id -> its compute host ('' for none)."""
        listed = self._servers_detail("list servers")
        return {s["id"]: s.get("OS-EXT-SRV-ATTR:host") or "" for s in listed}

    def migrations_under_way(self) -> dict[str, str]:
        """Migrations not yet over: migration uuid -> its server's id. Each holds
        allocations of its own (the source's) while it runs."""
        raw = self._call("get", "/os-migrations", "list migrations", microversion="2.59")
        return {
            m["uuid"]: m["instance_uuid"]
            for m in raw["migrations"]
            if m.get("status") not in MIGRATION_FINAL
        }

    def compute_providers(self) -> dict[str, str]:
        """Each compute node's resource provider (its uuid, the hypervisor's id from
        microversion 2.53) -> the host of its nova-compute."""
        return {
            str(h["id"]): str((h.get("service") or {}).get("host") or "")
            for h in self._hypervisors()
        }

    def providers_beside(self, known: Collection[str]) -> dict[str, str]:
        """Root resource providers outside ``known`` that offer VCPU or MEMORY_MB, as a
        compute node's does: uuid -> name."""
        raw = self._call("get", "/resource_providers", "list providers", service="placement")
        found = {}
        for p in raw["resource_providers"]:
            uuid = p["uuid"]
            if uuid in known or p.get("root_provider_uuid", uuid) != uuid:
                continue
            if {"VCPU", "MEMORY_MB"} & set(self.inventories(uuid)):
                found[uuid] = p["name"]
        return found

    def allocations_on(self, provider: str) -> dict[str, dict[str, int]]:
        """Consumer -> the resources it holds against ``provider``."""
        raw = self._call(
            "get",
            f"/resource_providers/{provider}/allocations",
            f"read the allocations against {provider}",
            service="placement",
            missing_ok=True,
        )
        allocations = (raw or {}).get("allocations") or {}
        return {c: dict(a.get("resources") or {}) for c, a in allocations.items()}

    def drop_allocation(self, consumer: str, provider: str) -> None:
        """Remove what ``consumer`` holds against ``provider``, keeping its other
        allocations (a consumer with none left is deleted), as ``nova-manage placement
        audit --delete`` does."""
        raw = self._call(
            "get",
            f"/allocations/{consumer}",
            f"read the allocations of {consumer}",
            service="placement",
            microversion=AUDIT_MICROVERSION,
        )
        held = (raw or {}).get("allocations") or {}
        kept = {rp: {"resources": a["resources"]} for rp, a in held.items() if rp != provider}
        if not kept:
            self._call(
                "delete",
                f"/allocations/{consumer}",
                f"delete the allocations of {consumer}",
                service="placement",
                missing_ok=True,
            )
            return
        body = {
            "allocations": kept,
            "project_id": raw["project_id"],
            "user_id": raw["user_id"],
            "consumer_generation": raw.get("consumer_generation"),
        }
        self._call(
            "put",
            f"/allocations/{consumer}",
            f"remove the allocation of {consumer} against {provider}",
            body,
            service="placement",
            microversion=AUDIT_MICROVERSION,
        )

    def allocations(self, consumer: str) -> dict[str, dict[str, int]]:
        """Resource provider uuid -> resources allocated to ``consumer``."""
        raw = self._call(
            "get",
            f"/allocations/{consumer}",
            f"read the allocations of {consumer}",
            service="placement",
        )
        return {rp: dict(a["resources"]) for rp, a in (raw or {}).get("allocations", {}).items()}


def _next_link(links: Any) -> str | None:
    for link in links or []:
        if link.get("rel") == "next":
            href = str(link["href"])
            return href[href.index("/servers/") :]
    return None
