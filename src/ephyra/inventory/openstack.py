"""The ``openstack`` source: what a cloud's own APIs say it runs, through openstacksdk.

``openstack[:CLOUD]`` (default: the cloud of ``--os-cloud``/``OS_CLOUD``), every region:
Keystone's regions when the cloud has Keystone, else the ``regions`` its clouds.yaml entry
names, else its one region. In each region, for each service type
(:data:`SERVICE_TYPES`):

1. its endpoint: an ``<type>_endpoint_override`` of clouds.yaml, else the catalog's. A
   cloud without a catalog (``auth_type: none`` or ``admin_token``) has only the
   services clouds.yaml names an endpoint for;
2. the endpoint must answer (else a :class:`~ephyra.errors.CloudError` naming it) with a
   version document of that service: its maximum microversion (else its version) is
   the version of the API service (``nova-api``...) in the inventory's endpoints, and on
   the host the endpoint's address names when the inventory has it;
3. the listings: Nova's services and hypervisors (``hypervisor_version`` as the version
   of ``nova-compute``), one paginated all-projects server listing (servers per
   host), the host aggregates and the anti-affinity server groups (each host's
   ``availability_zone``, ``aggregates`` and ``anti_affinity`` facts: its place in the
   cloud's topology, which batches of an upgrade keep to); Neutron's agents; Cinder's
   services and one all-projects volume listing (volumes per storage host); Ironic's
   conductors and nodes (each node a host of role ``baremetal`` with its provision
   state, power state and maintenance as facts); Keystone's regions, services and
   endpoints.

A service type the cloud does not have (no endpoint, an endpoint that answers as
something else, or a listing it does not serve: HTTP 404) is not an error: the inventory's
fact ``absent`` names it and says why, per cloud and region.

A host's roles come from its services (:func:`ephyra.inventory.catalog.roles_of`):
nova-compute -> compute; nova-api/conductor/scheduler, cinder-scheduler, ironic-conductor
-> controller; Neutron's L3, DHCP and metadata agents -> network; cinder-volume -> storage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import openstack
import openstack.config
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1.identity.base import BaseIdentityPlugin
from openstack import exceptions as sdk_exc
from openstack.config import exceptions as config_exc
from oslo_utils import versionutils

from ephyra import clouds
from ephyra.errors import CloudError, CloudNotFound, ControlPlaneUnreachable, UsageError
from ephyra.inventory import catalog
from ephyra.inventory.catalog import BAREMETAL
from ephyra.inventory.model import (
    DISABLED,
    DOWN,
    UP,
    Endpoint,
    Inventory,
    Service,
    inventory,
    make_host,
)

#: Service types looked for, in this order, and the major API version each must serve.
SERVICE_TYPES: dict[str, int] = {
    "identity": 3,
    "image": 2,
    "placement": 1,
    "compute": 2,
    "network": 2,
    "block-storage": 3,
    "baremetal": 1,
}
#: Keystone's older names of the same service types.
TYPE_ALIASES = {"volumev3": "block-storage", "volumev2": "block-storage", "volume": "block-storage"}
#: Servers per page of the all-projects server listing.
PAGE = 1000
#: Seconds an endpoint gets to answer its version document.
TIMEOUT = 30.0
#: Ironic lists conductors from this microversion on.
CONDUCTORS_MICROVERSION = (1, 49)


@dataclass
class Probe:
    """One service type of one region: its endpoint and version, or why it is absent."""

    service_type: str
    region: str
    url: str = ""
    version: str = ""
    microversion: tuple[int, int] | None = None
    absent: str = ""

    @property
    def present(self) -> bool:
        return not self.absent


#: The server group policies that keep their servers on different hosts.
ANTI_AFFINITY = frozenset({"anti-affinity", "soft-anti-affinity"})


@dataclass
class _Host:
    roles: set[str] = field(default_factory=set)
    services: list[Service] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    servers: int = 0
    volumes: int = 0


class OpenStackSource:
    """Discovers one cloud of clouds.yaml."""

    def __init__(self, cloud: str) -> None:
        self.cloud = cloud
        self.name = f"openstack:{cloud}"

    @classmethod
    def from_argument(cls, argument: str, cloud: str | None) -> OpenStackSource:
        name = argument or cloud
        if not name:
            raise UsageError(
                "inventory source openstack needs a cloud: openstack:CLOUD, "
                "or --os-cloud NAME / OS_CLOUD"
            )
        return cls(name)

    def discover(self) -> Inventory:
        return _Discovery(self.cloud, self.name, clouds.connect(self.cloud)).run()


class _Discovery:
    def __init__(self, cloud: str, source: str, conn: Any) -> None:
        self.cloud = cloud
        self.source = source
        self.conn = conn
        self.hosts: dict[str, _Host] = {}
        self.endpoints: list[Endpoint] = []
        self.probes: list[Probe] = []
        self.absent: dict[str, dict[str, str]] = {}

    # -- the whole cloud ------------------------------------------------------------------

    def run(self) -> Inventory:
        home = self.conn.config.get_region_name() or ""
        identity = self.probe(self.conn, home, "identity")
        regions: list[str] = []
        if identity.present:
            regions = self.keystone(identity)
        regions = regions or _configured_regions(self.cloud) or [home]
        for region in regions:
            conn = self.conn if region == home else self.connect(region)
            for service_type in SERVICE_TYPES:
                if service_type == "identity":  # one Keystone serves every region
                    probe = identity if region == home else None
                else:
                    probe = self.probe(conn, region, service_type)
                if probe is not None:
                    self.discover_type(conn, probe)
        for probe in self.probes:
            if probe.absent:
                key = f"{self.cloud}/{probe.region}" if probe.region else self.cloud
                self.absent.setdefault(key, {})[probe.service_type] = probe.absent
        self.api_services()
        hosts = [
            make_host(
                name,
                roles=h.roles | catalog.roles_of(s.name for s in h.services),
                services=h.services,
                facts=h.facts,
                sources=[self.source],
                servers=h.servers,
                volumes=h.volumes,
            )
            for name, h in self.hosts.items()
        ]
        return inventory(
            hosts,
            endpoints=self.all_endpoints(),
            regions=[r for r in regions if r],
            sources=[self.source],
            facts={"absent": self.absent} if self.absent else {},
        )

    def connect(self, region: str) -> Any:
        try:
            return openstack.connect(cloud=self.cloud, region_name=region)
        except config_exc.OpenStackConfigException as exc:
            raise CloudNotFound(f"cloud {self.cloud!r}, region {region!r}: {exc}") from exc

    def discover_type(self, conn: Any, probe: Probe) -> None:
        if not probe.present:
            return
        if probe.service_type == "compute":
            self.compute(conn, probe)
        elif probe.service_type == "network":
            self.network(conn, probe)
        elif probe.service_type == "block-storage":
            self.block_storage(conn, probe)
        elif probe.service_type == "baremetal":
            self.baremetal(conn, probe)

    # -- endpoints and versions -----------------------------------------------------------

    def probe(self, conn: Any, region: str, service_type: str) -> Probe:
        probe = Probe(service_type, region)
        self.probes.append(probe)
        in_region = f" in region {region}" if region else ""
        with clouds.translated(self.cloud, f"find the {service_type} endpoint{in_region}"):
            url = _endpoint(conn, service_type)  # the first look logs in to Keystone
        if not url:
            probe.absent = (
                "no endpoint in the catalog"
                if _has_catalog(conn)
                else f"clouds.yaml names no endpoint for it ({_option(service_type)})"
            )
            return probe
        probe.url = url
        where = f"{self.cloud}: the {service_type} endpoint {url}{in_region}"
        try:
            response = conn.session.get(url, raise_exc=False, timeout=TIMEOUT)
            if response.status_code >= 500:
                raise ControlPlaneUnreachable(f"{where} answers HTTP {response.status_code}")
            data = getattr(conn, _proxy(service_type)).get_endpoint_data()
        except ks_exc.ConnectionError as exc:
            raise clouds.connection_failure(where, exc) from exc
        except ks_exc.DiscoveryFailure:
            data = None
        if data is None or data.api_version is None:
            probe.absent = f"{url} answers, but with no {service_type} version document"
            return probe
        major = SERVICE_TYPES[service_type]
        if data.api_version[0] != major:
            probe.absent = (
                f"{url} serves API version {_dotted(data.api_version)}, not {service_type} v{major}"
            )
            return probe
        if data.max_microversion:
            probe.microversion = tuple(data.max_microversion[:2])
            probe.version = _dotted(data.max_microversion)
        else:
            probe.version = _dotted(data.api_version)
        return probe

    def keystone(self, probe: Probe) -> list[str]:
        """Keystone's regions (empty if it lists none), and its endpoints."""
        with clouds.translated(self.cloud, "reach the identity API"):
            identity = self.conn.identity
        regions = self.listing(probe, "GET /v3/regions", identity.regions)
        if regions is None:
            return []
        types = self.listing(probe, "GET /v3/services", identity.services, allow_403=True)
        found = self.listing(probe, "GET /v3/endpoints", identity.endpoints, allow_403=True)
        if types is not None and found is not None:
            type_of = {s.id: TYPE_ALIASES.get(s.type, s.type) for s in types}
            self.endpoints.extend(
                Endpoint(
                    type_of.get(e.service_id, e.service_id), e.interface, e.region_id or "", e.url
                )
                for e in found
                if e.is_enabled is not False
            )
        return sorted(r.id for r in regions)

    def all_endpoints(self) -> list[Endpoint]:
        """Keystone's endpoints, else those Ephyra used; each with its API's version."""
        versions = {(p.region, p.service_type): p.version for p in self.probes if p.present}
        listed = self.endpoints or [
            Endpoint(p.service_type, _interface(self.conn), p.region, p.url)
            for p in self.probes
            if p.present
        ]
        return [
            Endpoint(
                e.service, e.interface, e.region, e.url, versions.get((e.region, e.service), "")
            )
            for e in listed
        ]

    def api_services(self) -> None:
        """Each API service on the host its endpoint's address names, when there is one."""
        for probe in self.probes:
            name = catalog.API_SERVICES.get(probe.service_type)
            address = urlparse(probe.url).hostname or ""
            if not probe.present or name is None:
                continue
            host = next(
                (h for h in self.hosts if address in (h, h.split(".")[0])),
                None,
            )
            if host is not None:
                self.hosts[host].services.append(
                    Service(
                        name,
                        catalog.PROJECT_OF_TYPE[probe.service_type],
                        probe.region,
                        UP,
                        probe.version,
                        self.source,
                    )
                )

    # -- listings -------------------------------------------------------------------------

    def listing(
        self,
        probe: Probe,
        what: str,
        call: Callable[[], Iterable[Any]],
        *,
        allow_403: bool = False,
    ) -> list[Any] | None:
        """Every item ``call`` lists; None (and the type marked absent) on HTTP 404."""
        action = f"{what} of {probe.url}" + (f" in region {probe.region}" if probe.region else "")
        try:
            with clouds.translated(self.cloud, action):
                return list(call())
        except CloudError as exc:
            cause = exc.__cause__
            if isinstance(cause, sdk_exc.NotFoundException):
                probe.absent = f"{probe.url} does not serve {what} (HTTP 404)"
                return None
            if allow_403 and isinstance(cause, sdk_exc.ForbiddenException):
                return None
            raise

    def host(self, name: str) -> _Host:
        return self.hosts.setdefault(name, _Host())

    def service(self, host: str, name: str, project: str, probe: Probe, status: str) -> None:
        self.host(host).services.append(
            Service(name, project, probe.region, status, "", self.source)
        )

    def compute(self, conn: Any, probe: Probe) -> None:
        services = self.listing(probe, "GET /os-services", conn.compute.services)
        if services is None:
            return
        for s in services:
            status = DOWN if s.state == "down" else DISABLED if s.status == "disabled" else UP
            self.service(s.host, s.binary, "compute", probe, status)
            if s.availability_zone:
                self.host(s.host).facts["availability_zone"] = s.availability_zone
        hypervisors = self.listing(
            probe, "GET /os-hypervisors/detail", lambda: conn.compute.hypervisors(details=True)
        )
        versions: dict[str, set[int]] = {}
        for h in hypervisors or ():
            name = (h.service_details or {}).get("host") or h.name
            if h.hypervisor_version is not None:
                versions.setdefault(name, set()).add(int(h.hypervisor_version))
            if h.hypervisor_type:
                self.host(name).facts["hypervisor_type"] = h.hypervisor_type
        for name, numbers in versions.items():
            version = versionutils.convert_version_to_str(max(numbers))
            found = self.host(name)
            found.services = [
                Service(s.name, s.project, s.region, s.status, version, s.source)
                if s.name == "nova-compute" and s.region == probe.region
                else s
                for s in found.services
            ]
        servers = self.listing(
            probe,
            "GET /servers/detail?all_tenants=1",
            lambda: conn.compute.servers(details=True, all_projects=True, limit=PAGE),
        )
        for name, count in Counter(s.compute_host for s in servers or () if s.compute_host).items():
            self.host(name).servers += count
        self.topology(conn, probe, {s.id: s.compute_host for s in servers or ()})

    def topology(self, conn: Any, probe: Probe, where: dict[str, str | None]) -> None:
        """Each compute host's aggregates, and the anti-affinity server groups (hard or
        soft) its servers belong to, as facts (``aggregates``, ``anti_affinity``); its
        availability zone is its service's. Left out where the cloud does not let the
        caller list them (HTTP 403: an admin's listings)."""
        aggregates = self.listing(
            probe, "GET /os-aggregates", conn.compute.aggregates, allow_403=True
        )
        for aggregate in aggregates or ():
            for name in aggregate.hosts or ():
                self.host(name).facts.setdefault("aggregates", []).append(aggregate.name)
        groups = self.listing(
            probe,
            "GET /os-server-groups?all_projects=True",
            lambda: conn.compute.server_groups(all_projects=True),
            allow_403=True,
        )
        for group in groups or ():
            policy = group.policy or next(iter(group.policies or ()), "")
            if policy not in ANTI_AFFINITY:
                continue
            for name in sorted({h for m in group.member_ids or () if (h := where.get(m))}):
                self.host(name).facts.setdefault("anti_affinity", []).append(group.id)

    def network(self, conn: Any, probe: Probe) -> None:
        for a in self.listing(probe, "GET /v2.0/agents", conn.network.agents) or ():
            status = DOWN if not a.is_alive else DISABLED if not a.is_admin_state_up else UP
            self.service(a.host, a.binary, "network", probe, status)

    def block_storage(self, conn: Any, probe: Probe) -> None:
        for s in self.listing(probe, "GET /os-services", conn.block_storage.services) or ():
            host = str(s.host).split("@")[0]
            status = DOWN if s.state == "down" else DISABLED if s.status == "disabled" else UP
            self.service(host, s.binary, "block-storage", probe, status)
            if "@" in str(s.host):
                backends = self.host(host).facts.setdefault("cinder_backends", [])
                backends.append(str(s.host).split("@", 1)[1])
        volumes = self.listing(
            probe,
            "GET /volumes/detail?all_tenants=1",
            lambda: conn.block_storage.volumes(details=True, all_projects=True, limit=PAGE),
        )
        for name, count in Counter(v.host.split("@")[0] for v in volumes or () if v.host).items():
            self.host(name).volumes += count

    def baremetal(self, conn: Any, probe: Probe) -> None:
        if probe.microversion is not None and probe.microversion >= CONDUCTORS_MICROVERSION:
            conductors = self.listing(probe, "GET /v1/conductors", conn.baremetal.conductors)
            for c in conductors or ():
                self.service(
                    c.hostname, "ironic-conductor", "bare-metal", probe, UP if c.alive else DOWN
                )
                if c.conductor_group:
                    self.host(c.hostname).facts["conductor_group"] = c.conductor_group
        nodes = self.listing(
            probe, "GET /v1/nodes/detail", lambda: conn.baremetal.nodes(details=True)
        )
        for n in nodes or ():
            found = self.host(n.name or n.id)
            found.roles.add(BAREMETAL)
            found.facts.update(
                {
                    "provision_state": n.provision_state,
                    "power_state": n.power_state,  # None until Ironic has read it
                    "maintenance": bool(n.is_maintenance),
                }
            )
            found.facts.update(
                {
                    k: v
                    for k, v in {
                        "ironic_uuid": n.id,
                        "maintenance_reason": n.maintenance_reason,
                        "resource_class": n.resource_class,
                        "conductor": n.conductor,
                        "conductor_group": n.conductor_group or None,
                        "instance_uuid": n.instance_id,
                        "region": probe.region or None,
                    }.items()
                    if v is not None
                }
            )
            if n.instance_id:
                found.servers = 1


def _proxy(service_type: str) -> str:
    return service_type.replace("-", "_")


def _option(service_type: str) -> str:
    return f"{_proxy(service_type)}_endpoint_override"


def _interface(conn: Any) -> str:
    return str(conn.config.get_interface() or "public")


def _has_catalog(conn: Any) -> bool:
    return isinstance(conn.session.auth, BaseIdentityPlugin)


def _endpoint(conn: Any, service_type: str) -> str | None:
    """The endpoint clouds.yaml names, else the catalog's (None: the cloud has none)."""
    override = conn.config.get_endpoint(service_type)
    if override:
        return str(override)
    if not _has_catalog(conn):  # such a plugin answers its one URL for any service type
        return None
    try:
        url = getattr(conn, _proxy(service_type)).get_endpoint()
    except (ks_exc.EndpointNotFound, ks_exc.CatalogException, sdk_exc.SDKException):
        return None
    return str(url) if url else None


def _configured_regions(cloud: str) -> list[str]:
    """The regions the cloud's clouds.yaml entry names (``regions``, or ``region_name``)."""
    try:
        config = openstack.config.OpenStackConfig().cloud_config["clouds"].get(cloud) or {}
    except config_exc.OpenStackConfigException:
        return []
    named = config.get("regions") or []
    if isinstance(named, str):
        named = named.split(",")
    regions = [r["name"] if isinstance(r, dict) else str(r) for r in named]
    return [r for r in regions if r]


def _dotted(version: Iterable[Any]) -> str:
    return ".".join(str(v) for v in version)
