"""Plugins by entry point: one namespace per kind, selected by name."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from ephyra.errors import PluginError


def names(namespace: str) -> list[str]:
    return sorted(ep.name for ep in entry_points(group=namespace))


def load(namespace: str, name: str) -> Any:
    """The object an entry point names. A name with no plugin, or a plugin that cannot be
    loaded, is :class:`~ephyra.errors.PluginError`: bad input, refused before anything
    changed (exit 2, HTTP 400 ``plugin_error``); for an unknown name it lists the known ones."""
    for ep in entry_points(group=namespace, name=name):
        try:
            return ep.load()
        except Exception as exc:  # an import error inside a plugin
            raise PluginError(f"{namespace} plugin {name!r} failed to load: {exc}") from exc
    known = ", ".join(names(namespace)) or "none"
    raise PluginError(f"no {namespace} plugin named {name!r} (known: {known})")
