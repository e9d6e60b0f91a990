"""What every step of one node's move needs: the two control planes, the node's
record in the journal, the workload, the credential source and the run's controls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ephyra.clouds import ControlPlane
from ephyra.engine.control import Control
from ephyra.engine.journal import Journal
from ephyra.engine.states import Phase
from ephyra.forklift.model import NodeSnapshot
from ephyra.forklift.secrets import CredentialSource
from ephyra.forklift.servers import ServerRecord, Servers
from ephyra.workloads import NodeRef, Workload


class NodeRecord:
    """A node's record in the journal (``node:<uuid>``): snapshot, outcomes, errors."""

    def __init__(self, journal: Journal, run_id: str, uuid: str) -> None:
        self._journal = journal
        self._run_id = run_id
        self.uuid = uuid
        self.data: dict[str, Any] = journal.record(run_id, f"node:{uuid}")

    def save(self, **changes: Any) -> None:
        self.data.update(changes)
        self._journal.save_record(self._run_id, f"node:{self.uuid}", self.data)

    @property
    def label(self) -> str:
        return str(self.data.get("name") or self.uuid)

    @property
    def snapshot(self) -> NodeSnapshot | None:
        raw = self.data.get("snapshot")
        return NodeSnapshot.from_dict(raw) if raw else None


@dataclass
class MoveContext:
    run_id: str
    phase: Phase
    record: NodeRecord
    source: ControlPlane
    target: ControlPlane
    credentials: CredentialSource
    workload: Workload
    control: Control
    step_timeout: float
    health_timeout: float
    on_step: Callable[[MoveContext, str, str, float], None] = field(default=lambda *a: None)
    #: The two planes' Nova, where Nova owns the nodes (``--nova``); None otherwise.
    source_servers: Servers | None = None
    target_servers: Servers | None = None

    @property
    def uuid(self) -> str:
        return self.record.uuid

    @property
    def reason(self) -> str:
        """The maintenance reason that marks a node as held by this run."""
        return f"{self.reason_prefix}: {self.phase.value} {self.source.name} -> {self.target.name}"

    @property
    def reason_prefix(self) -> str:
        return f"ephyra forklift run {self.run_id}"

    def ours(self, node: Any) -> bool:
        return bool(node.is_maintenance) and str(node.maintenance_reason or "").startswith(
            self.reason_prefix
        )

    def snapshot(self) -> NodeSnapshot:
        snap = self.record.snapshot
        if snap is None:  # the record step runs first: this is a bug, not bad input
            raise RuntimeError(f"node {self.uuid}: no snapshot recorded")
        return snap

    @property
    def server(self) -> ServerRecord | None:
        """The server the node carried before the move (recorded with its snapshot)."""
        raw = self.record.data.get("server")
        return ServerRecord.from_dict(raw) if raw else None

    def booted(self, cloud: str) -> str | None:
        """The id of the server this run booted on the node in ``cloud``, if it did."""
        return (self.record.data.get("booted") or {}).get(cloud)

    def save_booted(self, cloud: str, server_id: str | None) -> None:
        booted = dict(self.record.data.get("booted") or {})
        booted[cloud] = server_id
        self.record.save(booted=booted)

    def servers_ours(self, cloud: str) -> set[str]:
        """The servers on the node in ``cloud`` this run may delete: the one it booted
        there, and the one the node carried before the move in the cloud it came from."""
        ours = {self.booted(cloud) or ""}
        if self.server is not None and self.record.data.get("server_cloud") == cloud:
            ours.add(self.server.id)
        return ours - {""}

    def node_ref(self) -> NodeRef:
        snap = self.record.snapshot
        if snap is None:
            return NodeRef(uuid=self.uuid, name=self.record.data.get("name"))
        return NodeRef(
            uuid=snap.uuid,
            name=snap.name,
            extra=dict(snap.fields.get("extra") or {}),
            properties=dict(snap.fields.get("properties") or {}),
        )
