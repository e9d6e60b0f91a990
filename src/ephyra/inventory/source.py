"""Discovery sources, plugins of ``ephyra.inventory``, and running several of them.

A source is named on the command line as ``KIND[:ARGUMENT]``: ``openstack`` (the cloud
of ``--os-cloud``) or ``openstack:CLOUD``, ``static:FILE``, ``ansible:INVENTORY``,
``puppetdb:URL``, ``osa:CONFIG``. Each plugin is a class built with
``from_argument(argument, cloud)`` whose ``discover()`` returns an
:class:`~ephyra.inventory.model.Inventory`.

An argument may end with options, as a URL's query: ``ansible:hosts.ini?roles=map.yaml``;
:func:`options` splits them off and refuses the ones a source does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, Self
from urllib.parse import parse_qsl

from ephyra import plugins
from ephyra.errors import UsageError
from ephyra.inventory.model import Inventory, merge

NAMESPACE = "ephyra.inventory"


class Source(Protocol):
    """An inventory source plugin: a class made from the argument of ``KIND:ARGUMENT`` (and
    the cloud of ``--os-cloud``), whose ``discover()`` reads what exists."""

    @classmethod
    def from_argument(cls, argument: str, cloud: str | None) -> Self: ...

    def discover(self) -> Inventory: ...


def parse(spec: str) -> tuple[str, str]:
    kind, _, argument = spec.partition(":")
    if not kind:
        raise UsageError(f"bad inventory source {spec!r}: expected KIND[:ARGUMENT]")
    return kind, argument


def options(kind: str, argument: str, known: Collection[str]) -> tuple[str, dict[str, str]]:
    """``argument`` without its ``?key=value&...`` options, and the options."""
    main, mark, query = argument.rpartition("?")
    if not mark:
        return argument, {}
    found: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in known:
            allowed = ", ".join(sorted(known)) or "none"
            raise UsageError(
                f"inventory source {kind}:{argument}: unknown option {key!r} (known: {allowed})"
            )
        found[key] = value
    return main, found


def source(spec: str, cloud: str | None = None) -> Source:
    kind, argument = parse(spec)
    return plugins.load(NAMESPACE, kind, Source).from_argument(argument, cloud)


def discover(specs: Sequence[str], cloud: str | None = None) -> Inventory:
    """Every source's inventory, merged in the order given."""
    if not specs:
        raise UsageError("name at least one inventory source (--source KIND[:ARGUMENT])")
    return merge(source(spec, cloud).discover() for spec in specs)


#: Inventory sources one request may name, at most.
MAX_SOURCES = 32


def resolved(given: Sequence[str], inventory: Callable[[str], str]) -> list[str]:
    """The sources ``given`` stand for (``inventory``: what a caller's name stands for),
    every one checked before any is used."""
    if len(given) > MAX_SOURCES:
        raise UsageError(f"at most {MAX_SOURCES} inventory sources, not {len(given)}")
    return [inventory(s) for s in given]


def discovered(
    sources: Sequence[str], cloud: str | None, inline: dict[str, Any] | None = None
) -> Inventory:
    """The sources' inventories, then the ``inline`` static document, merged."""
    from ephyra.inventory.static import INLINE, parse

    if inline is None:
        return discover(sources, cloud)
    parts = [discover(sources, cloud)] if sources else []
    return merge([*parts, parse(inline, INLINE, f"static:{INLINE}")])
