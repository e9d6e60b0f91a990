"""Enrol realistic fake-hardware nodes, clear control planes, and snapshot what a move must keep.

All waits poll every 50 ms (openstacksdk's own ``wait=True`` polls every 2 s).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:
    from openstack.connection import Connection

POLL_S = 0.05
WAIT_TIMEOUT_S = 120.0

#: Every hardware interface of a node, as enabled in ``ironic.conf.template``.
INTERFACES = {
    "bios_interface": "fake",
    "boot_interface": "fake",
    "console_interface": "no-console",
    "deploy_interface": "fake",
    "firmware_interface": "fake",
    "inspect_interface": "no-inspect",
    "management_interface": "fake",
    "network_interface": "noop",
    "power_interface": "fake",
    "raid_interface": "fake",
    "rescue_interface": "no-rescue",
    "storage_interface": "noop",
    "vendor_interface": "no-vendor",
}

#: Keys Ironic itself adds to ``instance_info`` while deploying.
IRONIC_ADDED_INSTANCE_KEYS = frozenset({"image_type"})

#: Node fields (server-side names) a move must keep, besides ports and instance_info.
NODE_FIELDS = (
    "uuid",
    "name",
    "driver",
    *INTERFACES,
    "properties",
    "resource_class",
    "owner",
    "lessee",
    "extra",
    "driver_info",
    "maintenance",
    "maintenance_reason",
    "provision_state",
)

# Server-side field name -> openstacksdk attribute name, where they differ.
_SDK_ATTR = {"uuid": "id", "maintenance": "is_maintenance"}

_PROJECTS = [uuid.uuid5(uuid.NAMESPACE_DNS, f"project-{i}.example.org").hex for i in range(4)]
_SIZES = [(32, 131072, 1800), (48, 262144, 3600), (64, 393216, 7200)]

T = TypeVar("T")


class ProvisionError(RuntimeError):
    """A node failed or did not reach a provision state in time."""


def _parallel(fn: Callable[[Any], T], items: Iterable[Any], concurrency: int) -> list[T]:
    """``fn`` over ``items`` in a thread pool, results in order; the first error is raised."""
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(items)))) as pool:
        return list(pool.map(fn, items))


def wait_for_state(
    conn: Connection, node_id: str, want: str, timeout: float = WAIT_TIMEOUT_S
) -> None:
    """Poll every 50 ms until the node is in ``want`` with no transition pending."""
    deadline = time.monotonic() + timeout
    fields = ["provision_state", "target_provision_state", "last_error"]
    while True:
        node = conn.baremetal.get_node(node_id, fields=fields)
        if node.provision_state == want and not node.target_provision_state:
            return
        state = node.provision_state or ""
        if state.endswith("failed") or state == "error":
            raise ProvisionError(f"{node_id}: {state} ({node.last_error}) waiting for {want}")
        if time.monotonic() > deadline:
            raise ProvisionError(f"{node_id}: still {state} after {timeout:g} s, want {want}")
        time.sleep(POLL_S)


def provision(
    conn: Connection, node_id: str, target: str, want: str, timeout: float = WAIT_TIMEOUT_S
) -> None:
    """Ask for provision ``target`` and wait for stable state ``want``."""
    conn.baremetal.set_node_provision_state(node_id, target, wait=False)
    wait_for_state(conn, node_id, want, timeout)


def node_spec(index: int, prefix: str = "node") -> dict[str, Any]:
    """Everything about one node: its create body, owner/lessee, ports and instance_info."""
    node_uuid = uuid.uuid4()
    cpus, memory_mb, local_gb = _SIZES[index % len(_SIZES)]
    rack = f"r{index // 16:02d}"
    mac_base = "02:" + ":".join(f"{b:02x}" for b in node_uuid.bytes[:4])
    ports = [
        {
            "uuid": str(uuid.uuid5(node_uuid, f"port-{j}")),
            "address": f"{mac_base}:{j:02x}",
            "pxe_enabled": j == 0,
            "extra": {"switch": f"tor-{rack}", "switch_port": f"Ethernet1/{index % 48 + 1}.{j}"},
        }
        for j in range(1 + index % 2)
    ]
    return {
        "create": {
            "uuid": str(node_uuid),
            "name": f"{prefix}-{index:04d}",
            "driver": "fake-hardware",
            **INTERFACES,
            "properties": {
                "cpus": cpus,
                "memory_mb": memory_mb,
                "local_gb": local_gb,
                "cpu_arch": "x86_64",
                "capabilities": "boot_mode:uefi,disk_label:gpt",
            },
            "resource_class": "baremetal.hadoop",
            "extra": {"hadoop_role": "namenode" if index % 25 == 0 else "datanode", "rack": rack},
            "driver_info": {
                "ipmi_address": f"10.40.{index // 250}.{index % 250 + 1}",
                "ipmi_username": "admin",
                "ipmi_password": secrets.token_urlsafe(16),
            },
        },
        "owner": _PROJECTS[index % 2],
        "lessee": _PROJECTS[2 + index % 2],
        "ports": ports,
        "instance_info": {
            "image_source": "http://images.example.internal/hadoop/rhel9-hdp-3.3.qcow2",
            "root_gb": 100,
            "capabilities": {"boot_mode": "uefi"},
        },
    }


class StateWaiter:
    """Waits for many nodes at once with one node list call per 50 ms poll, however many
    threads are waiting (per-thread polling would load the API with concurrency)."""

    def __init__(self, conn: Connection, poll: float = POLL_S) -> None:
        self._conn = conn
        self._poll = poll
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[str, threading.Event, list[Exception]]] = {}
        self._thread: threading.Thread | None = None

    def wait(self, node_id: str, want: str, timeout: float = WAIT_TIMEOUT_S) -> None:
        """Block until the node is stably in ``want``; raise :class:`ProvisionError` if it
        fails or the time runs out."""
        done, errors = threading.Event(), list[Exception]()
        with self._lock:
            self._waiting[node_id] = (want, done, errors)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()
        if not done.wait(timeout):
            with self._lock:
                self._waiting.pop(node_id, None)
            raise ProvisionError(f"{node_id}: not {want} after {timeout:g} s")
        if errors:
            raise errors[0]

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    self._thread = None
                    return
            nodes, failure = self._list()
            with self._lock:
                for node_id, (want, done, errors) in list(self._waiting.items()):
                    error = failure or _check(nodes.get(node_id), node_id, want)
                    if error is not None or _reached(nodes.get(node_id), want):
                        errors.extend([error] if error else [])
                        del self._waiting[node_id]
                        done.set()
            time.sleep(self._poll)

    def _list(self) -> tuple[dict[str, Any], Exception | None]:
        fields = ["uuid", "provision_state", "target_provision_state", "last_error"]
        try:
            return {node.id: node for node in self._conn.baremetal.nodes(fields=fields)}, None
        except Exception as exc:  # the API is down: every waiter learns it
            return {}, exc


def _reached(node: Any, want: str) -> bool:
    return node is not None and node.provision_state == want and not node.target_provision_state


def _check(node: Any, node_id: str, want: str) -> Exception | None:
    if node is None:
        return ProvisionError(f"{node_id}: gone while waiting for {want}")
    state = node.provision_state or ""
    if state.endswith("failed") or state == "error":
        return ProvisionError(f"{node_id}: {state} ({node.last_error}) waiting for {want}")
    return None


def enroll(
    conn: Connection, spec: dict[str, Any], waiter: StateWaiter, *, deployed: bool = True
) -> None:
    """Create one node with its owner, lessee and ports; take it to ``active`` (or
    ``available`` if not ``deployed``)."""
    node_id: str = spec["create"]["uuid"]
    conn.baremetal.create_node(**spec["create"])
    conn.baremetal.update_node(node_id, owner=spec["owner"], lessee=spec["lessee"])
    for port in spec["ports"]:
        conn.baremetal.create_port(node_id=node_id, **port)
    steps = [("manage", "manageable"), ("provide", "available")]
    for target, want in steps:
        conn.baremetal.set_node_provision_state(node_id, target, wait=False)
        waiter.wait(node_id, want)
    if deployed:
        conn.baremetal.update_node(node_id, instance_info=spec["instance_info"])
        conn.baremetal.set_node_provision_state(node_id, "active", wait=False)
        waiter.wait(node_id, "active")


def seed_nodes(
    conn: Connection,
    count: int,
    *,
    prefix: str = "node",
    deployed: bool = True,
    start_index: int = 0,
    concurrency: int = 8,
) -> list[dict[str, Any]]:
    """Enrol ``count`` fake-hardware nodes in a thread pool and take each to ``active``
    (``available`` if not ``deployed``).

    Returns the specs used (see :func:`node_spec`); ``spec["create"]["driver_info"]`` holds
    each node's BMC password, which the API will later show masked.
    """
    specs = [node_spec(i, prefix) for i in range(start_index, start_index + count)]
    waiter = StateWaiter(conn)
    _parallel(lambda spec: enroll(conn, spec, waiter, deployed=deployed), specs, concurrency)
    return specs


def credentials(nodes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The credential document Ephyra reads: BMC passwords by node name."""
    by_name = {spec["create"]["name"]: spec["create"]["driver_info"] for spec in nodes}
    passwords = {name: {"ipmi_password": info["ipmi_password"]} for name, info in by_name.items()}
    return {"nodes": passwords}


def write_credentials(path: str | os.PathLike[str], nodes: Sequence[dict[str, Any]]) -> Path:
    """Write the credential file (YAML, mode 0600) for the nodes :func:`seed_nodes` returned."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(credentials(nodes), out, sort_keys=True)
    return target


def _remove(conn: Connection, node: Any, timeout: float) -> None:
    """Maintenance, then delete: Ironic deletes a node in maintenance in any stable state."""
    from openstack import exceptions

    deadline = time.monotonic() + timeout
    while True:
        try:
            if node.is_protected:
                conn.baremetal.update_node(node.id, is_protected=False)
            if not node.is_maintenance:
                conn.baremetal.set_node_maintenance(node.id, reason="testbed clear")
            conn.baremetal.delete_node(node.id, ignore_missing=True)
            return
        except exceptions.ConflictException:  # locked: a transition is still running
            if time.monotonic() > deadline:
                raise
            time.sleep(POLL_S)
            node = conn.baremetal.get_node(node.id)


def clear(conn: Connection, *, concurrency: int = 8, timeout: float = WAIT_TIMEOUT_S) -> int:
    """Remove every node (and so every port) of a control plane. Returns how many."""
    nodes = list(conn.baremetal.nodes(fields=["uuid", "maintenance", "protected"]))
    _parallel(lambda node: _remove(conn, node, timeout), nodes, concurrency)
    return len(nodes)


def node_fields(node: Any) -> dict[str, Any]:
    """The node's NODE_FIELDS, by their server-side names."""
    return {field: getattr(node, _SDK_ATTR.get(field, field)) for field in NODE_FIELDS}


def _node_view(node: Any, ports: list[Any]) -> dict[str, Any]:
    view = node_fields(node)
    view["instance_info"] = {
        k: v for k, v in (node.instance_info or {}).items() if k not in IRONIC_ADDED_INSTANCE_KEYS
    }
    view["ports"] = sorted(
        (port.id, port.address, port.is_pxe_enabled, port.extra or {}) for port in ports
    )
    return view


def snapshot(conn: Connection) -> dict[str, dict[str, Any]]:
    """Per node uuid, the fields a move must keep (``driver_info`` as the API shows it)."""
    by_node: dict[str, list[Any]] = {}
    for port in conn.baremetal.ports(details=True):
        by_node.setdefault(port.node_id, []).append(port)
    return {
        node.id: _node_view(node, by_node.get(node.id, []))
        for node in conn.baremetal.nodes(details=True)
    }
