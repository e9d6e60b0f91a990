"""The interface every workload plugin implements (entry points ``ephyra.workloads``).

A workload is the application running on the bare-metal nodes (Hadoop, ...). The
forklift tells it before a node leaves (``prepare``), after the node is back in
service on the other control plane (``return_node``), and asks it whether a node
and the whole application are healthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class NodeRef:
    """What a workload is told about a node: never secrets."""

    uuid: str
    name: str | None
    # Free-form node attributes the workload may key on (``extra``, ``properties``).
    extra: Mapping[str, object] = field(default_factory=dict)
    properties: Mapping[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.uuid


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str = ""


@runtime_checkable
class Workload(Protocol):
    """A workload plugin.

    ``prepare`` raises :class:`ephyra.errors.NodeDeferred` to veto a node for now
    (it is retried later), and any other :class:`ephyra.errors.EphyraError` to
    fail it. Every method must be idempotent: after a crash it is called again.
    """

    name: str

    def prepare(self, node: NodeRef) -> None: ...

    def return_node(self, node: NodeRef) -> None: ...

    def node_health(self, node: NodeRef) -> Health: ...

    def app_health(self) -> Health: ...
