"""Workload plugins: how the application on the nodes is told about a move."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ephyra import plugins
from ephyra.workloads.base import Health, NodeRef, Workload

NAMESPACE = "ephyra.workloads"

__all__ = ["NAMESPACE", "Health", "NodeRef", "Workload", "load_workload"]


class WorkloadPlugin(Workload, Protocol):
    """What the entry point of a workload plugin names: a class made from its options."""

    def __init__(self, options: dict[str, str]) -> None: ...


def load_workload(name: str, options: Mapping[str, str] | None = None) -> Workload:
    """Instantiate the workload plugin ``name`` with its options (``key=value`` pairs); a
    plugin that does not implement :class:`Workload` is refused before it is made."""
    return plugins.load(NAMESPACE, name, WorkloadPlugin)(dict(options or {}))
