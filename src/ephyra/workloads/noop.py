"""The ``noop`` workload: nothing runs on the nodes that needs telling."""

from __future__ import annotations

from collections.abc import Mapping

from ephyra.errors import PluginError
from ephyra.workloads.base import Health, NodeRef


class NoopWorkload:
    """Does nothing and is always healthy. Takes no options."""

    name = "noop"

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        if options:
            unknown = ", ".join(sorted(options))
            raise PluginError(f"workload 'noop' takes no options (got: {unknown})")

    def prepare(self, node: NodeRef) -> None:
        return None

    def return_node(self, node: NodeRef) -> None:
        return None

    def node_health(self, node: NodeRef) -> Health:
        return Health(ok=True, detail="noop workload")

    def app_health(self) -> Health:
        return Health(ok=True, detail="noop workload")
