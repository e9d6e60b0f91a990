"""The ``hadoop`` workload: a Hadoop cluster (HDFS + YARN) on the nodes being moved.

Before a node leaves, its DataNode is put in HDFS maintenance (or decommissioned) through
the NameNode's combined hosts file and ``hdfs dfsadmin -refreshNodes``, and its
NodeManager is gracefully decommissioned through the ResourceManager's exclude file and
``yarn rmadmin -refreshNodes -g TIMEOUT -client``. Progress and health are read from the
NameNode's JMX servlet and the ResourceManager's REST API (see :mod:`.hadoop_api`); the
files are edited as described in :mod:`.hadoop_files`. ``docs/workloads.md`` has the
operator's guide.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from ephyra.errors import CommandTimeout, NodeDeferred, PluginError, StepFailed
from ephyra.urls import is_http, redact
from ephyra.workloads.base import Health, NodeRef
from ephyra.workloads.command import run_shell
from ephyra.workloads.hadoop_api import (
    IN_TRANSITION,
    OUT_OF_SERVICE,
    AdminState,
    DataNode,
    HadoopClient,
    NodeState,
)
from ephyra.workloads.hadoop_files import ExcludeFile, HostsFile


class HdfsMode(Enum):
    MAINTENANCE = "maintenance"
    DECOMMISSION = "decommission"

    @property
    def target(self) -> AdminState:
        if self is HdfsMode.MAINTENANCE:
            return AdminState.IN_MAINTENANCE
        return AdminState.DECOMMISSIONED


_REQUIRED = ("namenode_url", "hosts_file")
_DEFAULTS = MappingProxyType(
    {
        "resourcemanager_url": "",
        "yarn_exclude_file": "",
        "hdfs_refresh_command": "hdfs dfsadmin -refreshNodes",
        "yarn_refresh_command": "yarn rmadmin -refreshNodes -g {timeout} -client",
        "hdfs_mode": HdfsMode.MAINTENANCE.value,
        "yarn_decommission_timeout": "600",
        "wait_timeout": "1800",
        "poll_interval": "2",
        "host_from": "name",
        "max_under_replicated": "0",
        "maintenance_expiry": "0",
        "http_timeout": "10",
    }
)
OPTIONS = (*_REQUIRED, *_DEFAULTS)


def _number(opts: Mapping[str, str], key: str, minimum: float, integer: bool = False) -> float:
    raw = opts[key]
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise PluginError(f"workload 'hadoop': option {key}={raw!r} is not {kind}") from None
    if value < minimum:
        raise PluginError(f"workload 'hadoop': option {key}={raw!r} must be >= {minimum:g}")
    return value


def _url(opts: Mapping[str, str], key: str) -> str:
    url = opts[key].strip().rstrip("/")
    if url and not is_http(url):
        raise PluginError(f"workload 'hadoop': option {key}={redact(url)!r} is not an http(s) URL")
    return url


def _check_keys(opts: Mapping[str, str]) -> None:
    unknown = sorted(set(opts) - set(OPTIONS))
    if unknown:
        raise PluginError(
            f"workload 'hadoop': unknown option(s) {', '.join(unknown)} "
            f"(valid: {', '.join(OPTIONS)})"
        )
    missing = [key for key in _REQUIRED if not opts.get(key, "").strip()]
    if missing:
        raise PluginError(f"workload 'hadoop': option(s) {', '.join(missing)} required")


@dataclass(frozen=True)
class HadoopOptions:
    namenode_url: str
    hosts_file: str
    resourcemanager_url: str | None
    yarn_exclude_file: str | None
    hdfs_refresh_command: str
    yarn_refresh_command: str
    hdfs_mode: HdfsMode
    yarn_decommission_timeout: int
    wait_timeout: float
    poll_interval: float
    host_from: str
    max_under_replicated: int
    maintenance_expiry: float
    http_timeout: float

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> HadoopOptions:
        _check_keys(options)
        opts = {**_DEFAULTS, **options}
        rm_url, exclude = _url(opts, "resourcemanager_url"), opts["yarn_exclude_file"].strip()
        if bool(rm_url) != bool(exclude):
            raise PluginError(
                "workload 'hadoop': resourcemanager_url and yarn_exclude_file go together "
                "(give both to decommission NodeManagers, neither to leave YARN alone)"
            )
        if exclude.lower().endswith(".xml"):
            raise PluginError("workload 'hadoop': yarn_exclude_file must be a plain-text file")
        try:
            mode = HdfsMode(opts["hdfs_mode"])
        except ValueError:
            valid = ", ".join(m.value for m in HdfsMode)
            raise PluginError(f"workload 'hadoop': hdfs_mode must be one of {valid}") from None
        host_from = opts["host_from"]
        if host_from != "name" and not (host_from.startswith("extra:") and host_from[6:]):
            raise PluginError("workload 'hadoop': host_from must be 'name' or 'extra:KEY'")
        return cls(
            namenode_url=_url(opts, "namenode_url"),
            hosts_file=opts["hosts_file"],
            resourcemanager_url=rm_url or None,
            yarn_exclude_file=exclude or None,
            hdfs_refresh_command=opts["hdfs_refresh_command"],
            yarn_refresh_command=opts["yarn_refresh_command"],
            hdfs_mode=mode,
            yarn_decommission_timeout=int(_number(opts, "yarn_decommission_timeout", -1, True)),
            wait_timeout=_number(opts, "wait_timeout", 0.1),
            poll_interval=_number(opts, "poll_interval", 0.01),
            host_from=host_from,
            max_under_replicated=int(_number(opts, "max_under_replicated", 0, True)),
            maintenance_expiry=_number(opts, "maintenance_expiry", 0),
            http_timeout=_number(opts, "http_timeout", 0.1),
        )


Progress = Callable[[], tuple[bool, str]]


class HadoopWorkload:
    """Takes a node's DataNode and NodeManager out of service, and puts them back."""

    name = "hadoop"

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        self.options = HadoopOptions.parse(dict(options or {}))
        opts = self.options
        self.api = HadoopClient(opts.namenode_url, opts.resourcemanager_url, opts.http_timeout)
        self.hosts_file = HostsFile(opts.hosts_file)
        self.exclude_file = ExcludeFile(opts.yarn_exclude_file) if opts.yarn_exclude_file else None
        self._lock = threading.Lock()  # file edits, and the veto with the start of a removal

    # -- the node's Hadoop host name -------------------------------------------------

    def host(self, node: NodeRef) -> str:
        source = self.options.host_from
        if source == "name":
            if not node.name:
                raise StepFailed(f"node {node.uuid} has no name to use as its Hadoop host name")
            return node.name
        key = source.removeprefix("extra:")
        value = node.extra.get(key)
        if not isinstance(value, str) or not value.strip():
            raise StepFailed(f"node {node.label}: extra[{key!r}] holds no Hadoop host name")
        return value.strip()

    # -- prepare ---------------------------------------------------------------------

    def prepare(self, node: NodeRef) -> None:
        host = self.host(node)
        target = self.options.hdfs_mode.target
        deadline = time.monotonic() + self.options.wait_timeout
        # Checking that no other host is on its way out and starting this one's removal
        # are one step: two threads of the forklift must not both pass the check.
        with self._lock:
            datanodes, nodemanagers = self._view(host)
            datanode = datanodes[host.lower()]
            if self._prepared(host, datanode, nodemanagers, target):
                return
            if not self._resuming(host, datanode, nodemanagers, target):
                self._veto(host, datanodes, nodemanagers)
            self._take_out_of_service(host, target, deadline)
        if self.yarn:
            self._refresh("YARN", self._yarn_command(), deadline)
        goal = f"DataNode {target.value}" + (", NodeManager DECOMMISSIONED" if self.yarn else "")
        self._wait(host, deadline, lambda: self._progress_out(host, target), goal)

    @property
    def yarn(self) -> bool:
        return self.exclude_file is not None

    def _view(self, host: str) -> tuple[dict[str, DataNode], dict[str, NodeState]]:
        """DataNodes and NodeManagers; StepFailed when ``host`` is not among them."""
        datanodes = self.api.datanodes()
        if host.lower() not in datanodes:
            raise StepFailed(
                f"{host} is not a DataNode of the NameNode {self.options.namenode_url} "
                "(in neither LiveNodes nor DeadNodes)"
            )
        if not self.yarn:
            return datanodes, {}
        nodemanagers = self.api.rm_nodes()
        if host.lower() not in nodemanagers:
            raise StepFailed(
                f"{host} is not a NodeManager of the ResourceManager "
                f"{self.options.resourcemanager_url} (check the host name, or leave out "
                "resourcemanager_url and yarn_exclude_file for a cluster without YARN)"
            )
        return datanodes, nodemanagers

    def _prepared(
        self, host: str, datanode: DataNode, nms: dict[str, NodeState], target: AdminState
    ) -> bool:
        if datanode.admin is not target or self.hosts_file.state_of(host) is not target:
            return False
        if self.exclude_file is None:
            return True
        excluded = host.lower() in self.exclude_file.hosts()
        return excluded and nms.get(host.lower()) is NodeState.DECOMMISSIONED

    def _resuming(
        self, host: str, datanode: DataNode, nms: dict[str, NodeState], target: AdminState
    ) -> bool:
        """Whether an earlier ``prepare`` of this node already began taking it out."""
        if datanode.admin in IN_TRANSITION | OUT_OF_SERVICE:
            return True
        if self.hosts_file.state_of(host) is target:
            return True
        if self.exclude_file is None:
            return False
        nm = nms.get(host.lower())
        draining = nm in (NodeState.DECOMMISSIONING, NodeState.DECOMMISSIONED)
        return draining or host.lower() in self.exclude_file.hosts()

    def _veto(self, host: str, datanodes: dict[str, DataNode], nms: dict[str, NodeState]) -> None:
        metrics = self.api.fs_metrics()
        most = self.options.max_under_replicated
        reasons = []
        if metrics.under_replicated > most:
            reasons.append(f"{metrics.under_replicated} under-replicated blocks (at most {most})")
        if metrics.missing > 0:
            reasons.append(f"{metrics.missing} missing blocks")
        me = host.lower()
        busy = sorted(h for h, dn in datanodes.items() if h != me and dn.admin in IN_TRANSITION)
        if busy:
            reasons.append(f"DataNode(s) {', '.join(busy)} entering maintenance or decommissioning")
        draining = sorted(h for h, s in nms.items() if h != me and s is NodeState.DECOMMISSIONING)
        if draining:
            reasons.append(f"NodeManager(s) {', '.join(draining)} decommissioning")
        if reasons:
            raise NodeDeferred(f"hadoop: not taking {host} out now: {'; '.join(reasons)}")

    def _take_out_of_service(self, host: str, target: AdminState, deadline: float) -> None:
        """Edit both files and refresh HDFS (YARN's refresh may block: the caller runs it)."""
        expiry = self.options.maintenance_expiry
        expire_ms = int((time.time() + expiry) * 1000) if expiry else None
        self.hosts_file.set_state(host, target, expire_ms)
        self._refresh("HDFS", self.options.hdfs_refresh_command, deadline)
        if self.exclude_file is not None:
            self.exclude_file.add(host)

    def _progress_out(self, host: str, target: AdminState) -> tuple[bool, str]:
        return self._progress(host, target, NodeState.DECOMMISSIONED, need_live=False)

    def _progress(
        self, host: str, admin: AdminState, nm_goal: NodeState, need_live: bool
    ) -> tuple[bool, str]:
        """Whether the DataNode (and NodeManager) reached their goal, and what was seen."""
        datanode = self.api.datanodes().get(host.lower())
        done = datanode is not None and datanode.admin is admin and (datanode.live or not need_live)
        seen = [f"DataNode {datanode.describe() if datanode else 'unknown to the NameNode'}"]
        if self.yarn:
            nm = self.api.rm_nodes().get(host.lower())
            done = done and nm is nm_goal
            seen.append(f"NodeManager {nm.value if nm else 'unknown to the ResourceManager'}")
        return done, ", ".join(seen)

    # -- return ----------------------------------------------------------------------

    def return_node(self, node: NodeRef) -> None:
        host = self.host(node)
        deadline = time.monotonic() + self.options.wait_timeout
        if self._returned(host):
            return
        with self._lock:
            self.hosts_file.set_state(host, AdminState.NORMAL)
            if self.exclude_file is not None:
                self.exclude_file.remove(host)
        self._refresh("HDFS", self.options.hdfs_refresh_command, deadline)
        if self.yarn:
            self._refresh("YARN", self._yarn_command(), deadline)
        goal = "DataNode live and In Service" + (", NodeManager RUNNING" if self.yarn else "")
        self._wait(host, deadline, lambda: self._progress_back(host), goal)

    def _returned(self, host: str) -> bool:
        if self.hosts_file.state_of(host) not in (None, AdminState.NORMAL):
            return False
        if self.exclude_file is not None and host.lower() in self.exclude_file.hosts():
            return False
        return self._progress_back(host)[0]

    def _progress_back(self, host: str) -> tuple[bool, str]:
        return self._progress(host, AdminState.NORMAL, NodeState.RUNNING, need_live=True)

    # -- health ----------------------------------------------------------------------

    def node_health(self, node: NodeRef) -> Health:
        host = self.host(node)
        ok, seen = self._progress_back(host)
        return Health(ok=ok, detail=f"{host}: {seen}")

    def app_health(self) -> Health:
        metrics = self.api.fs_metrics()
        most = self.options.max_under_replicated
        problems = []
        if metrics.missing > 0:
            problems.append(f"{metrics.missing} missing blocks")
        if metrics.under_replicated > most:
            problems.append(f"{metrics.under_replicated} under-replicated blocks (at most {most})")
        parked = self.hosts_file.out_of_service_hosts()
        dead = sorted(
            host
            for host, dn in self.api.datanodes().items()
            if not dn.live and host not in parked and dn.admin not in OUT_OF_SERVICE
        )
        if dead:
            problems.append(f"dead DataNode(s) not taken out of service: {', '.join(dead)}")
        if self.yarn:
            yarn = self.api.rm_metrics()
            if yarn.unhealthy or yarn.lost:
                problems.append(f"{yarn.unhealthy} unhealthy and {yarn.lost} lost NodeManagers")
        summary = (
            f"HDFS: {metrics.live_datanodes} live and {metrics.dead_datanodes} dead DataNodes, "
            f"{metrics.under_replicated} under-replicated and {metrics.missing} missing blocks"
        )
        return Health(ok=not problems, detail="; ".join(problems) or summary)

    # -- shared ----------------------------------------------------------------------

    def _yarn_command(self) -> str:
        timeout = str(self.options.yarn_decommission_timeout)
        return self.options.yarn_refresh_command.replace("{timeout}", timeout)

    def _refresh(self, service: str, command: str, deadline: float) -> None:
        left = max(1.0, deadline - time.monotonic())
        try:
            result = run_shell(command, left)
        except CommandTimeout:
            raise StepFailed(
                f"{service} refresh command still running when wait_timeout ran out "
                f"({left:.0f}s left): {command}"
            ) from None
        except OSError as exc:
            raise StepFailed(f"{service} refresh command could not be started: {exc}") from None
        if result.returncode != 0:
            tail = result.tail()
            raise StepFailed(
                f"{service} refresh command {result.describe_exit()}: {command}"
                + (f"\n{tail}" if tail else "")
            )

    def _wait(self, host: str, deadline: float, progress: Progress, goal: str) -> None:
        """Poll ``progress`` until it says done; StepFailed when the deadline passes.

        A NameNode or ResourceManager that does not answer for a while is waited for too:
        only the deadline ends the wait.
        """
        while True:
            try:
                done, seen = progress()
            except StepFailed as exc:
                done, seen = False, str(exc)
            if done:
                return
            now = time.monotonic()
            if now >= deadline:
                raise StepFailed(
                    f"{host}: {goal} not reached within wait_timeout="
                    f"{self.options.wait_timeout:g}s; last seen: {seen}"
                )
            time.sleep(min(self.options.poll_interval, deadline - now))
