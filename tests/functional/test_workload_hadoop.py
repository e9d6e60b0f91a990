"""The ``hadoop`` workload against the simulator of the NameNode JMX and RM REST endpoints.

No Hadoop runs in the test environment: :mod:`testbed.hadoop_sim` serves the
documented answers, re-reads the real hosts/exclude files on ``refreshNodes`` and moves
hosts through the real intermediate states after a short delay.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ephyra.errors import NodeDeferred, PluginError, StepFailed
from ephyra.workloads import Workload, load_workload
from ephyra.workloads.base import NodeRef
from ephyra.workloads.hadoop import HadoopWorkload
from testbed.hadoop_sim import HadoopSimulator, argv, environment, refresh_command

HOSTS = ["dn1", "dn2", "dn3"]
DELAY = 0.2
DN1 = NodeRef(uuid="uuid-1", name="dn1")
DN2 = NodeRef(uuid="uuid-2", name="dn2")
PY = shlex.quote(sys.executable)


@dataclass
class Cluster:
    sim: HadoopSimulator
    hosts_file: Path
    exclude_file: Path
    refresh_log: Path

    @property
    def url(self) -> str:
        return self.sim.url

    def options(self, **overrides: str) -> dict[str, str]:
        refresh = refresh_command(self.url)
        log = shlex.quote(str(self.refresh_log))
        options = {
            "namenode_url": self.url,
            "resourcemanager_url": self.url,
            "hosts_file": str(self.hosts_file),
            "yarn_exclude_file": str(self.exclude_file),
            "hdfs_refresh_command": f"echo hdfs >> {log} && {refresh} --service hdfs",
            "yarn_refresh_command": f"echo yarn >> {log} && {refresh} --service yarn "
            "-g {timeout}",
            "wait_timeout": "10",
            "poll_interval": "0.05",
            "http_timeout": "2",
        }
        options.update(overrides)
        return {k: v for k, v in options.items() if v != ""}

    def workload(self, **overrides: str) -> HadoopWorkload:
        workload = load_workload("hadoop", self.options(**overrides))
        assert isinstance(workload, HadoopWorkload)
        return workload

    def knobs(self, **body: Any) -> None:
        requests.post(f"{self.url}/_sim/state", json=body, timeout=5).raise_for_status()

    def state(self) -> dict[str, Any]:
        answer = requests.get(f"{self.url}/_sim/state", timeout=5)
        answer.raise_for_status()
        hosts: dict[str, Any] = answer.json()["hosts"]
        return hosts

    def refreshes(self) -> list[str]:
        return self.refresh_log.read_text().split() if self.refresh_log.exists() else []

    def hosts_entries(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = json.loads(self.hosts_file.read_text())
        return entries


def write_hosts(path: Path, entries: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps(entries, indent=2) + "\n")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    hosts_file, exclude_file = tmp_path / "dfs.hosts.json", tmp_path / "yarn.exclude"
    write_hosts(
        hosts_file, [{"hostName": h, "upgradeDomain": f"ud{i}"} for i, h in enumerate(HOSTS)]
    )
    exclude_file.write_text("# managed by the operator\nold-node-9\n")
    with HadoopSimulator(HOSTS, hosts_file, exclude_file, delay=DELAY) as sim:
        yield Cluster(sim, hosts_file, exclude_file, tmp_path / "refreshes.log")


def watch(cluster: Cluster, host: str, stop: threading.Event, seen: list[tuple[str, str]]) -> None:
    while not stop.is_set():
        state = cluster.state()[host]
        if not seen or seen[-1] != (state["admin"], state["nm"]):
            seen.append((state["admin"], state["nm"]))
        time.sleep(0.02)


def prepare_watching(cluster: Cluster, workload: HadoopWorkload, node: NodeRef) -> list[Any]:
    seen: list[tuple[str, str]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(cluster, node.name, stop, seen))
    watcher.start()
    try:
        workload.prepare(node)
    finally:
        stop.set()
        watcher.join()
    return seen


def test_hadoop_loads_through_its_entry_point(cluster: Cluster) -> None:
    workload = load_workload("hadoop", cluster.options())
    assert isinstance(workload, HadoopWorkload) and isinstance(workload, Workload)
    assert workload.name == "hadoop"


def test_prepare_takes_the_host_out_through_the_intermediate_states(cluster: Cluster) -> None:
    before = cluster.hosts_entries()
    start = time.monotonic()
    seen = prepare_watching(cluster, cluster.workload(), DN1)
    assert time.monotonic() - start >= DELAY  # it waited for the NameNode and the RM
    admin_states = [admin for admin, _ in seen]
    nm_states = [nm for _, nm in seen]
    assert "Entering Maintenance" in admin_states
    assert admin_states.index("Entering Maintenance") < admin_states.index("In Maintenance")
    assert "DECOMMISSIONING" in nm_states
    assert nm_states.index("DECOMMISSIONING") < nm_states.index("DECOMMISSIONED")
    assert cluster.state()["dn1"] == {
        "live": True,
        "admin": "In Maintenance",
        "nm": "DECOMMISSIONED",
    }
    # Only dn1's entry changed in the hosts file; the exclude file gained dn1, kept the rest.
    after = cluster.hosts_entries()
    assert after[0] == {"hostName": "dn1", "upgradeDomain": "ud0", "adminState": "IN_MAINTENANCE"}
    assert after[1:] == before[1:]
    assert cluster.exclude_file.read_text() == "# managed by the operator\nold-node-9\ndn1\n"
    assert cluster.refreshes() == ["hdfs", "yarn"]
    assert not cluster.workload().node_health(DN1).ok


def test_prepare_again_returns_at_once_without_refreshing(cluster: Cluster) -> None:
    workload = cluster.workload()
    workload.prepare(DN1)
    prepared = cluster.state()["dn1"]
    workload.prepare(DN1)
    assert cluster.refreshes() == ["hdfs", "yarn"]  # the second asked nothing of Hadoop
    assert cluster.state()["dn1"] == prepared


def test_prepare_is_vetoed_while_blocks_are_under_replicated(cluster: Cluster) -> None:
    hosts_before, exclude_before = cluster.hosts_file.read_text(), cluster.exclude_file.read_text()
    cluster.knobs(under_replicated_blocks=12)
    with pytest.raises(NodeDeferred, match="12 under-replicated blocks"):
        cluster.workload().prepare(DN1)
    assert cluster.hosts_file.read_text() == hosts_before
    assert cluster.exclude_file.read_text() == exclude_before
    assert cluster.refreshes() == []
    assert cluster.state()["dn1"]["admin"] == "In Service"
    # A higher threshold lets it through.
    cluster.workload(max_under_replicated="20").prepare(DN1)
    assert cluster.state()["dn1"]["admin"] == "In Maintenance"


def test_prepare_is_vetoed_while_blocks_are_missing(cluster: Cluster) -> None:
    cluster.knobs(missing_blocks=2)
    with pytest.raises(NodeDeferred, match="2 missing blocks"):
        cluster.workload(max_under_replicated="100").prepare(DN1)


def out_of_service(hosts: dict[str, Any]) -> list[str]:
    """The hosts on their way out or out: DataNode not In Service, or NodeManager not RUNNING."""
    return sorted(h for h, s in hosts.items() if s["admin"] != "In Service" or s["nm"] != "RUNNING")


@dataclass
class Watched:
    """Every state of the cluster seen while a test ran (hosts -> DataNode and NM states)."""

    seen: list[dict[str, Any]]
    stop: threading.Event

    def out_at_once(self) -> int:
        return max((len(out_of_service(hosts)) for hosts in self.seen), default=0)


@contextmanager
def watching(cluster: Cluster) -> Iterator[Watched]:
    watched = Watched([], threading.Event())

    def watch() -> None:
        while not watched.stop.is_set():
            hosts = cluster.state()
            if not watched.seen or watched.seen[-1] != hosts:
                watched.seen.append(hosts)
            watched.stop.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield watched
    finally:
        watched.stop.set()
        watcher.join()


def until(what: str, done: Callable[[], bool], within: float = 60.0) -> None:
    """Wait for ``done`` (an event the test caused); fail naming ``what`` past ``within``."""
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline, f"not seen within {within:g}s: {what}"
        time.sleep(0.02)


def in_background(call: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # seen by the test, not lost in the thread
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, raised


def test_one_host_at_a_time(cluster: Cluster) -> None:
    cluster.knobs(hold_transitions=True)  # dn2 stays on its way out until released
    # generous: the prepares end as soon as the transitions are released
    first, again = cluster.workload(wait_timeout="300"), cluster.workload(wait_timeout="300")
    with watching(cluster) as watched:
        taking, raised = in_background(lambda: first.prepare(DN2))
        until(
            "dn2 entering maintenance, its NodeManager decommissioning",
            lambda: (
                cluster.state()["dn2"]
                == {"live": True, "admin": "Entering Maintenance", "nm": "DECOMMISSIONING"}
            ),
        )
        with pytest.raises(NodeDeferred) as caught:
            cluster.workload().prepare(DN1)
        assert "DataNode(s) dn2 entering maintenance" in str(caught.value)
        assert "NodeManager(s) dn2 decommissioning" in str(caught.value)
        without_yarn = cluster.workload(resourcemanager_url="", yarn_exclude_file="")
        with pytest.raises(NodeDeferred, match=r"DataNode\(s\) dn2"):
            without_yarn.prepare(DN1)
        # dn2's own prepare, from another process (a resume), is not vetoed by its own
        # transition: it refreshes HDFS and YARN again and waits with the first one.
        resuming, raised_again = in_background(lambda: again.prepare(DN2))
        until("the second prepare of dn2 refreshing", lambda: len(cluster.refreshes()) == 4)
        assert taking.is_alive() and resuming.is_alive()  # both wait for the held transition
        # a prepare that waits longer than it may fails its step, saying what it saw last
        hurried = cluster.workload(
            wait_timeout="0.5", hdfs_refresh_command="true", yarn_refresh_command="true"
        )
        with pytest.raises(StepFailed, match=r"wait_timeout=0\.5s; last seen: .*Entering Main"):
            hurried.prepare(DN2)
        cluster.knobs(hold_transitions=False)
        taking.join()
        resuming.join()
    assert raised == [] and raised_again == []
    assert cluster.refreshes() == ["hdfs", "yarn", "hdfs", "yarn"]  # none for dn1
    hosts = cluster.state()
    assert hosts["dn2"] == {"live": True, "admin": "In Maintenance", "nm": "DECOMMISSIONED"}
    assert out_of_service(hosts) == ["dn2"]
    assert watched.seen and watched.out_at_once() == 1  # never two hosts out at once
    assert all(seen["dn1"] == hosts["dn1"] for seen in watched.seen)  # dn1 never moved
    assert "dn1" not in cluster.exclude_file.read_text().split()


def test_two_threads_cannot_both_start_a_removal(cluster: Cluster) -> None:
    cluster.knobs(hold_transitions=True)
    workload = cluster.workload(wait_timeout="1")  # one instance, as the forklift shares it
    outcomes: dict[str, str] = {}

    def prepare(node: NodeRef) -> None:
        try:
            workload.prepare(node)
            outcomes[node.label] = "prepared"
        except NodeDeferred:
            outcomes[node.label] = "deferred"
        except StepFailed:
            outcomes[node.label] = "timed out"  # held in "Entering Maintenance"

    threads = [threading.Thread(target=prepare, args=(node,)) for node in (DN1, DN2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["deferred", "timed out"]
    entering = [h for h, s in cluster.state().items() if s["admin"] == "Entering Maintenance"]
    assert len(entering) == 1


def test_decommission_mode(cluster: Cluster) -> None:
    seen = prepare_watching(cluster, cluster.workload(hdfs_mode="decommission"), DN1)
    assert "Decommission In Progress" in [admin for admin, _ in seen]
    assert cluster.state()["dn1"]["admin"] == "Decommissioned"
    assert cluster.hosts_entries()[0]["adminState"] == "DECOMMISSIONED"


def test_return_node_puts_everything_back(cluster: Cluster) -> None:
    hosts_before, exclude_before = cluster.hosts_file.read_text(), cluster.exclude_file.read_text()
    workload = cluster.workload()
    workload.prepare(DN1)
    workload.return_node(DN1)
    assert cluster.state()["dn1"] == {"live": True, "admin": "In Service", "nm": "RUNNING"}
    assert json.loads(cluster.hosts_file.read_text()) == json.loads(hosts_before)
    assert cluster.exclude_file.read_text() == exclude_before
    assert workload.node_health(DN1).ok
    refreshes = len(cluster.refreshes())
    workload.return_node(DN1)  # idempotent: nothing to do
    assert len(cluster.refreshes()) == refreshes


def test_return_waits_for_the_datanode_to_come_back(cluster: Cluster) -> None:
    workload = cluster.workload()
    workload.prepare(DN1)
    cluster.knobs(hosts={"dn1": {"live": False}})  # the machine is being moved
    assert workload.app_health().ok  # a dead DataNode in maintenance is expected
    threading.Timer(0.4, cluster.knobs, kwargs={"hosts": {"dn1": {"live": True}}}).start()
    start = time.monotonic()
    workload.return_node(DN1)
    assert time.monotonic() - start >= 0.4
    assert cluster.state()["dn1"] == {"live": True, "admin": "In Service", "nm": "RUNNING"}


def test_include_all_hosts_file_gets_no_include_list(cluster: Cluster) -> None:
    # An empty combined hosts file lets every DataNode register. Returning dn1 must not
    # leave {"hostName": "dn1"} alone in it: that would exclude dn2 and dn3.
    write_hosts(cluster.hosts_file, [])
    workload = cluster.workload()
    workload.prepare(DN1)
    assert cluster.hosts_entries() == [{"hostName": "dn1", "adminState": "IN_MAINTENANCE"}]
    workload.return_node(DN1)
    assert cluster.hosts_entries() == []
    assert all(host["live"] for host in cluster.state().values())


def test_prepare_refuses_a_host_outside_the_include_list(cluster: Cluster) -> None:
    write_hosts(cluster.hosts_file, [{"hostName": "dn2"}, {"hostName": "dn3"}])
    with pytest.raises(StepFailed, match="dn1 has no entry"):
        cluster.workload().prepare(DN1)


def test_host_name_from_node_extra(cluster: Cluster) -> None:
    node = NodeRef(uuid="u", name="ironic-node-7", extra={"hadoop_host": "dn3"})
    cluster.workload(host_from="extra:hadoop_host").prepare(node)
    assert cluster.state()["dn3"]["admin"] == "In Maintenance"
    with pytest.raises(StepFailed, match="ironic-node-7 is not a DataNode"):
        cluster.workload().prepare(node)


def test_maintenance_expiry_is_written(cluster: Cluster) -> None:
    cluster.workload(maintenance_expiry="3600").prepare(DN1)
    expire = cluster.hosts_entries()[0]["maintenanceExpireTimeInMS"]
    assert abs(expire - (time.time() + 3600) * 1000) < 60_000


def test_without_yarn_only_hdfs_is_touched(cluster: Cluster) -> None:
    exclude_before = cluster.exclude_file.read_text()
    cluster.workload(resourcemanager_url="", yarn_exclude_file="").prepare(DN1)
    assert cluster.state()["dn1"] == {"live": True, "admin": "In Maintenance", "nm": "RUNNING"}
    assert cluster.exclude_file.read_text() == exclude_before
    assert cluster.refreshes() == ["hdfs"]


def test_node_health(cluster: Cluster) -> None:
    workload = cluster.workload()
    health = workload.node_health(DN1)
    assert health.ok and "In Service" in health.detail and "RUNNING" in health.detail
    cluster.knobs(hosts={"dn1": {"live": False}})
    assert not workload.node_health(DN1).ok
    cluster.knobs(hosts={"dn1": {"live": True, "nodemanager": "UNHEALTHY"}})
    health = workload.node_health(DN1)
    assert not health.ok and "UNHEALTHY" in health.detail


def test_app_health(cluster: Cluster) -> None:
    workload = cluster.workload()
    assert workload.app_health().ok
    cluster.knobs(missing_blocks=1)
    health = workload.app_health()
    assert not health.ok and "1 missing blocks" in health.detail
    cluster.knobs(missing_blocks=0, under_replicated_blocks=4)
    assert not workload.app_health().ok
    assert cluster.workload(max_under_replicated="4").app_health().ok
    cluster.knobs(under_replicated_blocks=0, hosts={"dn2": {"nodemanager": "LOST"}})
    health = workload.app_health()
    assert not health.ok and "1 lost" in health.detail
    cluster.knobs(hosts={"dn2": {"nodemanager": "RUNNING", "live": False}})
    health = workload.app_health()
    assert not health.ok and "dn2" in health.detail  # dead, and nobody took it out


def test_unreachable_namenode_is_a_step_failure(cluster: Cluster) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    workload = cluster.workload(namenode_url=closed)
    for call in (
        lambda: workload.prepare(DN1),
        workload.app_health,
        lambda: workload.node_health(DN1),
    ):
        with pytest.raises(StepFailed) as caught:
            call()
        assert closed in str(caught.value) and "cannot connect" in str(caught.value)
        assert "Traceback" not in str(caught.value)


def test_wrong_url_is_a_step_failure(cluster: Cluster) -> None:
    with pytest.raises(StepFailed, match="HTTP 404"):
        cluster.workload(resourcemanager_url=f"{cluster.url}/wrong").node_health(DN1)


def test_failed_refresh_command_is_a_step_failure(cluster: Cluster) -> None:
    workload = cluster.workload(
        hdfs_refresh_command="echo 'refreshNodes: access denied' >&2; exit 255"
    )
    with pytest.raises(StepFailed, match=r"(?s)exited with code 255.*access denied"):
        workload.prepare(DN1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"namenode_url": ""}, "namenode_url"),
        ({"yarn_exclude_file": ""}, "go together"),
        ({"hdfs_mode": "offline"}, "maintenance, decommission"),
        ({"host_from": "uuid"}, "host_from"),
        ({"wait_timeout": "long"}, "wait_timeout"),
        ({"namenode_url": "namenode:9870"}, "http"),
        ({"poll_intervall": "1"}, "valid: namenode_url"),
    ],
)
def test_bad_options_are_refused(cluster: Cluster, options: dict[str, str], message: str) -> None:
    with pytest.raises(PluginError, match=message):
        load_workload("hadoop", cluster.options(**options))


def test_simulator_cli_serves_the_documented_endpoints(tmp_path: Path) -> None:
    hosts_file, exclude_file = tmp_path / "hosts.json", tmp_path / "exclude"
    command = argv("serve", "--hosts", "a,b", "--hosts-file", str(hosts_file))
    command += ["--exclude-file", str(exclude_file)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment()) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            qry = "Hadoop:service=NameNode,name=NameNodeInfo"
            beans = requests.get(f"{url}/jmx", params={"qry": qry}, timeout=5).json()["beans"]
            assert [bean["name"] for bean in beans] == [qry]
            assert set(json.loads(beans[0]["LiveNodes"])) == {"a:9866", "b:9866"}
            nodes = requests.get(f"{url}/ws/v1/cluster/nodes", timeout=5).json()["nodes"]["node"]
            assert {node["nodeHostName"] for node in nodes} == {"a", "b"}
            assert json.loads(hosts_file.read_text()) == [{"hostName": "a"}, {"hostName": "b"}]
        finally:
            proc.terminate()
    assert proc.returncode == 0
