"""Plugins by entry point: one namespace per kind, selected by name.

Entry points are found by reading only the ``entry_points.txt`` files on ``sys.path`` that
name the group: importlib's own scan parses every installed distribution's metadata (a
quarter of a second with OpenStack's libraries installed), too slow for ``ephyra --help``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ephyra.errors import PluginError

T = TypeVar("T")


@dataclass(frozen=True)
class EntryPoint:
    """One entry point: ``name = module:attribute`` in ``group``."""

    name: str
    value: str
    group: str

    def load(self) -> Any:
        module, _, attribute = self.value.partition(":")
        found: Any = importlib.import_module(module.strip())
        for part in attribute.strip().split(".") if attribute.strip() else ():
            found = getattr(found, part)
        return found


_found: dict[str, list[EntryPoint]] = {}


def _scan(group: str) -> list[EntryPoint]:
    header = f"[{group}]"
    seen: dict[str, EntryPoint] = {}
    dists: set[str] = set()
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            dist = name.rsplit("-", 1)[0].lower().replace("_", "-") if "-" in name else name
            if dist in dists:  # the first of a distribution on sys.path wins, as for imports
                continue
            dists.add(dist)
            try:
                with open(os.path.join(entry or ".", name, "entry_points.txt")) as f:
                    text = f.read()
            except OSError:
                continue
            if header in text:
                for ep in _parse(text, group):
                    seen.setdefault(ep.name, ep)
    return list(seen.values())


def _parse(text: str, group: str) -> list[EntryPoint]:
    found: list[EntryPoint] = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]").strip()
        elif current == group and "=" in line:
            name, _, value = line.partition("=")
            found.append(EntryPoint(name.strip(), value.strip(), group))
    return found


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` installed on ``sys.path``, as their files list them."""
    if group not in _found:
        _found[group] = _scan(group)
    return _found[group]


def names(namespace: str) -> list[str]:
    return sorted(ep.name for ep in entry_points(namespace))


def load(namespace: str, name: str, interface: Callable[..., T]) -> type[T]:
    """The class an entry point names, checked against the ``interface`` it must satisfy: a
    base class it must subclass (and whose abstract methods it must implement), or a
    Protocol whose methods and class variables it must have. (``interface`` is typed as a
    callable because a Protocol is not a concrete ``type[T]`` to mypy.)

    A name with no plugin, a plugin that cannot be loaded, or one that does not satisfy its
    interface is :class:`~ephyra.errors.PluginError`: bad input, refused before anything
    changed (exit 2, HTTP 400 ``plugin_error``); for an unknown name it lists the known ones,
    for an unfit plugin what it lacks."""
    for ep in entry_points(namespace):
        if ep.name != name:
            continue
        try:
            found = ep.load()
        except Exception as exc:  # an import error inside a plugin
            raise PluginError(f"{namespace} plugin {name!r} failed to load: {exc}") from exc
        return _checked(found, interface, f"{namespace} plugin {name!r} ({ep.value})")
    known = ", ".join(names(namespace)) or "none"
    raise PluginError(f"no {namespace} plugin named {name!r} (known: {known})")


def _checked(found: Any, interface: Callable[..., T], what: str) -> type[T]:
    wanted = getattr(interface, "__qualname__", repr(interface))
    if not isinstance(found, type):
        raise PluginError(f"{what} is not a class implementing {wanted}")
    protocol = bool(getattr(interface, "_is_protocol", False))
    if not protocol and not (isinstance(interface, type) and issubclass(found, interface)):
        raise PluginError(f"{what} is not a subclass of {wanted}")
    missing = sorted(
        {m for m in members(interface) if not hasattr(found, m)}
        | set(getattr(found, "__abstractmethods__", ()))
    )
    if missing:
        raise PluginError(f"{what} does not implement {wanted}: no {', '.join(missing)}")
    return cast(type[T], found)


def members(interface: Any) -> set[str]:
    """What a class must have to satisfy ``interface``: its public methods and its class
    variables (``ClassVar``), its bases' included (an instance attribute of a Protocol may
    be set only when an instance is made: it is not asked of the class)."""
    found: set[str] = set()
    for base in inspect.getmro(interface):
        if base is object or base.__module__ in ("typing", "typing_extensions", "abc"):
            continue
        found |= {k for k, v in vars(base).items() if not k.startswith("_") and _method(v)}
        found |= {
            k
            for k, v in vars(base).get("__annotations__", {}).items()
            if not k.startswith("_") and "ClassVar" in str(v)
        }
    return found


def _method(value: Any) -> bool:
    return callable(value) or isinstance(value, classmethod | staticmethod | property)
