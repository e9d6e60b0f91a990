"""Discovery sources, plugins of ``ephyra.inventory``, and running several of them.

A source is named on the command line as ``KIND[:ARGUMENT]``: ``openstack`` (the cloud
of ``--os-cloud``) or ``openstack:CLOUD``, ``static:FILE``, ``ansible:INVENTORY``,
``puppetdb:URL``. Each plugin is a class built with ``from_argument(argument, cloud)``
whose ``discover()`` returns an :class:`~ephyra.inventory.model.Inventory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ephyra import plugins
from ephyra.errors import UsageError
from ephyra.inventory.model import Inventory, merge

NAMESPACE = "ephyra.inventory"


class Source(Protocol):
    def discover(self) -> Inventory: ...


class SourceFactory(Protocol):
    def from_argument(self, argument: str, cloud: str | None) -> Source: ...


def parse(spec: str) -> tuple[str, str]:
    kind, _, argument = spec.partition(":")
    if not kind:
        raise UsageError(f"bad inventory source {spec!r}: expected KIND[:ARGUMENT]")
    return kind, argument


def source(spec: str, cloud: str | None = None) -> Source:
    kind, argument = parse(spec)
    factory: SourceFactory = plugins.load(NAMESPACE, kind)
    return factory.from_argument(argument, cloud)


def discover(specs: Sequence[str], cloud: str | None = None) -> Inventory:
    """Every source's inventory, merged in the order given."""
    if not specs:
        raise UsageError("name at least one inventory source (--source KIND[:ARGUMENT])")
    return merge(source(spec, cloud).discover() for spec in specs)
