"""Workload plugins: how the application on the nodes is told about a move."""

from __future__ import annotations

from collections.abc import Mapping

from ephyra import plugins
from ephyra.errors import PluginError
from ephyra.workloads.base import Health, NodeRef, Workload

NAMESPACE = "ephyra.workloads"

__all__ = ["NAMESPACE", "Health", "NodeRef", "Workload", "load_workload"]


def load_workload(name: str, options: Mapping[str, str] | None = None) -> Workload:
    """Instantiate the workload plugin ``name`` with its options (``key=value`` pairs)."""
    cls = plugins.load(NAMESPACE, name)
    workload = cls(dict(options or {}))
    if not isinstance(workload, Workload):
        raise PluginError(f"workload plugin {name!r} does not implement the interface")
    return workload
