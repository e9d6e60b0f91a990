"""Well-known OpenStack names every discovery source shares.

- :func:`project_of`: the project of a service (``nova-compute`` -> ``compute``);
- :func:`roles_of`: the roles that the services a host runs imply (``nova-compute`` ->
  ``compute``, ``cinder-volume`` -> ``storage``, ``nova-conductor`` -> ``controller``);
- :func:`role_alias`: a role under one of its usual names (``control``, ``compute_node``);
- :func:`public_facts`: facts without anything named like a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

CONTROLLER, COMPUTE, NETWORK, STORAGE, BAREMETAL = (
    "controller",
    "compute",
    "network",
    "storage",
    "baremetal",
)

#: Service (binary, process or API) -> project, for names the prefixes below do not settle.
SERVICES: dict[str, str] = {
    "keystone": "identity",
    "placement-api": "placement",
    "placement": "placement",
    "horizon": "dashboard",
    "ovn-controller": "network",
    "ovn-northd": "network",
    "ovsdb-server": "network",
}
#: Name prefix -> project (first match wins).
PREFIXES: tuple[tuple[str, str], ...] = (
    ("keystone-", "identity"),
    ("glance-", "image"),
    ("placement-", "placement"),
    ("nova-", "compute"),
    ("neutron-", "network"),
    ("ovn-", "network"),
    ("cinder-", "block-storage"),
    ("ironic-", "bare-metal"),
    ("heat-", "orchestration"),
    ("swift-", "object-store"),
    ("octavia-", "load-balancer"),
    ("designate-", "dns"),
    ("barbican-", "key-manager"),
    ("manila-", "shared-file-system"),
    ("magnum-", "container-infrastructure"),
    ("aodh-", "alarming"),
    ("gnocchi-", "metric"),
    ("ceilometer-", "telemetry"),
)
#: The API service of each catalog service type, as discovery names it.
API_SERVICES: dict[str, str] = {
    "identity": "keystone",
    "image": "glance-api",
    "placement": "placement-api",
    "compute": "nova-api",
    "network": "neutron-server",
    "block-storage": "cinder-api",
    "baremetal": "ironic-api",
}
#: The project of each catalog service type (the same words but for bare metal).
PROJECT_OF_TYPE: dict[str, str] = {
    "identity": "identity",
    "image": "image",
    "placement": "placement",
    "compute": "compute",
    "network": "network",
    "block-storage": "block-storage",
    "baremetal": "bare-metal",
}

#: Service -> the role it implies. Services absent here (e.g. the Open vSwitch agent, which
#: runs on computes and network nodes alike) imply none.
ROLE_OF_SERVICE: dict[str, str] = {
    "nova-compute": COMPUTE,
    "neutron-l3-agent": NETWORK,
    "neutron-dhcp-agent": NETWORK,
    "neutron-metadata-agent": NETWORK,
    "neutron-bgp-dragent": NETWORK,
    "cinder-volume": STORAGE,
    "cinder-backup": STORAGE,
    **{
        name: CONTROLLER
        for name in (
            "keystone",
            "glance-api",
            "placement-api",
            "nova-api",
            "nova-api-metadata",
            "nova-conductor",
            "nova-scheduler",
            "nova-novncproxy",
            "nova-spicehtml5proxy",
            "nova-serialproxy",
            "nova-consoleauth",
            "neutron-server",
            "neutron-api",
            "neutron-rpc-server",
            "ovn-northd",
            "cinder-api",
            "cinder-scheduler",
            "ironic-api",
            "ironic-conductor",
            "ironic-inspector",
            "heat-api",
            "heat-api-cfn",
            "heat-engine",
            "horizon",
        )
    },
}

#: Usual names of the planner's roles (inventory groups, Puppet role classes).
ROLE_ALIASES: dict[str, str] = {
    "control": CONTROLLER,
    "controllers": CONTROLLER,
    "control-plane": CONTROLLER,
    "controlplane": CONTROLLER,
    "ctl": CONTROLLER,
    "computes": COMPUTE,
    "compute-node": COMPUTE,
    "compute-nodes": COMPUTE,
    "hypervisor": COMPUTE,
    "hypervisors": COMPUTE,
    "networks": NETWORK,
    "network-node": NETWORK,
    "network-nodes": NETWORK,
    "networker": NETWORK,
    "networkers": NETWORK,
    "storage-node": STORAGE,
    "storage-nodes": STORAGE,
    "block-storage": STORAGE,
    "ironic-node": BAREMETAL,
    "ironic-nodes": BAREMETAL,
    "bare-metal": BAREMETAL,
}

#: A word of a fact's name that makes it look like a credential: the fact is never kept.
SECRET_WORD = re.compile(
    r"^(.*(pass(word|wd|phrase)?|secrets?|tokens?|credentials?|keys?)|private|vault)$"
)
WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def project_of(service: str) -> str:
    """The project of ``service`` (``""`` when it is not a known OpenStack service)."""
    name = service.strip().lower()
    if name in SERVICES:
        return SERVICES[name]
    for prefix, project in PREFIXES:
        if name.startswith(prefix) or name == prefix.rstrip("-"):
            return project
    return ""


def is_service(name: str) -> bool:
    """Whether ``name`` (``nova_compute`` or ``nova-compute``) names an OpenStack service."""
    canonical = name.strip().lower().replace("_", "-")
    return canonical in ROLE_OF_SERVICE or (bool(project_of(canonical)) and "-" in canonical)


def roles_of(services: Iterable[str]) -> set[str]:
    """The roles the services imply."""
    return {ROLE_OF_SERVICE[s] for s in services if s in ROLE_OF_SERVICE}


def role_alias(name: str) -> str:
    """``name`` as a role: lower case, ``_`` as ``-``, usual names as the planner's."""
    canonical = name.strip().lower().replace("_", "-")
    return ROLE_ALIASES.get(canonical, canonical)


def public_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """``facts`` without anything named like a secret, at any depth."""
    out: dict[str, Any] = {}
    for key, value in facts.items():
        if is_secret(str(key)):
            continue
        out[str(key)] = _public(value)
    return out


def is_secret(name: str) -> bool:
    """Whether a fact named ``name`` looks like a credential (``db_password``,
    ``ansible_ssh_private_key_file``, ``apiToken``; not ``keystone_url``)."""
    return any(SECRET_WORD.match(word.lower()) for word in WORD.findall(name))


def _public(value: Any) -> Any:
    if isinstance(value, Mapping):
        return public_facts(value)
    if isinstance(value, list | tuple):
        return [_public(v) for v in value]
    return value
