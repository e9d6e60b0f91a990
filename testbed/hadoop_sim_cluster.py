"""The in-memory cluster behind :mod:`testbed.hadoop_sim` (a simulator).

It keeps, for each host, a DataNode (live or dead, admin state) and a NodeManager (state),
moves them as ``refreshNodes`` would after re-reading the hosts and exclude files, and
renders the documented JSON answers of the NameNode JMX servlet and the ResourceManager
REST API.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

NAMENODE_INFO = "Hadoop:service=NameNode,name=NameNodeInfo"
FSNAMESYSTEM = "Hadoop:service=NameNode,name=FSNamesystem"
XFER_PORT, NM_PORT, VERSION = 9866, 45454, "3.3.6"


class DnAdmin(Enum):
    """``DatanodeInfo.AdminStates``: name as in the hosts file, value as JMX displays it."""

    NORMAL = "In Service"
    DECOMMISSION_INPROGRESS = "Decommission In Progress"
    DECOMMISSIONED = "Decommissioned"
    ENTERING_MAINTENANCE = "Entering Maintenance"
    IN_MAINTENANCE = "In Maintenance"


class NmState(Enum):
    NEW = "NEW"
    RUNNING = "RUNNING"
    UNHEALTHY = "UNHEALTHY"
    DECOMMISSIONING = "DECOMMISSIONING"
    DECOMMISSIONED = "DECOMMISSIONED"
    LOST = "LOST"
    REBOOTED = "REBOOTED"
    SHUTDOWN = "SHUTDOWN"


class SimError(Exception):
    """A request the simulator refuses (answered 400 or 500)."""


@dataclass
class SimHost:
    name: str
    ip: str
    live: bool = True
    admin: DnAdmin = DnAdmin.NORMAL
    admin_next: tuple[DnAdmin, float] | None = None  # (state, monotonic time it is reached)
    nm: NmState = NmState.RUNNING
    nm_next: tuple[NmState, float] | None = None


def exclude_file_hosts(path: Path) -> set[str]:
    """Host names in a plain-text exclude file, as ``HostsFileReader`` reads them."""
    if not path.exists():
        return set()
    hosts: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        for word in line.split():
            if word.startswith("#"):
                break
            hosts.add(word.lower())
    return hosts


class SimCluster:
    """The in-memory cluster: one DataNode and one NodeManager a host."""

    def __init__(self, hosts: list[str], hosts_file: Path, exclude_file: Path, delay: float):
        self.hosts = [SimHost(h, f"10.0.0.{i + 1}") for i, h in enumerate(hosts)]
        self.hosts_file, self.exclude_file = Path(hosts_file), Path(exclude_file)
        self.delay = delay
        self.hold = False  # when True, hosts stay in their intermediate states
        self.under_replicated = 0
        self.missing = 0
        self.lock = threading.Lock()

    def write_initial_files(self) -> None:
        """Every host NORMAL in the hosts file, and an empty exclude file, where missing."""
        if not self.hosts_file.exists():
            entries = [{"hostName": h.name} for h in self.hosts]
            self.hosts_file.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        if not self.exclude_file.exists():
            self.exclude_file.write_text("", encoding="utf-8")

    def _advance(self) -> None:
        if self.hold:
            return
        now = time.monotonic()
        for host in self.hosts:
            if host.admin_next and host.admin_next[1] <= now:
                host.admin, host.admin_next = host.admin_next[0], None
            if host.nm_next and host.nm_next[1] <= now:
                host.nm, host.nm_next = host.nm_next[0], None

    def _host(self, name: str) -> SimHost:
        for host in self.hosts:
            if host.name.lower() == name.lower():
                return host
        raise SimError(f"no host {name!r} in the simulator")

    # -- refreshes -------------------------------------------------------------------

    def _read_hosts_file(self) -> list[dict[str, Any]]:
        try:
            entries = json.loads(self.hosts_file.read_text(encoding="utf-8") or "[]")
        except (OSError, ValueError) as exc:
            raise SimError(f"refreshNodes: cannot read {self.hosts_file}: {exc}") from None
        if not isinstance(entries, list):
            raise SimError(f"refreshNodes: {self.hosts_file} is not a JSON array")
        return entries

    def refresh_hdfs(self) -> None:
        """``hdfs dfsadmin -refreshNodes`` with ``CombinedHostFileManager``."""
        entries = self._read_hosts_file()
        wanted: dict[str, DnAdmin] = {}
        now_ms = time.time() * 1000
        for entry in entries:
            try:
                state = DnAdmin[entry.get("adminState", "NORMAL")]
            except KeyError:
                raise SimError(f"refreshNodes: bad adminState in {entry}") from None
            expire = entry.get("maintenanceExpireTimeInMS")
            if state is DnAdmin.IN_MAINTENANCE and expire is not None and expire <= now_ms:
                state = DnAdmin.NORMAL
            wanted[str(entry.get("hostName", "")).lower()] = state
        include_all = all(e.get("adminState", "NORMAL") != "NORMAL" for e in entries)
        with self.lock:
            self._advance()
            for host in self.hosts:
                if not include_all and host.name.lower() not in wanted:
                    host.live = False  # disallowed: the DataNode is told to shut down
                    continue
                self._start_admin(host, wanted.get(host.name.lower(), DnAdmin.NORMAL))

    def _start_admin(self, host: SimHost, target: DnAdmin) -> None:
        due = time.monotonic() + self.delay
        if target is DnAdmin.NORMAL:
            host.admin, host.admin_next = DnAdmin.NORMAL, None
        elif target is DnAdmin.IN_MAINTENANCE:
            if host.admin in (DnAdmin.ENTERING_MAINTENANCE, DnAdmin.IN_MAINTENANCE):
                return
            if not host.live:  # a dead node enters maintenance at once
                host.admin, host.admin_next = DnAdmin.IN_MAINTENANCE, None
            else:
                host.admin, host.admin_next = DnAdmin.ENTERING_MAINTENANCE, (target, due)
        elif host.admin not in (DnAdmin.DECOMMISSION_INPROGRESS, DnAdmin.DECOMMISSIONED):
            host.admin, host.admin_next = DnAdmin.DECOMMISSION_INPROGRESS, (target, due)

    def refresh_yarn(self, graceful: bool) -> None:
        """``yarn rmadmin -refreshNodes [-g TIMEOUT]`` with a plain-text exclude file."""
        excluded = exclude_file_hosts(self.exclude_file)
        with self.lock:
            self._advance()
            due = time.monotonic() + self.delay
            for host in self.hosts:
                if host.name.lower() in excluded:
                    if host.nm in (NmState.DECOMMISSIONING, NmState.DECOMMISSIONED):
                        continue
                    if graceful:
                        host.nm, host.nm_next = (
                            NmState.DECOMMISSIONING,
                            (NmState.DECOMMISSIONED, due),
                        )
                    else:
                        host.nm, host.nm_next = NmState.DECOMMISSIONED, None
                elif host.nm is NmState.DECOMMISSIONING:
                    host.nm, host.nm_next = NmState.RUNNING, None
                elif host.nm is NmState.DECOMMISSIONED:  # its NodeManager restarts, registers
                    host.nm_next = (NmState.RUNNING, due)

    # -- knobs -----------------------------------------------------------------------

    def apply(self, knobs: dict[str, Any]) -> None:
        """Knobs: ``under_replicated_blocks``, ``missing_blocks`` (int), ``transition_delay``
        (s), ``hold_transitions`` (bool), ``hosts``: ``{name: {"live": bool, "nodemanager":
        "UNHEALTHY"|..., "admin_state": "ENTERING_MAINTENANCE"|...}}``."""
        with self.lock:
            self._advance()
            if "under_replicated_blocks" in knobs:
                self.under_replicated = int(knobs["under_replicated_blocks"])
            if "missing_blocks" in knobs:
                self.missing = int(knobs["missing_blocks"])
            if "transition_delay" in knobs:
                self.delay = float(knobs["transition_delay"])
            if "hold_transitions" in knobs:
                self.hold = bool(knobs["hold_transitions"])
            for name, change in dict(knobs.get("hosts", {})).items():
                host = self._host(name)
                if "live" in change:
                    host.live = bool(change["live"])
                if "nodemanager" in change:
                    host.nm, host.nm_next = NmState(change["nodemanager"]), None
                if "admin_state" in change:
                    host.admin, host.admin_next = DnAdmin[change["admin_state"]], None

    # -- the documented answers --------------------------------------------------------

    def beans(self) -> list[dict[str, Any]]:
        with self.lock:
            self._advance()
            return [self._namenode_info(), self._fsnamesystem()]

    def _namenode_info(self) -> dict[str, Any]:
        live, dead, decom, entering = {}, {}, {}, {}
        for h in self.hosts:
            key, xfer = f"{h.name}:{XFER_PORT}", f"{h.ip}:{XFER_PORT}"
            if h.live:
                live[key] = {
                    **{"infoAddr": f"{h.ip}:9864", "infoSecureAddr": f"{h.ip}:0"},
                    **{"xferaddr": xfer, "location": "/default-rack", "lastContact": 0},
                    **{"usedSpace": 1 << 30, "adminState": h.admin.value, "nonDfsUsedSpace": 0},
                    **{"capacity": 1 << 40, "numBlocks": 100, "version": VERSION},
                    **{"used": 1 << 30, "remaining": (1 << 40) - (1 << 30), "volfails": 0},
                }
            else:
                dead[key] = {
                    "lastContact": 900,
                    "decommissioned": h.admin is DnAdmin.DECOMMISSIONED,
                    "adminState": h.admin.value,
                    "xferaddr": xfer,
                }
            progress = {
                "xferaddr": xfer,
                "underReplicatedBlocks": 0,
                "underReplicateInOpenFiles": 0,
            }
            if h.admin is DnAdmin.DECOMMISSION_INPROGRESS:
                decom[key] = {**progress, "decommissionOnlyReplicas": 0}
            if h.admin is DnAdmin.ENTERING_MAINTENANCE:
                entering[key] = {**progress, "maintenanceOnlyReplicas": 0}
        return {
            "name": NAMENODE_INFO,
            "modelerType": "org.apache.hadoop.hdfs.server.namenode.FSNamesystem",
            "Version": VERSION,
            "SoftwareVersion": VERSION,
            "ClusterId": "CID-ephyra-simulator",
            "Safemode": "",
            "NumberOfMissingBlocks": self.missing,
            "LiveNodes": json.dumps(live),
            "DeadNodes": json.dumps(dead),
            "DecomNodes": json.dumps(decom),
            "EnteringMaintenanceNodes": json.dumps(entering),
        }

    def _fsnamesystem(self) -> dict[str, Any]:
        def count(live: bool, *states: DnAdmin) -> int:
            return sum(
                1 for h in self.hosts if h.live is live and (not states or h.admin in states)
            )

        return {
            "name": FSNAMESYSTEM,
            "modelerType": "FSNamesystem",
            "tag.Context": "dfs",
            "tag.HAState": "active",
            "MissingBlocks": self.missing,
            "UnderReplicatedBlocks": self.under_replicated,
            "CorruptBlocks": 0,
            "BlocksTotal": 100 * len(self.hosts),
            "NumLiveDataNodes": count(True),
            "NumDeadDataNodes": count(False),
            "NumDecomLiveDataNodes": count(True, DnAdmin.DECOMMISSIONED),
            "NumDecomDeadDataNodes": count(False, DnAdmin.DECOMMISSIONED),
            "NumDecommissioningDataNodes": sum(
                1 for h in self.hosts if h.admin is DnAdmin.DECOMMISSION_INPROGRESS
            ),
            "NumInMaintenanceLiveDataNodes": count(True, DnAdmin.IN_MAINTENANCE),
            "NumInMaintenanceDeadDataNodes": count(False, DnAdmin.IN_MAINTENANCE),
            "NumEnteringMaintenanceDataNodes": sum(
                1 for h in self.hosts if h.admin is DnAdmin.ENTERING_MAINTENANCE
            ),
            "FSState": "Operational",
        }

    def rm_nodes(self) -> dict[str, Any]:
        with self.lock:
            self._advance()
            nodes = [
                {
                    **{"rack": "/default-rack", "state": h.nm.value, "id": f"{h.name}:{NM_PORT}"},
                    **{"nodeHostName": h.name, "nodeHTTPAddress": f"{h.name}:8042"},
                    **{"lastHealthUpdate": int(time.time() * 1000), "version": VERSION},
                    "healthReport": "simulated" if h.nm is NmState.UNHEALTHY else "",
                    **{"numContainers": 0, "usedMemoryMB": 0, "availMemoryMB": 8192},
                    **{"usedVirtualCores": 0, "availableVirtualCores": 8},
                }
                for h in self.hosts
            ]
        return {"nodes": {"node": nodes}}

    def rm_metrics(self) -> dict[str, Any]:
        with self.lock:
            self._advance()
            states = [h.nm for h in self.hosts]
        count = states.count
        return {
            "clusterMetrics": {
                **{"appsSubmitted": 0, "appsCompleted": 0, "appsPending": 0, "appsRunning": 0},
                "totalNodes": len(states),
                "activeNodes": count(NmState.RUNNING) + count(NmState.DECOMMISSIONING),
                "lostNodes": count(NmState.LOST),
                "unhealthyNodes": count(NmState.UNHEALTHY),
                "decommissioningNodes": count(NmState.DECOMMISSIONING),
                "decommissionedNodes": count(NmState.DECOMMISSIONED),
                "rebootedNodes": count(NmState.REBOOTED),
                "shutdownNodes": count(NmState.SHUTDOWN),
            }
        }

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            self._advance()
            hosts = {
                h.name: {"live": h.live, "admin": h.admin.value, "nm": h.nm.value}
                for h in self.hosts
            }
            return {
                "hosts": hosts,
                "under_replicated": self.under_replicated,
                "missing": self.missing,
            }
