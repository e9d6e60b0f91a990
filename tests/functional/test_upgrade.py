"""Rolling in-place upgrades against real Nova: the control plane first, then each compute
drained, restarted with its new release, gated on Nova reporting it up with the new
hypervisor version, and enabled again; a failing unit pauses the run at the failure
threshold. Kill -9 and resume, abort, and rollback (newest first, each compute drained
again) are the crash matrix's, in test_crash_upgrade.py."""

from __future__ import annotations

import json
import shlex
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.nova import NovaTestbed
from testbed.nova_watch import wait_until
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional

COMPUTES = ("compute-1", "compute-2", "compute-3")
CONTROL = ("nova-conductor", "nova-scheduler")


@pytest.fixture
def ephyra(clean_nova: NovaTestbed, tmp_path: Path) -> Iterator[Ephyra]:
    yield Ephyra(clean_nova.clouds_yaml, tmp_path / "state")
    changed = [n for n in (*COMPUTES, *CONTROL) if clean_nova.release(n) != "1.0.0"]
    with ThreadPoolExecutor(len(changed) or 1) as pool:  # the next test starts from 1.0.0
        list(pool.map(lambda name: clean_nova.set_release(name, "1.0.0"), changed))
    wait_until(lambda: _all_up(clean_nova), 60, "every service up at release 1.0.0")


def _all_up(nova: NovaTestbed) -> bool:
    services = nova.connect().compute.get("/os-services", microversion="2.80").json()["services"]
    versions = _hypervisors(nova)
    return all(s["state"] == "up" for s in services) and set(versions.values()) == {1000000}


def _hypervisors(nova: NovaTestbed) -> dict[str, int]:
    raw = nova.connect().compute.get("/os-hypervisors/detail", microversion="2.87").json()
    return {h["service"]["host"]: int(h["hypervisor_version"]) for h in raw["hypervisors"]}


def _services(nova: NovaTestbed) -> list[dict[str, Any]]:
    response = nova.connect().compute.get("/os-services", microversion="2.80")
    services: list[dict[str, Any]] = response.json()["services"]
    return services


def _inventory(nova: NovaTestbed, path: Path) -> Path:
    """The testbed as a static inventory: the controller's services, and each compute."""
    hosts: dict[str, Any] = {}
    for s in _services(nova):
        binary = s["binary"]
        if binary not in (*CONTROL, "nova-compute"):
            continue
        entry = hosts.setdefault(s["host"], {"roles": set(), "services": []})
        entry["roles"].add("compute" if binary == "nova-compute" else "controller")
        entry["services"].append({"name": binary, "project": "compute"})
    data = {
        "hosts": [
            {"name": name, "roles": sorted(h["roles"]), "services": h["services"]}
            for name, h in sorted(hosts.items())
        ]
    }
    path.write_text(yaml.safe_dump(data))
    return path


def _spec(nova: NovaTestbed, path: Path, release: str = "2.0.0", **extra: Any) -> Path:
    """Every service upgraded by the testbed's release command: config changed, process
    restarted. ``$FAIL_MARKER`` present makes compute-2's new release fail to start."""
    command = shlex.join(nova.release_command)
    name = 'n={service}; [ "$n" = nova-compute ] && n={host}; '
    spec: dict[str, Any] = {
        "release": release,
        "strategies": {
            "testbed": {
                "type": "command",
                "upgrade": name + f"{command} $n {{version}}",
                "downgrade": name + f"{command} $n {{version}}",
                "version": name + f"{command} $n",
            }
        },
        "strategy": "testbed",
        "roles": {
            "controller": {"max_at_once": 1},
            "compute": {"max_at_once": 1, "drain": True},
        },
        "gates": {
            "services_up": True,
            "hypervisor_version": "{version}",
            "timeout": 40,
            "interval": 0.5,
        },
        "evacuation": {"concurrency": 4, "per_host": 2, "max_per_group": 0},
        **extra,
    }
    path.write_text(yaml.safe_dump(spec))
    return path


@dataclass
class Watch:
    """Samples Nova every 0.1 s: which computes are disabled, how many servers each has,
    and when each hypervisor's version changes.

    For each host it keeps the last moment its old version was still seen
    (``old_seen``) and the first moment it was seen enabled again after being disabled
    (``enabled_seen``): a host enabled before its upgrade took effect would show enabled
    with its old version, and ``enabled_seen`` would come before ``old_seen``."""

    nova: NovaTestbed
    peak_disabled: int = 0
    changed: dict[str, float] = field(default_factory=dict)
    servers_at_change: dict[str, int] = field(default_factory=dict)
    old_seen: dict[str, float] = field(default_factory=dict)
    enabled_seen: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._on_before: dict[str, int] = {}
        self._was_disabled: set[str] = set()

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = self.nova.connect()
        while not self._stop.wait(0.1):
            try:
                asked = time.monotonic()
                versions = _hypervisors(self.nova)
                services = conn.compute.get("/os-services?binary=nova-compute").json()
                answered = time.monotonic()
                servers = conn.compute.get(
                    "/servers/detail?all_tenants=1", microversion="2.80"
                ).json()["servers"]
            except Exception as exc:  # the API restarts are not this test's
                self.errors.append(str(exc))
                continue
            disabled = {s["host"] for s in services["services"] if s["status"] == "disabled"}
            on: dict[str, int] = {h: 0 for h in COMPUTES}
            for s in servers:
                host = s.get("OS-EXT-SRV-ATTR:host")
                if host in on:
                    on[host] += 1
            self.peak_disabled = max(self.peak_disabled, len(disabled))
            for host in COMPUTES:
                if host in disabled:
                    self._was_disabled.add(host)
                elif host in self._was_disabled:
                    self.enabled_seen.setdefault(host, answered)
                if versions.get(host) == 1000000:
                    self.old_seen[host] = asked
                elif host not in self.changed:
                    self.changed[host] = asked
                    before = self._on_before.get(host, on[host])
                    self.servers_at_change[host] = max(on[host], before)
            self._on_before = on


def test_rolling_upgrade_control_plane_first_then_each_compute_drained(
    clean_nova: NovaTestbed, ephyra: Ephyra, tmp_path: Path
) -> None:
    servers = [sid for host in COMPUTES for sid in clean_nova.boot(host, 1)]
    spec = _spec(clean_nova, tmp_path / "spec.yaml")
    # planned from what Nova's APIs say the cloud runs
    plan = ephyra("upgrade", "plan", "--spec", str(spec), "--source", "openstack:nova")
    assert plan.code == 0, plan.err
    assert plan.out.index("nova-conductor") < plan.out.index("nova-scheduler")
    assert plan.out.index("nova-scheduler") < plan.out.index("data plane: compute")
    for host in COMPUTES:
        assert f"{host} [drain 1 server(s); testbed: nova-compute]" in plan.out

    conductor_before = _pid_heartbeat(clean_nova, "nova-conductor")
    with Watch(clean_nova) as watch:
        done = ephyra(
            "-v",
            "upgrade",
            "start",
            "--yes",
            "--spec",
            str(spec),
            "--source",
            "openstack:nova",
            "--os-cloud",
            "nova",
        )
    assert done.code == 0, done.err
    # every compute reports the new release, and was empty and disabled when it changed
    assert _hypervisors(clean_nova) == {h: 2000000 for h in COMPUTES}
    assert watch.peak_disabled == 1
    assert watch.servers_at_change == {h: 0 for h in COMPUTES}
    for host in COMPUTES:  # enabled again only once its new version was up
        assert watch.enabled_seen[host] > watch.old_seen[host], host
    changes = sorted(watch.changed, key=watch.changed.__getitem__)
    assert changes == list(COMPUTES)
    # the control plane was restarted with its new release before any compute
    for name in CONTROL:
        assert clean_nova.release(name) == "2.0.0"
    assert _pid_heartbeat(clean_nova, "nova-conductor") > conductor_before
    log = done.err
    first_compute = log.index("compute-1: testbed")
    assert log.index("nova-conductor") < first_compute
    # every compute enabled again, every server active
    assert all(s["status"] == "enabled" for s in _services(clean_nova))
    clean_nova.wait_servers(servers, status="ACTIVE")
    status = _status(ephyra)
    assert status["state"] == "succeeded"
    assert status["counts"] == {"upgraded": 5}
    versions = {u["host"]: u["versions"] for u in status["units"] if u["host"] in COMPUTES}
    assert versions == {h: "1.0.0->2.0.0" for h in COMPUTES}


def _pid_heartbeat(nova: NovaTestbed, binary: str) -> float:
    """The newest heartbeat of ``binary``, as epoch seconds."""
    from datetime import UTC, datetime

    stamps = [
        datetime.fromisoformat(s["updated_at"]).replace(tzinfo=UTC).timestamp()
        for s in _services(nova)
        if s["binary"] == binary and s["updated_at"]
    ]
    return max(stamps)


def test_a_compute_that_fails_its_gate_pauses_the_run_and_resume_finishes(
    clean_nova: NovaTestbed, ephyra: Ephyra, tmp_path: Path
) -> None:
    clean_nova.boot("compute-2", 1)
    marker = tmp_path / "broken"
    marker.touch()
    inventory = _inventory(clean_nova, tmp_path / "inventory.yaml")
    data = yaml.safe_load(inventory.read_text())  # the computes only: the point is theirs
    data["hosts"] = [h for h in data["hosts"] if h["name"] in COMPUTES]
    inventory.write_text(yaml.safe_dump(data))
    command = shlex.join(clean_nova.release_command)
    name = 'n={service}; [ "$n" = nova-compute ] && n={host}; '
    broken = (  # compute-2's new release does not start while the marker is there
        f'{name} fail=; [ "$n" = compute-2 ] && [ -e {marker} ] && fail=--fail; '
        f"{command} $n {{version}} $fail"
    )
    spec = _spec(clean_nova, tmp_path / "spec.yaml", failure_threshold=0)
    data = yaml.safe_load(spec.read_text())
    data["strategies"]["testbed"]["upgrade"] = broken
    data["gates"]["timeout"] = 15
    spec.write_text(yaml.safe_dump(data))

    run = ephyra(
        "upgrade",
        "start",
        "--yes",
        "--spec",
        str(spec),
        "--source",
        f"static:{inventory}",
        "--os-cloud",
        "nova",
    )
    assert run.code == 1, run.err
    status = _status(ephyra)
    assert status["state"] == "paused"
    assert "more than the failure threshold (0): data@compute-2" in status["reason"]
    units = {u["host"]: u for u in status["units"]}
    assert "health gate still red" in units["compute-2"]["error"]
    assert units["compute-3"]["forward"] == "pending"  # the run stopped there
    versions = _hypervisors(clean_nova)
    assert versions["compute-1"] == 2000000 and versions["compute-3"] == 1000000
    disabled = {s["host"] for s in _services(clean_nova) if s["status"] == "disabled"}
    assert disabled == {"compute-2"}  # left in maintenance, empty, for the operator

    marker.unlink()
    resumed = ephyra("upgrade", "resume")
    assert resumed.code == 0, resumed.err
    assert _hypervisors(clean_nova) == {h: 2000000 for h in COMPUTES}
    assert all(s["status"] == "enabled" for s in _services(clean_nova))


def _status(ephyra: Ephyra) -> dict[str, Any]:
    result = ephyra("--format", "json", "upgrade", "status")
    assert result.code == 0, result.err
    status: dict[str, Any] = json.loads(result.out)
    return status


def _disabled(nova: NovaTestbed) -> set[str]:
    return {s["host"] for s in _services(nova) if s["status"] == "disabled"}
