"""The ``static`` source: an inventory written in a YAML file.

Two forms, which may be mixed:

- exactly what ``ephyra --format yaml inventory show`` prints
  (:meth:`~ephyra.inventory.model.Inventory.to_dict`), so that a discovered inventory can
  be saved, edited and read back;
- a short hand-written one::

      hosts:
        ctl-1: {roles: [controller], services: [nova-api, nova-conductor, keystone]}
        cmp-1: {services: [nova-compute], facts: {rack: r1}}   # roles from the services
      roles:                                                  # role -> more hosts
        compute: [cmp-2, cmp-3]

  A service is a name (its project from the table of well-known OpenStack services), or
  a mapping with ``name`` and any of ``project``, ``region``, ``status``, ``version``.
  A host without ``roles`` gets those its services imply (``nova-compute`` -> compute).

Anything else is refused with the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ephyra import yamlfile
from ephyra.errors import UsageError
from ephyra.inventory import catalog
from ephyra.inventory.model import (
    DISABLED,
    DOWN,
    UNKNOWN,
    UP,
    Endpoint,
    Host,
    Inventory,
    Service,
    inventory,
    make_host,
)

TOP_KEYS = ("hosts", "roles", "endpoints", "regions", "sources", "facts")
HOST_KEYS = ("name", "roles", "services", "facts", "sources", "servers", "volumes")
SERVICE_KEYS = ("name", "project", "region", "status", "version", "source")
ENDPOINT_KEYS = ("service", "interface", "region", "url", "version")
STATUSES = (UP, DOWN, DISABLED, UNKNOWN)
#: Where a document given inline (in an API request's body) comes from, as errors name it.
INLINE = "inline"


class StaticSource:
    """Reads one YAML file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = f"static:{path}"

    @classmethod
    def from_argument(cls, argument: str, cloud: str | None) -> StaticSource:
        del cloud
        if not argument:
            raise UsageError("inventory source static needs a file: static:FILE")
        return cls(argument)

    def discover(self) -> Inventory:
        return parse(read(self.path), self.path, self.name)


def read(path: str) -> Any:
    """The document in the file ``path`` (what :func:`parse` takes)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"static inventory {path}: cannot read it: {exc.strerror}") from exc
    try:
        return yamlfile.parse(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"static inventory {path}: not YAML: {exc}") from exc


def parse(data: Any, path: str, name: str) -> Inventory:
    """The inventory in ``data`` (read from ``path``, or :data:`INLINE`: given as a
    document, e.g. in a request's body), a source called ``name``."""
    where = _Where(path)
    if data is None:
        data = {}
    top = where.mapping(data, "")
    where.known(top, "", TOP_KEYS)
    hosts = [*_hosts(where, top.get("hosts"), name), *_role_lists(where, top.get("roles"), name)]
    sources = where.strings(top["sources"], "sources") if "sources" in top else [name]
    return inventory(
        hosts,
        endpoints=_endpoints(where, top.get("endpoints")),
        regions=where.strings(top.get("regions"), "regions"),
        sources=sources,
        facts=where.mapping(top.get("facts") or {}, "facts"),
    )


class _Where:
    """Checks of one file's values; every error names the file and the key."""

    def __init__(self, path: str) -> None:
        self.path = path

    def error(self, key: str, problem: str) -> UsageError:
        return UsageError(f"static inventory {self.path}: {key or 'top level'}: {problem}")

    def mapping(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a mapping, got {_kind(value)}")
        for k in value:
            if not isinstance(k, str):
                raise self.error(key, f"keys must be strings, got {k!r}")
        return value

    def known(self, value: Mapping[str, Any], key: str, keys: tuple[str, ...]) -> None:
        for k in value:
            if k not in keys:
                inner = f"{key}.{k}" if key else k
                raise self.error(inner, f"unknown key (known: {', '.join(keys)})")

    def text(self, value: Any, key: str, *, required: bool = False) -> str:
        if value is None and not required:
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(key, f"expected a string, got {_kind(value)}")
        text = str(value)
        if required and not text:
            raise self.error(key, "must not be empty")
        return text

    def strings(self, value: Any, key: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise self.error(key, f"expected a list of strings, got {_kind(value)}")
        return [self.text(v, f"{key}[{i}]", required=True) for i, v in enumerate(value)]


def _hosts(where: _Where, value: Any, source: str) -> list[Host]:
    if value is None:
        return []
    if isinstance(value, list):
        entries = []
        for i, entry in enumerate(value):
            body = where.mapping(entry, f"hosts[{i}]")
            name = where.text(body.get("name"), f"hosts[{i}].name", required=True)
            entries.append((f"hosts[{i}]", name, body))
    else:
        entries = [
            (f"hosts.{name}", name, {} if body is None else where.mapping(body, f"hosts.{name}"))
            for name, body in where.mapping(value, "hosts").items()
        ]
    return [_host(where, key, name, body, source) for key, name, body in entries]


def _host(where: _Where, key: str, name: str, body: Mapping[str, Any], source: str) -> Host:
    where.known(body, key, HOST_KEYS)
    if "name" in body and str(body["name"]) != name:
        raise where.error(f"{key}.name", f"{body['name']!r} differs from the host's key {name!r}")
    services_value = body.get("services") or []
    if not isinstance(services_value, list):
        raise where.error(f"{key}.services", f"expected a list, got {_kind(services_value)}")
    services = [
        _service(where, f"{key}.services[{i}]", s, source) for i, s in enumerate(services_value)
    ]
    if "roles" in body:
        roles = where.strings(body["roles"], f"{key}.roles")
    else:
        roles = sorted(catalog.roles_of(s.name for s in services))
    counts = {}
    for counted in ("servers", "volumes"):
        count = body.get(counted, 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise where.error(f"{key}.{counted}", f"expected a count (0 or more), got {count!r}")
        counts[counted] = count
    return make_host(
        name,
        roles=roles,
        services=services,
        facts=where.mapping(body.get("facts") or {}, f"{key}.facts"),
        sources=where.strings(body["sources"], f"{key}.sources") if "sources" in body else [source],
        **counts,
    )


def _service(where: _Where, key: str, value: Any, source: str) -> Service:
    if isinstance(value, str):
        value = {"name": value}
    body = where.mapping(value, key)
    where.known(body, key, SERVICE_KEYS)
    name = where.text(body.get("name"), f"{key}.name", required=True)
    status = where.text(body.get("status"), f"{key}.status") or UNKNOWN
    if status not in STATUSES:
        raise where.error(f"{key}.status", f"{status!r} is not one of {', '.join(STATUSES)}")
    project = where.text(body.get("project"), f"{key}.project")
    return Service(
        name=name,
        project=project or catalog.project_of(name),
        region=where.text(body.get("region"), f"{key}.region"),
        status=status,
        version=where.text(body.get("version"), f"{key}.version"),
        source=where.text(body.get("source"), f"{key}.source") if "source" in body else source,
    )


def _role_lists(where: _Where, value: Any, source: str) -> list[Host]:
    if value is None:
        return []
    hosts = []
    for role, names in where.mapping(value, "roles").items():
        for name in where.strings(names, f"roles.{role}"):
            hosts.append(make_host(name, roles=[role], sources=[source]))
    return hosts


def _endpoints(where: _Where, value: Any) -> list[Endpoint]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.error("endpoints", f"expected a list, got {_kind(value)}")
    out = []
    for i, entry in enumerate(value):
        key = f"endpoints[{i}]"
        body = where.mapping(entry, key)
        where.known(body, key, ENDPOINT_KEYS)
        out.append(
            Endpoint(
                service=where.text(body.get("service"), f"{key}.service", required=True),
                interface=where.text(body.get("interface"), f"{key}.interface") or "public",
                region=where.text(body.get("region"), f"{key}.region"),
                url=where.text(body.get("url"), f"{key}.url", required=True),
                version=where.text(body.get("version"), f"{key}.version"),
            )
        )
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
