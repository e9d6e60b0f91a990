"""A real OpenStack upgrade, Nova 33.0.2 and Placement 15.0.0 to Nova 34.0.0 and Placement
16.0.0, driven by ``ephyra upgrade start`` on the testbed's Nova whose hosts each run
from a venv of their own (docs/testbed.md), while servers run on both computes.

As the upgrade guides take it: Placement's code and database first, then Nova pinned on
every host (``[upgrade_levels] compute = auto``), its databases synced once the new code
is on the controller, conductor, scheduler and API restarted on it, each compute drained
by live migration, upgraded and restarted, the pins removed host by host, and the online
data migrations run until done. Once with an abort after the first compute and a
rollback (every host back to the old release, the pins gone), then to the end: every
service runs the new release, the servers booted before are ACTIVE where they were
moved, new ones boot on every compute, ``nova-status upgrade check`` passes, and a
rollback is refused past the data migrations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.nova import NovaTestbed
from testbed.nova_watch import wait_until
from testbed.release_upgrade import NEW, OLD, write_files
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional

COMPUTES = ("compute-1", "compute-2")
HOSTS = ("controller", *COMPUTES)
PIN = "compute = auto"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def nova(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NovaTestbed]:
    root = tmp_path_factory.mktemp("release")
    pins = tuple(f"{name}=={version}" for name, version in OLD.items())
    with NovaTestbed(root, computes=len(COMPUTES), release_venvs=pins) as bed:
        yield bed


def _installed(nova: NovaTestbed) -> dict[str, dict[str, str | None]]:
    found: dict[str, dict[str, str | None]] = {
        host: {"nova": nova.installed(host)} for host in HOSTS
    }
    found["controller"]["openstack-placement"] = nova.installed("controller", "openstack-placement")
    return found


def _everywhere(versions: dict[str, str]) -> dict[str, dict[str, str | None]]:
    found: dict[str, dict[str, str | None]] = {host: {"nova": versions["nova"]} for host in HOSTS}
    found["controller"]["openstack-placement"] = versions["openstack-placement"]
    return found


def _hypervisors(nova: NovaTestbed) -> dict[str, int]:
    return nova.hypervisor_versions()


def _pinned(nova: NovaTestbed) -> dict[str, bool]:
    return {host: PIN in nova.host_config(host).read_text() for host in HOSTS}


def _status(ephyra: Ephyra) -> dict[str, Any]:
    result = ephyra("upgrade", "status", "-f", "json")
    assert result.code == 0, result.err
    status: dict[str, Any] = json.loads(result.out)
    return status


def _unit(ephyra: Ephyra, unit: str) -> str:
    """Where ``unit`` of the latest run is going forward ('' before the run exists)."""
    result = ephyra("upgrade", "status", "-f", "json")
    return _forward(json.loads(result.out), unit) if result.code == 0 else ""


def _forward(status: dict[str, Any], unit: str) -> str:
    return str(next(u["forward"] for u in status["units"] if u["unit"] == unit))


def _nova_restart(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m testbed nova-restart ROOT ARGS`` in another process."""
    return subprocess.run(
        [sys.executable, "-m", "testbed", "nova-restart", str(root), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd="/",
        timeout=120,
        check=False,
    )


def test_every_host_starts_from_its_own_venv_at_the_old_release(
    nova: NovaTestbed, report: list[str]
) -> None:
    assert nova.host_names == list(HOSTS)
    for host in HOSTS:
        assert nova.venv(host) == nova.root / "hosts" / host / "venv"
    assert _installed(nova) == _everywhere(OLD)
    assert nova.installed("compute-1", "openstack-placement") is None
    assert nova.release("compute-1") == "nova"
    state = nova.supervisor_state("compute-2")  # each process runs its host's interpreter
    assert state is not None
    argv = Path(f"/proc/{state.child}/cmdline").read_bytes().split(b"\0")
    assert argv[0].decode() == str(nova.venv("compute-2") / "bin" / "python")
    assert nova.start_seconds is not None
    report.append(f"release testbed: 2 computes at nova 33.0.2 in {nova.start_seconds:.1f} s")


def test_the_restart_command_refuses_a_service_where_it_does_not_run(
    nova: NovaTestbed, tmp_path: Path
) -> None:
    wrong = _nova_restart(nova.root, "nova-compute", "controller")
    assert wrong.returncode == 2, wrong
    assert "nova-compute runs on a compute host" in wrong.stderr
    unknown = _nova_restart(nova.root, "nova-compute", "compute-9")
    assert unknown.returncode == 2 and "no service 'compute-9'" in unknown.stderr
    elsewhere = _nova_restart(tmp_path, "nova-api", "controller")
    assert elsewhere.returncode == 2 and "is not a Nova testbed root" in elsewhere.stderr


def test_nova_and_placement_upgraded_a_release_with_servers_up_and_back_before_migrations(
    nova: NovaTestbed, tmp_path: Path
) -> None:
    ephyra = Ephyra(nova.clouds_yaml, tmp_path / "state")
    args = write_files(nova, tmp_path, availability=0.5)
    configs = {host: nova.host_config(host).read_text() for host in HOSTS}
    servers = {host: nova.boot(host, 2) for host in COMPUTES}
    assert _installed(nova) == _everywhere(OLD)
    assert set(_hypervisors(nova).values()) == {33000002}
    assert nova.nova_status()[0] == 0

    checked = ephyra("upgrade", "preflight", *args, "-f", "json")
    assert checked.code == 0, checked.err
    levels = {row["check"]: row["level"] for row in json.loads(checked.out)}
    assert levels == {
        "nova-services": "ok",
        "upgrade-status": "ok",
        "placement": "ok",
        "capacity": "ok",
    }
    plan = ephyra("upgrade", "plan", *args).out
    assert "point of no return: the compute online data migrations" in plan

    # -- up to the first compute, then abort and roll back -----------------------------
    run = ephyra.background("upgrade", "start", *args, "--yes")
    wait_until(lambda: _unit(ephyra, "data@compute-1") == "upgraded", 600, "compute-1 upgraded")
    assert _pinned(nova) == {host: True for host in HOSTS}  # visible while two releases run
    conductor = (nova.logs / "nova-conductor.log").read_text()
    assert "Starting conductor node (version 34.0.0)" in conductor
    assert "Automatically selected compute RPC version" in conductor
    assert nova.installed("compute-1") == NEW["nova"]
    assert nova.installed("controller", "openstack-placement") == NEW["openstack-placement"]
    assert ephyra("upgrade", "abort").code == 0
    assert run.finish(300).code == 130
    status = _status(ephyra)
    assert status["state"] == "aborted"
    assert _forward(status, "data@compute-2") in ("pending", "interrupted")
    assert _forward(status, "migrate:compute@controller") == "pending"  # before no return

    back = ephyra("upgrade", "rollback", timeout=900)
    assert back.code == 0, back.err
    assert _installed(nova) == _everywhere(OLD)
    wait_until(lambda: set(_hypervisors(nova).values()) == {33000002}, 120, "computes at 33")
    assert {host: nova.host_config(host).read_text() for host in HOSTS} == configs
    kept = {u["unit"]: u["kept"] for u in _status(ephyra)["units"] if u["kept"]}
    assert set(kept) == {"database:placement@controller", "database:compute@controller"}
    assert all("expand only" in text for text in kept.values())
    every = [i for ids in servers.values() for i in ids]
    assert {s.id for s in nova.wait_servers(every)} == set(every)
    assert nova.nova_status()[0] == 0

    # -- to the end ---------------------------------------------------------------------
    done = ephyra("upgrade", "start", *args, "--yes", timeout=1200)
    assert done.code == 0, done.err
    assert _installed(nova) == _everywhere(NEW)
    assert _hypervisors(nova) == {host: 34000000 for host in COMPUTES}
    assert _pinned(nova) == {host: False for host in HOSTS}
    assert {host: nova.host_config(host).read_text() for host in HOSTS} == configs
    up = nova.connect().compute.services()
    assert {(s.binary, s.host, s.state) for s in up} == {
        ("nova-conductor", "controller", "up"),
        ("nova-scheduler", "controller", "up"),
        *(("nova-compute", host, "up") for host in COMPUTES),
    }
    assert {s.id: s.status for s in nova.wait_servers(every)} == {i: "ACTIVE" for i in every}
    for host in COMPUTES:
        nova.boot(host, 1)
    code, out = nova.nova_status()
    assert code == 0, out
    status = _status(ephyra)
    assert status["state"] == "succeeded"
    probed = status["availability"]
    assert probed["probes"] > 0 and probed["answered_percent"] is not None
    assert "compute API during the run" in ephyra("upgrade", "status").out
    migrated = next(u for u in status["units"] if u["unit"] == "migrate:compute@controller")
    assert migrated["versions"] == "compute: migrated"
    refused = ephyra("upgrade", "rollback")
    assert refused.code != 0
    assert "point of no return" in refused.err
