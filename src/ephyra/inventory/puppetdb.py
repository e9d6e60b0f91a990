"""The ``puppetdb`` source: nodes, their classes and facts from PuppetDB's v4 query API.

``puppetdb:URL[?roles=MAP.yaml&facts=os,kernel&short=true&cacert=CA&cert=CRT&key=KEY]``

Three queries, each paged with ``limit``/``offset`` and ordered (``order_by``):

- ``GET /pdb/query/v4/nodes``: every active node (PuppetDB leaves out deactivated and
  expired ones) is a host, its ``certname`` the name (``short=true``: up to the first dot);
- ``GET /pdb/query/v4/resources`` with ``["extract", ["certname", "title"],
  ["=", "type", "Class"]]``: the classes of each node's last catalog give its roles and
  services (:func:`classify`);
- ``GET /pdb/query/v4/facts`` with ``["in", "name", ["array", [...]]]``: the facts named in
  ``facts=`` (default :data:`FACTS`); ``networking`` is kept to its names and addresses.

A class's roles, by the first rule that matches: the operator's mapping (``roles=``, see
:mod:`ephyra.inventory.rolemap`); ``Role::...::Name`` is the role ``name`` (usual names
as the planner's: ``Role::Compute_node`` -> compute); the classes of the Puppet
OpenStack modules, alone or under ``Profile::`` or ``Tripleo::Profile::Base::``
(``Nova::Compute``, ``Profile::Nova::Compute``, ``Neutron::Agents::L3``...) are services
(:data:`PUPPET_CLASSES`), whose roles follow (``nova-compute`` -> compute).

HTTPS with PuppetDB's own CA and a client certificate: ``cacert``, ``cert`` and ``key``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from ephyra.errors import CloudError, UsageError
from ephyra.inventory import catalog
from ephyra.inventory.model import UNKNOWN, Host, Inventory, Service, inventory, make_host
from ephyra.inventory.rolemap import RoleMap
from ephyra.inventory.source import options
from ephyra.net import why
from ephyra.urls import is_http, redact, redact_text

OPTIONS = ("roles", "facts", "short", "cacert", "cert", "key", "timeout")
LOG = logging.getLogger(__name__)
API = "/pdb/query/v4"
PAGE = 1000
#: Facts kept by default (Facter's structured facts, and the legacy ones older agents send).
FACTS = (
    "os",
    "kernel",
    "kernelrelease",
    "virtual",
    "is_virtual",
    "processors",
    "memory",
    "networking",
    "operatingsystem",
    "operatingsystemrelease",
    "fqdn",
    "ipaddress",
)
NETWORKING = ("fqdn", "hostname", "domain", "ip", "ip6")
#: Classes of the Puppet OpenStack modules -> the service they manage.
PUPPET_CLASSES: dict[str, str] = {
    "keystone": "keystone",
    "keystone::wsgi::apache": "keystone",
    "glance::api": "glance-api",
    "placement::api": "placement-api",
    "placement::wsgi::apache": "placement-api",
    "nova::api": "nova-api",
    "nova::conductor": "nova-conductor",
    "nova::scheduler": "nova-scheduler",
    "nova::compute": "nova-compute",
    "nova::vncproxy": "nova-novncproxy",
    "nova::metadata": "nova-api-metadata",
    "neutron::server": "neutron-server",
    "neutron::agents::l3": "neutron-l3-agent",
    "neutron::agents::dhcp": "neutron-dhcp-agent",
    "neutron::agents::metadata": "neutron-metadata-agent",
    "neutron::agents::ml2::ovs": "neutron-openvswitch-agent",
    "neutron::agents::ml2::linuxbridge": "neutron-linuxbridge-agent",
    "neutron::agents::ml2::sriov": "neutron-sriov-nic-agent",
    "neutron::agents::ovn_metadata": "neutron-ovn-metadata-agent",
    "ovn::controller": "ovn-controller",
    "ovn::northd": "ovn-northd",
    "cinder::api": "cinder-api",
    "cinder::scheduler": "cinder-scheduler",
    "cinder::volume": "cinder-volume",
    "cinder::backup": "cinder-backup",
    "ironic::api": "ironic-api",
    "ironic::conductor": "ironic-conductor",
    "heat::api": "heat-api",
    "heat::engine": "heat-engine",
    "horizon": "horizon",
}
PROFILE_PREFIXES = ("tripleo::profile::base::", "profile::openstack::", "profile::")


@dataclass
class Classes:
    """What a node's classes say."""

    roles: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)  # the classes that gave any


def classify(title: str, role_map: RoleMap) -> tuple[set[str], set[str]]:
    """The roles and services one class (``Profile::Nova::Compute``) gives."""
    mapped = role_map.roles(title)
    if mapped is not None:
        return set(mapped), set()
    lowered = title.lower()
    parts = lowered.split("::")
    if parts[0] == "role" and len(parts) > 1:
        return {catalog.role_alias(parts[-1])}, set()
    for prefix in PROFILE_PREFIXES:
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix) :]
            break
    service = PUPPET_CLASSES.get(lowered)
    if service is None:
        return set(), set()
    return catalog.roles_of([service]), {service}


class PuppetDBSource:
    """Queries one PuppetDB."""

    def __init__(
        self,
        url: str,
        *,
        role_map: RoleMap | None = None,
        facts: tuple[str, ...] = FACTS,
        short: bool = False,
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.role_map = role_map or RoleMap()
        self.facts = facts
        self.short = short
        self.verify = verify
        self.cert = cert
        self.timeout = timeout
        self.name = f"puppetdb:{self.url}"

    @classmethod
    def from_argument(cls, argument: str, cloud: str | None) -> PuppetDBSource:
        del cloud
        url, found = options("puppetdb", argument, OPTIONS)
        if not is_http(url):
            raise UsageError(
                f"inventory source puppetdb:{argument}: expected PuppetDB's URL, "
                "e.g. puppetdb:https://puppetdb.example.com:8081"
            )
        if ("cert" in found) != ("key" in found):
            raise UsageError(f"inventory source puppetdb:{argument}: give both cert= and key=")
        try:
            timeout = float(found.get("timeout", "30"))
        except ValueError as exc:
            raise UsageError(f"puppetdb:{argument}: timeout= must be seconds") from exc
        names = tuple(f.strip() for f in found.get("facts", "").split(",") if f.strip())
        return cls(
            url,
            role_map=RoleMap.load(found["roles"]) if "roles" in found else None,
            facts=names or FACTS,
            short=found.get("short", "").lower() in ("1", "true", "yes"),
            verify=found.get("cacert") or True,
            cert=(found["cert"], found["key"]) if "cert" in found else None,
            timeout=timeout,
        )

    def discover(self) -> Inventory:
        with requests.Session() as session:
            nodes = list(self._query(session, "nodes", None, ["certname"]))
            classes: dict[str, Classes] = {}
            class_query = ["extract", ["certname", "title"], ["=", "type", "Class"]]
            for row in self._query(session, "resources", class_query, ["certname", "title"]):
                found = classes.setdefault(row["certname"], Classes())
                roles, services = classify(row["title"], self.role_map)
                found.roles |= roles
                found.services |= services
                if roles or services:
                    found.names.append(row["title"])
            facts: dict[str, dict[str, Any]] = {}
            fact_query = ["in", "name", ["array", list(self.facts)]]
            for row in self._query(session, "facts", fact_query, ["certname", "name"]):
                facts.setdefault(row["certname"], {})[row["name"]] = _fact(
                    row["name"], row["value"]
                )
        return inventory(
            (self._host(node, classes.get(node["certname"]), facts) for node in nodes),
            sources=[self.name],
        )

    def _host(
        self, node: Mapping[str, Any], found: Classes | None, facts: dict[str, dict[str, Any]]
    ) -> Host:
        certname = str(node["certname"])
        found = found or Classes()
        known = {
            "puppet_certname": certname,
            "puppet_environment": node.get("catalog_environment"),
            "puppet_report_status": node.get("latest_report_status"),
            "puppet_report_timestamp": node.get("report_timestamp"),
            "puppet_classes": sorted(found.names) or None,
            **catalog.public_facts(facts.get(certname, {})),
        }
        return make_host(
            certname.split(".")[0] if self.short else certname,
            roles=found.roles,
            services=[
                Service(s, catalog.project_of(s), status=UNKNOWN, source=self.name)
                for s in found.services
            ],
            facts={k: v for k, v in known.items() if v is not None},
            sources=[self.name],
        )

    def _query(
        self,
        session: requests.Session,
        entity: str,
        query: list[Any] | None,
        order: list[str],
    ) -> Iterator[dict[str, Any]]:
        """Every row of one query, page by page."""
        endpoint = f"{self.url}{API}/{entity}"
        offset = 0
        while True:
            params: dict[str, str | int] = {
                "order_by": json.dumps([{"field": f} for f in order]),
                "limit": PAGE,
                "offset": offset,
            }
            if query is not None:
                params["query"] = json.dumps(query)
            try:
                response = session.get(
                    endpoint,
                    params=params,
                    headers={"Accept": "application/json"},
                    verify=self.verify,
                    cert=self.cert,
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                reason = why(exc) or redact_text(str(exc))
                raise CloudError(f"PuppetDB {redact(self.url)}: unreachable: {reason}") from exc
            if response.status_code != 200:  # its body goes to the log, not to a caller
                where = f"PuppetDB {redact(self.url)}: {API}/{entity}"
                LOG.warning("%s: HTTP %s: %s", where, response.status_code, response.text[:300])
                raise CloudError(f"{where} answered HTTP {response.status_code}")
            try:
                rows = response.json()
            except ValueError as exc:
                raise CloudError(f"PuppetDB {redact(self.url)}: {API}/{entity}: not JSON") from exc
            if not isinstance(rows, list):
                where = f"PuppetDB {redact(self.url)}: {API}/{entity}"
                raise CloudError(f"{where}: expected a JSON array")
            yield from rows
            if len(rows) < PAGE:
                return
            offset += len(rows)


def _fact(name: str, value: Any) -> Any:
    if name == "networking" and isinstance(value, Mapping):
        return {k: value[k] for k in NETWORKING if k in value}
    return value
