"""Read-only client of Hadoop's documented HTTP interfaces, for the ``hadoop`` workload.

* NameNode JMX servlet ``GET {namenode}/jmx?qry=BEAN`` answers ``{"beans": [{"name": BEAN,
  ...}]}``. Bean ``Hadoop:service=NameNode,name=NameNodeInfo`` carries ``LiveNodes`` and
  ``DeadNodes``: JSON *strings* mapping ``"host:xferPort"`` to an object whose
  ``adminState`` is the display value of ``DatanodeInfo.AdminStates`` ("In Service", ...).
  Bean ``Hadoop:service=NameNode,name=FSNamesystem`` carries ``UnderReplicatedBlocks``,
  ``MissingBlocks``, ``NumLiveDataNodes`` and ``NumDeadDataNodes``.
* ResourceManager REST ``GET {rm}/ws/v1/cluster/nodes`` answers ``{"nodes": {"node": [{
  "nodeHostName": ..., "state": "RUNNING", ...}]}}`` and ``GET {rm}/ws/v1/cluster/metrics``
  answers ``{"clusterMetrics": {"unhealthyNodes": ..., "lostNodes": ..., ...}}``.

Every failure to get or understand an answer is a :class:`ephyra.errors.StepFailed` that
names the URL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

import requests

from ephyra.errors import StepFailed

NAMENODE_INFO_BEAN = "Hadoop:service=NameNode,name=NameNodeInfo"
FSNAMESYSTEM_BEAN = "Hadoop:service=NameNode,name=FSNamesystem"


class AdminState(Enum):
    """A DataNode's admin state (``DatanodeInfo.AdminStates``).

    Member names are what the combined hosts file says (``"adminState": "IN_MAINTENANCE"``),
    values what the NameNode's JMX shows (``"adminState": "In Maintenance"``).
    """

    NORMAL = "In Service"
    DECOMMISSION_INPROGRESS = "Decommission In Progress"
    DECOMMISSIONED = "Decommissioned"
    ENTERING_MAINTENANCE = "Entering Maintenance"
    IN_MAINTENANCE = "In Maintenance"


# States an administrator asks for and the states the NameNode passes through on the way.
IN_TRANSITION = frozenset({AdminState.ENTERING_MAINTENANCE, AdminState.DECOMMISSION_INPROGRESS})
OUT_OF_SERVICE = frozenset({AdminState.IN_MAINTENANCE, AdminState.DECOMMISSIONED})


class NodeState(Enum):
    """A NodeManager's state as the ResourceManager reports it (``NodeState``)."""

    NEW = "NEW"
    RUNNING = "RUNNING"
    UNHEALTHY = "UNHEALTHY"
    DECOMMISSIONING = "DECOMMISSIONING"
    DECOMMISSIONED = "DECOMMISSIONED"
    LOST = "LOST"
    REBOOTED = "REBOOTED"
    SHUTDOWN = "SHUTDOWN"


# The RM keeps nodes in these states in its inactive list; a node that re-registers
# appears a second time, in an active state, which then is the one that counts.
INACTIVE_NODE_STATES = frozenset(
    {NodeState.DECOMMISSIONED, NodeState.LOST, NodeState.REBOOTED, NodeState.SHUTDOWN}
)


@dataclass(frozen=True)
class DataNode:
    host: str
    live: bool
    # None: a dead node on a NameNode too old to report its admin state.
    admin: AdminState | None

    def describe(self) -> str:
        admin = self.admin.value if self.admin else "admin state unknown"
        return f"{'live' if self.live else 'dead'}, {admin}"


@dataclass(frozen=True)
class FsMetrics:
    under_replicated: int
    missing: int
    live_datanodes: int
    dead_datanodes: int


@dataclass(frozen=True)
class YarnMetrics:
    unhealthy: int
    lost: int


def host_of(address: str) -> str:
    """``"host:port"`` → ``"host"`` (lower case, as host names compare)."""
    host, _, port = address.rpartition(":")
    return (host if host and port.isdigit() else address).lower()


def _errno_text(exc: Exception) -> str:
    match = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
    return match.group(0).strip() if match else type(exc).__name__


class HadoopClient:
    """GETs against one NameNode and, optionally, one ResourceManager; thread-safe."""

    def __init__(self, namenode_url: str, rm_url: str | None, timeout: float) -> None:
        self.namenode_url = namenode_url.rstrip("/")
        self.rm_url = rm_url.rstrip("/") if rm_url else None
        self.timeout = timeout

    def _get_json(self, url: str, params: dict[str, str] | None = None) -> Any:
        shown = f"{url}?{'&'.join(f'{k}={v}' for k, v in params.items())}" if params else url
        try:
            # No shared Session: the forklift may call from several threads at once.
            resp = requests.get(
                url, params=params, timeout=self.timeout, headers={"Accept": "application/json"}
            )
        except requests.Timeout:
            raise StepFailed(f"GET {shown}: no answer within {self.timeout:g}s") from None
        except requests.ConnectionError as exc:
            raise StepFailed(f"GET {shown}: cannot connect ({_errno_text(exc)})") from None
        except requests.RequestException as exc:
            raise StepFailed(f"GET {shown}: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise StepFailed(f"GET {shown}: HTTP {resp.status_code} {resp.reason}")
        try:
            return resp.json()
        except ValueError:
            raise StepFailed(f"GET {shown}: the answer is not JSON") from None

    def _bean(self, name: str) -> dict[str, Any]:
        url = f"{self.namenode_url}/jmx"
        body = self._get_json(url, {"qry": name})
        beans = body.get("beans") if isinstance(body, dict) else None
        for bean in beans if isinstance(beans, list) else []:
            if isinstance(bean, dict) and bean.get("name") == name:
                return bean
        raise StepFailed(f"GET {url}?qry={name}: no such bean (is {self.namenode_url} a NameNode?)")

    def datanodes(self) -> dict[str, DataNode]:
        """Every DataNode the NameNode knows, by lower-case host name; live ones win."""
        bean = self._bean(NAMENODE_INFO_BEAN)
        nodes: dict[str, DataNode] = {}
        for attribute, live in (("DeadNodes", False), ("LiveNodes", True)):
            for address, info in _json_attribute(bean, attribute, self.namenode_url).items():
                host = host_of(address)
                nodes[host] = DataNode(host, live, self._admin_state(host, info, live))
        return nodes

    def _admin_state(self, host: str, info: Any, live: bool) -> AdminState | None:
        if not isinstance(info, dict):
            info = {}
        text = info.get("adminState")
        if text is None:
            if live:
                raise StepFailed(f"NameNode {self.namenode_url}: no adminState for live {host}")
            return AdminState.DECOMMISSIONED if info.get("decommissioned") is True else None
        try:
            return AdminState(text)
        except ValueError:
            raise StepFailed(
                f"NameNode {self.namenode_url}: unknown adminState {text!r} for {host}"
            ) from None

    def fs_metrics(self) -> FsMetrics:
        bean = self._bean(FSNAMESYSTEM_BEAN)
        where = f"{self.namenode_url} bean {FSNAMESYSTEM_BEAN}"
        return FsMetrics(
            under_replicated=_count(bean, "UnderReplicatedBlocks", where),
            missing=_count(bean, "MissingBlocks", where),
            live_datanodes=_count(bean, "NumLiveDataNodes", where),
            dead_datanodes=_count(bean, "NumDeadDataNodes", where),
        )

    def _rm(self) -> str:
        if self.rm_url is None:
            raise StepFailed("no resourcemanager_url configured")
        return self.rm_url

    def rm_nodes(self) -> dict[str, NodeState]:
        """Every NodeManager the RM knows, by lower-case host name; active entries win."""
        url = f"{self._rm()}/ws/v1/cluster/nodes"
        body = self._get_json(url)
        if not isinstance(body, dict):
            raise StepFailed(f"GET {url}: unexpected answer (no 'nodes' object)")
        wrapper = body.get("nodes") or {}  # {"nodes": null} when the RM knows no node
        entries = (wrapper.get("node") or []) if isinstance(wrapper, dict) else []
        states: dict[str, NodeState] = {}
        for entry in [entries] if isinstance(entries, dict) else entries:
            if not isinstance(entry, dict):
                continue
            host = str(entry.get("nodeHostName", "")).lower()
            try:
                state = NodeState(entry.get("state"))
            except ValueError:
                raise StepFailed(f"GET {url}: unknown state {entry.get('state')!r}") from None
            known = states.get(host)
            if known is None or known in INACTIVE_NODE_STATES:
                states[host] = state
        return states

    def rm_metrics(self) -> YarnMetrics:
        url = f"{self._rm()}/ws/v1/cluster/metrics"
        body = self._get_json(url)
        metrics = body.get("clusterMetrics") if isinstance(body, dict) else None
        if not isinstance(metrics, dict):
            raise StepFailed(f"GET {url}: unexpected answer (no 'clusterMetrics' object)")
        return YarnMetrics(
            unhealthy=_count(metrics, "unhealthyNodes", url),
            lost=_count(metrics, "lostNodes", url),
        )


def _json_attribute(bean: dict[str, Any], attribute: str, where: str) -> dict[str, Any]:
    """A bean attribute that holds a JSON object serialised as a string."""
    raw = bean.get(attribute)
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise StepFailed(f"NameNode {where}: {attribute} is not valid JSON") from None
    if not isinstance(value, dict):
        raise StepFailed(f"NameNode {where}: {attribute} is not a JSON object")
    return value


def _count(source: dict[str, Any], key: str, where: str) -> int:
    value = source.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise StepFailed(f"{where}: {key} missing or not a number ({value!r})")
    return value
