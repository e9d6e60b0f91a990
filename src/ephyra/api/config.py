"""What ``ephyra serve --config FILE`` configures: the server-side resources callers may
use, by name, and the limits of what a caller may send or hold open.

The API never reads a path, fetches a URL or runs a command that a caller names. What
lives on the server (an inventory file, an Ansible inventory, a PuppetDB, a credential
file) is written here by its operator and referred to by name::

    inventory:                 # names a caller may use as an inventory source
      prod: openstack:prod
      racks: static:/etc/ephyra/hosts.yaml
      lab: ansible:/etc/ephyra/hosts.ini?roles=/etc/ephyra/roles.yaml
    credentials:               # names a forklift's credentials may use
      dc1: file:/etc/ephyra/bmc.yaml
    alertmanagers:             # names an upgrade specification's Alertmanager URLs may use
      ops: http://alertmanager.example:9093
    probes:                    # names an upgrade specification's probe targets may use
      api-vip: 192.0.2.10:443  # host:port (a tcp probe)
      keystone: https://keystone.example:5000/v3   # a URL (an http probe)
    limits:
      body_bytes: 1048576      # a request body's size at most (1 MiB)
      streams_per_caller: 4    # event streams one caller (user and project) holds open

A resolver (:class:`ephyra.engine.kinds.Resolver`) turns what a caller gives into what the
operations use: :class:`ephyra.operations.local.AnyLocal` in-process (the command line reads
local paths as it always has) and :class:`Named` in the server (configured names, and the
clouds of its clouds.yaml).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ephyra import plugins, yamlfile
from ephyra.bodies import problems
from ephyra.errors import UsageError
from ephyra.inventory.source import NAMESPACE as INVENTORY_PLUGINS
from ephyra.inventory.source import parse as parse_source
from ephyra.names import check_name, is_name, shown
from ephyra.urls import is_http

#: The credential source every server has: the source control plane shows the secrets.
SOURCE = "source"
#: The inventory source every server has: the APIs of a cloud of its clouds.yaml.
OPENSTACK = "openstack"
RESERVED = (SOURCE, OPENSTACK)


def _configured_name(value: str) -> str:
    """A name an operator gives a resource: a host-like name, without ``:`` (which
    separates a source's kind from its argument) and not a built-in name."""
    try:
        check_name(value, "configured name")
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    if ":" in value or value in RESERVED:
        raise ValueError(f"{value!r} cannot be configured: no ':', not {' or '.join(RESERVED)}")
    return value


def _known_kind(kind: str, namespace: str) -> None:
    known = plugins.names(namespace)
    if kind not in known:
        raise ValueError(f"no source kind {kind!r} (known: {', '.join(known)})")


def _inventory_spec(value: str) -> str:
    """KIND[:ARGUMENT] of a known kind; the plugin checks the rest when it is used."""
    try:
        kind, _ = parse_source(value)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    _known_kind(kind, INVENTORY_PLUGINS)
    return value


def _http_url(value: str) -> str:
    if not is_http(value):
        raise ValueError("an http(s) URL")
    return value


def _probe_target(value: str) -> str:
    """What a probe connects to: an http(s) URL, host:port, or a host (pinged)."""
    from ephyra.probes import icmp, tcp

    if value.startswith(("http://", "https://")):
        return _http_url(value)
    for check in (tcp.split, icmp.host):
        with contextlib.suppress(UsageError):
            check(value)
            return value
    raise ValueError("an http(s) URL, host:port or a host")


def _credentials_spec(value: str) -> str:
    """KIND[:ARGUMENT] of a known kind, e.g. file:PATH."""
    from ephyra.forklift.secrets import NAMESPACE  # (it brings openstacksdk: only here)

    _known_kind(value.partition(":")[0], NAMESPACE)
    return value


ConfiguredName = Annotated[str, AfterValidator(_configured_name)]
Spec = Annotated[str, Field(min_length=1, max_length=4096)]


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body_bytes: int = Field(1 << 20, ge=1024, le=1 << 30, description="request body, at most")
    streams_per_caller: int = Field(4, ge=1, le=1000, description="event streams open at once")


class ServeConfig(BaseModel):
    """The operator's configuration of ``ephyra serve``."""

    model_config = ConfigDict(extra="forbid")

    inventory: dict[ConfiguredName, Annotated[Spec, AfterValidator(_inventory_spec)]] = Field(
        default_factory=dict
    )
    credentials: dict[ConfiguredName, Annotated[Spec, AfterValidator(_credentials_spec)]] = Field(
        default_factory=dict
    )
    alertmanagers: dict[ConfiguredName, Annotated[Spec, AfterValidator(_http_url)]] = Field(
        default_factory=dict
    )
    probes: dict[ConfiguredName, Annotated[Spec, AfterValidator(_probe_target)]] = Field(
        default_factory=dict
    )
    limits: Limits = Field(default_factory=lambda: Limits.model_validate({}))

    @classmethod
    def load(cls, path: str | Path | None) -> ServeConfig:
        """The configuration in ``path`` (YAML); no path: nothing configured, default limits."""
        if path is None:
            return cls()
        try:
            data = yamlfile.read(path)
        except OSError as exc:
            raise UsageError(f"cannot read the serve config {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise UsageError(f"serve config {path} is not valid YAML: {exc}") from exc
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            raise UsageError(f"serve config {path}: {problems(exc)}") from exc


class Named:
    """In the server: only configured names, ``openstack[:CLOUD]`` and ``source``.

    Anything else (a kind with an argument, a path, a URL, options) is refused before
    anything is read, run or fetched; the refusal shows at most a short part of it."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config

    def inventory(self, spec: str) -> str:
        found = self.config.inventory.get(spec)
        if found is not None:
            return found
        kind, mark, cloud = spec.partition(":")
        if kind == OPENSTACK and (not mark or is_name(cloud)):
            return spec
        raise _refused(
            f"inventory source {shown(spec)}",
            f"a configured source ({_known(self.config.inventory)}) or openstack[:CLOUD]",
            "paths, URLs and options",
        )

    def credentials(self, spec: str | None) -> str | None:
        if spec is None or spec == SOURCE:
            return spec
        found = self.config.credentials.get(spec)
        if found is not None:
            return found
        raise _refused(
            f"credentials {shown(spec)}",
            f"configured credentials ({_known(self.config.credentials)}) or 'source'",
            "files",
        )

    def alertmanager(self, name: str) -> str:
        found = self.config.alertmanagers.get(name)
        if found is not None:
            return found
        raise _refused(
            f"Alertmanager {shown(name)}",
            f"a configured one ({_known(self.config.alertmanagers)})",
            "URLs",
        )

    def probe(self, name: str) -> str:
        found = self.config.probes.get(name)
        if found is not None:
            return found
        raise _refused(
            f"probe target {shown(name)}",
            f"a configured one ({_known(self.config.probes)})",
            "addresses and URLs",
        )


def _known(table: dict[str, str]) -> str:
    return ", ".join(sorted(table)) or "none configured"


def _refused(what: str, instead: str, theirs: str) -> UsageError:
    return UsageError(f"{what} refused: name {instead}; {theirs} are the server operator's")
