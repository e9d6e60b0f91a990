"""Which hosts fulfil a role, with their addresses: seed 003's answer to cross-host
orchestration ("each service needs the IP addresses of the hosts of a role").

An agent publishes ``/active_roles/<version>/<role>/<host>/address`` and one key per
interface under its lease, once the host has been validated at that version; a dead host
drops out with its lease. :func:`hiera_data` is the same facts in the namespace Puppet's
Hiera reads (``etcdlookup::active_roles::<role>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ephyra.versions.keys import Keys, check_name
from ephyra.versions.store import Lease, Op, Put, Store

HIERA_NAMESPACE = "etcdlookup::active_roles"


def publish_ops(
    keys: Keys,
    version: str,
    host: str,
    roles: Mapping[str, str],
    interfaces: Mapping[str, str],
    lease: Lease | None,
) -> list[Op]:
    """``roles`` maps each role to the host's address in it; ``interfaces`` name -> address."""
    ops: list[Op] = []
    for role, address in roles.items():
        base = keys.roles(version, check_name("role", role), check_name("host", host))
        ops.append(Put(base + "address", address, lease))
        ops += [Put(base + check_name("interface", i), a, lease) for i, a in interfaces.items()]
    return ops


def publish(
    store: Store,
    keys: Keys,
    version: str,
    host: str,
    roles: Mapping[str, str],
    interfaces: Mapping[str, str],
    lease: Lease | None,
) -> None:
    """:func:`publish_ops` in one transaction."""
    ops = publish_ops(keys, version, host, roles, interfaces, lease)
    if ops:
        store.txn([], ops)


def active(store: Store, keys: Keys, version: str, role: str = "") -> dict[str, dict[str, Any]]:
    """role -> host -> {"address": ..., interface: address, ...}, in one range read."""
    root = keys.roles(version)
    found: dict[str, dict[str, Any]] = {}
    for key, value in store.range(keys.roles(version, role) if role else root).items():
        parts = keys.relative(key, root)
        if len(parts) == 3:
            r, host, name = parts
            found.setdefault(r, {}).setdefault(host, {})[name] = value
    return found


def hosts_of(store: Store, keys: Keys, version: str, role: str) -> dict[str, dict[str, Any]]:
    check_name("role", role)
    return active(store, keys, version, role).get(role, {})


def hiera_data(store: Store, keys: Keys, version: str) -> dict[str, Any]:
    """``{"etcdlookup::active_roles::<role>": {host: {address, eth0, ...}}}`` and the
    version it describes, sorted, ready to write as a Hiera YAML data file."""
    data: dict[str, Any] = {f"{HIERA_NAMESPACE}::version": version}
    for role, hosts in sorted(active(store, keys, version).items()):
        data[f"{HIERA_NAMESPACE}::{role}"] = {
            h: dict(sorted(v.items())) for h, v in sorted(hosts.items())
        }
    return data
