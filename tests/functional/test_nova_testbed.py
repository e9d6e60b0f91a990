"""The Nova testbed itself: real Nova and Placement, servers placed on chosen hosts, live and
cold migration, evacuation, compute crash and restart, clean-up between tests, and releases:
a service upgraded (configuration + restart) from another process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import yaml

from testbed.ironic import _group_members
from testbed.nova import MICROVERSION, SERVICE_DOWN_TIME, NovaTestbed
from testbed.supervise import process_alive

pytestmark = pytest.mark.functional

OPENSTACK = Path(sys.executable).with_name("openstack")
T = TypeVar("T")
#: Seconds a restarted service gets to show up in Nova with its new release.
UPGRADE_TIMEOUT_S = 30.0


def compute_services(bed: NovaTestbed) -> dict[str, Any]:
    return {s.host: s for s in bed.connect().compute.services(binary="nova-compute")}


def wait_migration(bed: NovaTestbed, server_id: str, status: str, timeout: float = 60) -> Any:
    """The newest migration record of a server once it has ``status``."""
    compute = bed.connect().compute
    deadline = time.monotonic() + timeout
    while True:
        records = [m for m in compute.migrations() if m.server_id == server_id]
        newest = max(records, key=lambda m: m.id, default=None)
        if newest is not None and newest.status == status:
            return newest
        assert time.monotonic() < deadline, f"migration of {server_id}: {newest and newest.status}"
        time.sleep(0.1)


def wait_running_migration(bed: NovaTestbed, server_id: str, timeout: float = 30) -> Any:
    """The in-progress live migration of a server once the driver is moving it."""
    compute = bed.connect().compute
    deadline = time.monotonic() + timeout
    while True:
        running = [m for m in compute.server_migrations(server_id) if m.status == "running"]
        if running:
            return running[0]
        assert time.monotonic() < deadline, f"no running migration of {server_id}"
        time.sleep(0.05)


def usage(bed: NovaTestbed, host: str) -> dict[str, int]:
    placement = bed.connect().placement
    (provider,) = [rp for rp in placement.resource_providers() if rp.name == host]
    response = placement.get(f"/resource_providers/{provider.id}/usages")
    return dict(response.json()["usages"])


def test_three_computes_up_enabled_and_sized_in_placement(
    clean_nova: NovaTestbed, report: list[str]
) -> None:
    services = compute_services(clean_nova)
    assert sorted(services) == clean_nova.hosts == ["compute-1", "compute-2", "compute-3"]
    for service in services.values():
        assert (service.status, service.state, service.is_forced_down) == ("enabled", "up", False)
    hypervisors = list(clean_nova.connect().compute.hypervisors(details=True))
    assert sorted(h.name for h in hypervisors) == clean_nova.hosts
    assert {h.state for h in hypervisors} == {"up"}
    assert hypervisor_versions(clean_nova) == dict.fromkeys(clean_nova.hosts, 1000000)  # 1.0.0

    placement = clean_nova.connect().placement
    providers = list(placement.resource_providers())
    assert sorted(rp.name for rp in providers) == clean_nova.hosts
    for provider in providers:
        inventory = {i.resource_class: i for i in placement.resource_provider_inventories(provider)}
        memory, vcpu = inventory["MEMORY_MB"], inventory["VCPU"]
        assert (memory.total, memory.reserved, memory.allocation_ratio) == (16384, 0, 1.0)
        assert (vcpu.total, vcpu.reserved, vcpu.allocation_ratio) == (16, 0, 4.0)
    assert clean_nova.start_seconds is not None
    report.append(
        f"nova testbed: started in {clean_nova.start_seconds:.1f} s, "
        f"{clean_nova.memory_mb_used():.0f} MiB (PSS) for all its processes"
    )


def test_boot_in_two_projects_onto_one_host(clean_nova: NovaTestbed, report: list[str]) -> None:
    started = time.monotonic()
    alpha = clean_nova.boot("compute-2", 3, project="alpha")
    beta = clean_nova.boot("compute-2", 2, project="beta", name_prefix="db")
    report.append(
        f"nova testbed: booted 5 servers on one host in {time.monotonic() - started:.1f} s"
    )

    on_host = clean_nova.servers_on("compute-2")
    assert sorted(s.id for s in on_host) == sorted(alpha + beta)
    assert {s.id: s.project_id for s in on_host} == {
        **dict.fromkeys(alpha, "alpha"),
        **dict.fromkeys(beta, "beta"),
    }
    assert {s.status for s in on_host} == {"ACTIVE"}
    assert clean_nova.servers_on("compute-1") == clean_nova.servers_on("compute-3") == []
    assert sorted(s.id for s in clean_nova.connect("alpha").compute.servers()) == sorted(alpha)
    assert usage(clean_nova, "compute-2")["MEMORY_MB"] == 5 * 512


def test_the_token_names_the_caller(clean_nova: NovaTestbed) -> None:
    url = f"{clean_nova.api_url}/servers"
    assert requests.get(url, timeout=10).status_code == 401
    mine = clean_nova.boot("compute-1", 1, project="alpha")
    as_member = requests.get(url, headers={"X-Auth-Token": "alpha-user:alpha"}, timeout=10)
    assert [s["id"] for s in as_member.json()["servers"]] == mine
    as_other = requests.get(url, headers={"X-Auth-Token": "beta-user:beta"}, timeout=10)
    assert as_other.json()["servers"] == []
    everyone = {"X-Auth-Token": "beta-user:beta"}
    assert requests.get(f"{url}?all_tenants=1", headers=everyone, timeout=10).status_code == 403


def test_live_migration_completes_on_another_host(clean_nova: NovaTestbed) -> None:
    (server,) = clean_nova.boot("compute-1", 1)
    compute = clean_nova.connect().compute

    started = time.monotonic()
    compute.live_migrate_server(server, host="compute-2", block_migration="auto")
    assert compute.get_server(server).status == "MIGRATING"
    (moved,) = clean_nova.wait_servers([server], "ACTIVE", host="compute-2")
    took = time.monotonic() - started

    record = wait_migration(clean_nova, server, "completed")
    assert (record.migration_type, record.source_compute, record.dest_compute) == (
        "live-migration",
        "compute-1",
        "compute-2",
    )
    assert moved.compute_host == "compute-2" and 4.0 < took < 30
    # Nova frees the source's allocation in its post-migration cleanup, which may end a
    # moment after the server is ACTIVE on the destination
    eventually(
        lambda: usage(clean_nova, "compute-1")["MEMORY_MB"] == 0,
        10,
        "compute-1's memory freed in Placement",
    )
    assert usage(clean_nova, "compute-2")["MEMORY_MB"] == 512


def test_live_migration_force_complete_and_abort(clean_nova: NovaTestbed) -> None:
    fast, cancelled = clean_nova.boot("compute-1", 2)
    compute = clean_nova.connect().compute

    compute.live_migrate_server(fast, host="compute-3", block_migration="auto")
    running = wait_running_migration(clean_nova, fast)
    started = time.monotonic()
    compute.force_complete_server_migration(running, fast)
    clean_nova.wait_servers([fast], "ACTIVE", host="compute-3")
    assert time.monotonic() - started < 4.0  # left alone, the fake driver takes 5 s

    compute.live_migrate_server(cancelled, host="compute-3", block_migration="auto")
    compute.abort_server_migration(wait_running_migration(clean_nova, cancelled), cancelled)
    assert wait_migration(clean_nova, cancelled, "cancelled").dest_compute == "compute-3"
    clean_nova.wait_servers([cancelled], "ACTIVE", host="compute-1")


def test_cold_migration_and_confirm(clean_nova: NovaTestbed) -> None:
    (server,) = clean_nova.boot("compute-3", 1, project="gamma")
    compute = clean_nova.connect().compute

    compute.migrate_server(server)
    (resized,) = clean_nova.wait_servers([server], "VERIFY_RESIZE")
    assert resized.compute_host in ("compute-1", "compute-2")
    compute.confirm_server_resize(server)
    (confirmed,) = clean_nova.wait_servers([server], "ACTIVE", host=resized.compute_host)

    record = wait_migration(clean_nova, server, "confirmed")
    assert (record.migration_type, record.source_compute) == ("migration", "compute-3")
    assert record.dest_compute == confirmed.compute_host
    assert usage(clean_nova, "compute-3")["MEMORY_MB"] == 0


def test_evacuate_from_a_dead_forced_down_host(clean_nova: NovaTestbed) -> None:
    servers = clean_nova.boot("compute-1", 2, project="delta")
    compute = clean_nova.connect().compute

    clean_nova.kill_compute("compute-1")
    assert not clean_nova.compute_running("compute-1")
    compute.update_service_forced_down(compute_services(clean_nova)["compute-1"], forced=True)
    assert compute_services(clean_nova)["compute-1"].state == "down"
    for server in servers:
        compute.evacuate_server(server, host="compute-2")

    # from microversion 2.95 on an evacuated server arrives stopped
    evacuated = clean_nova.wait_servers(servers, "SHUTOFF", host="compute-2")
    assert [s.project_id for s in evacuated] == ["delta", "delta"]
    for server in servers:
        record = wait_migration(clean_nova, server, "done")  # 'completed' once compute-1 is back
        assert (record.migration_type, record.source_compute) == ("evacuation", "compute-1")


def test_killed_compute_starts_again_with_its_node_and_servers(clean_nova: NovaTestbed) -> None:
    (server,) = clean_nova.boot("compute-2", 1)
    compute = clean_nova.connect().compute
    before = {h.name: h.id for h in compute.hypervisors()}

    clean_nova.kill_compute("compute-2")
    clean_nova.start_compute("compute-2")

    assert {h.name: h.id for h in compute.hypervisors()} == before
    assert compute_services(clean_nova)["compute-2"].state == "up"
    assert compute.get_server(server).status == "ACTIVE"
    compute.live_migrate_server(server, host="compute-1", block_migration="auto")
    clean_nova.wait_servers([server], "ACTIVE", host="compute-1")


def test_clean_leaves_no_server_and_every_compute_ready(clean_nova: NovaTestbed) -> None:
    group = clean_nova.server_group("spread", project="alpha", policy="soft-anti-affinity")
    assert clean_nova.server_group("spread", project="alpha") == group
    moving, _ = clean_nova.boot("compute-1", 2, project="alpha", group=group)
    clean_nova.boot("compute-2", 1, project="beta", wait=False)
    compute = clean_nova.connect().compute
    services = compute_services(clean_nova)
    compute.disable_service(services["compute-1"], disabled_reason="maintenance")
    compute.live_migrate_server(moving, host="compute-3", block_migration="auto")
    clean_nova.kill_compute("compute-2")
    compute.update_service_forced_down(services["compute-2"], forced=True)

    started = time.monotonic()
    clean_nova.clean()
    took = time.monotonic() - started

    assert list(compute.servers(all_projects=True)) == []
    assert list(compute.server_groups(all_projects=True)) == []
    for host, service in compute_services(clean_nova).items():
        assert clean_nova.compute_running(host)
        assert (service.status, service.state, service.is_forced_down) == ("enabled", "up", False)
    assert took < 30
    for host in clean_nova.hosts:
        assert usage(clean_nova, host)["MEMORY_MB"] == 0
        clean_nova.boot(host, 1)


def test_clouds_yaml_serves_sdk_and_cli(clean_nova: NovaTestbed) -> None:
    clouds = yaml.safe_load(clean_nova.clouds_yaml.read_text())["clouds"]
    assert clouds["nova"]["auth"]["token"] == "admin:admin"
    assert clean_nova.env() == {"OS_CLIENT_CONFIG_FILE": str(clean_nova.clouds_yaml)}
    assert clean_nova.connect().compute.default_microversion == MICROVERSION
    clean_nova.boot("compute-3", 1, name_prefix="cli")

    env = {**os.environ, **clean_nova.env(), "OS_CLOUD": clean_nova.cloud}
    listing = subprocess.run(
        [str(OPENSTACK), "server", "list", "--all-projects", "--long", "-f", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    (row,) = json.loads(listing.stdout)
    assert (row["Status"], row["Host"]) == ("ACTIVE", "compute-3")
    assert row["Name"].startswith("cli-")


# -- releases --------------------------------------------------------------------------------


def utcnow() -> datetime:
    """Now as Nova writes its times: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def hypervisor_versions(bed: NovaTestbed) -> dict[str, int]:
    """``hypervisor_version`` of every hypervisor, from ``GET /os-hypervisors/detail``."""
    reply = bed.connect().compute.get("/os-hypervisors/detail", microversion=MICROVERSION)
    assert reply.status_code == 200, reply.text
    return {h["hypervisor_hostname"]: h["hypervisor_version"] for h in reply.json()["hypervisors"]}


def service_record(bed: NovaTestbed, binary: str, host: str) -> Any:
    (found,) = [s for s in bed.connect().compute.services(binary=binary) if s.host == host]
    return found


def reported_since(service: Any, since: datetime) -> bool:
    """Up, with a heartbeat later than ``since``."""
    updated = datetime.fromisoformat(service.updated_at.rstrip("Z")) if service.updated_at else None
    return bool(service.state == "up" and updated is not None and updated > since)


def eventually(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """The first true value ``check`` returns, polling every 0.2 s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not {what} within {timeout:.0f} s"
        time.sleep(0.2)


def nova_release(bed: NovaTestbed, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m testbed nova-release ROOT ARGS`` in another process, from another directory,
    with ``env`` added to the environment."""
    return subprocess.run(
        [*bed.release_command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **env},
    )


def restore(bed: NovaTestbed, name: str) -> None:
    """Back to release 1.0.0, up again (the session's Nova is shared)."""
    since = utcnow()
    bed.set_release(name, "1.0.0")
    bed.wait_service(name, since if name not in ("nova-api", "placement") else None)
    assert bed.release(name) == "1.0.0"


def test_compute_upgraded_by_the_release_command(
    clean_nova: NovaTestbed, report: list[str]
) -> None:
    bed = clean_nova
    shown = nova_release(bed, "compute-2")
    assert (shown.returncode, shown.stdout) == (0, "1.0.0\n"), shown.stderr
    old_pid = bed.service_pid("compute-2")
    assert old_pid is not None
    others = {host: bed.service_pid(host) for host in ("compute-1", "compute-3")}
    try:
        started = time.monotonic()
        done = nova_release(bed, "compute-2", "2.0.0")
        returned, command_s = utcnow(), time.monotonic() - started
        assert done.returncode == 0, done.stderr
        new_pid = bed.service_pid("compute-2")
        assert new_pid is not None and new_pid != old_pid and not process_alive(old_pid)

        def upgraded() -> bool:
            service = service_record(bed, "nova-compute", "compute-2")
            return reported_since(service, returned) and (
                hypervisor_versions(bed)["compute-2"] == 2000000
            )

        eventually(upgraded, UPGRADE_TIMEOUT_S, "compute-2 up with hypervisor_version 2000000")
        took = time.monotonic() - started
        assert hypervisor_versions(bed) == {
            "compute-1": 1000000,
            "compute-2": 2000000,
            "compute-3": 1000000,
        }
        assert {host: bed.service_pid(host) for host in others} == others
        assert nova_release(bed, "compute-2").stdout == "2.0.0\n"
        assert "release = 2.0.0" in (bed.etc / "compute-2.conf").read_text()
        report.append(
            f"nova testbed: compute restart to a new release: command {command_s:.1f} s, "
            f"up in Nova with the new hypervisor_version {took:.1f} s after it was run"
        )

        # an upgrade that breaks it: the new process exits at start, Nova sees it go down
        broken = nova_release(bed, "compute-2", "3.0.0", TESTBED_RELEASE_FAIL="compute-1,compute-2")
        assert broken.returncode == 0, broken.stderr
        state = bed.supervisor_state("compute-2")
        assert state is not None
        down = eventually(
            lambda: service_record(bed, "nova-compute", "compute-2").state == "down",
            SERVICE_DOWN_TIME + 15,
            "compute-2 down",
        )
        assert down
        retried = bed.supervisor_state("compute-2")
        assert retried is not None and retried.exits >= state.exits + 2  # retried, failing
        assert retried.last_exit == 78
        log = (bed.logs / "compute-2.out").read_text()
        assert "compute-2 cannot start: release 3.0.0 is marked to fail at start" in log
        assert hypervisor_versions(bed)["compute-2"] == 2000000  # 3.0.0 never reported
        again = nova_release(bed, "compute-2", "3.0.1", "--fail")  # still broken
        assert again.returncode == 0, again.stderr
        shown = nova_release(bed, "compute-2")
        assert shown.stdout == "3.0.1\n" and "fails at start" in shown.stderr
        eventually(lambda: not bed.compute_running("compute-2"), 5, "compute-2 exited")
        log = (bed.logs / "compute-2.out").read_text()
        assert "compute-2 cannot start: release 3.0.1 is marked to fail at start" in log

        # the next good release brings it back
        fixed = nova_release(bed, "compute-2", "2.1.0")
        returned = utcnow()
        assert fixed.returncode == 0, fixed.stderr
        eventually(
            lambda: (
                reported_since(service_record(bed, "nova-compute", "compute-2"), returned)
                and hypervisor_versions(bed)["compute-2"] == 2001000
            ),
            UPGRADE_TIMEOUT_S,
            "compute-2 back with hypervisor_version 2001000",
        )
    finally:
        restore(bed, "compute-2")
    assert hypervisor_versions(bed) == dict.fromkeys(bed.hosts, 1000000)


def test_conductor_upgraded_by_the_release_command(nova: NovaTestbed, report: list[str]) -> None:
    assert nova.release("nova-conductor") == "1.0.0"
    old_pid = nova.service_pid("nova-conductor")
    assert old_pid is not None
    computes = {host: nova.service_pid(host) for host in nova.hosts}
    try:
        started = time.monotonic()
        done = nova_release(nova, "nova-conductor", "2.0.0")
        returned, command_s = utcnow(), time.monotonic() - started
        assert done.returncode == 0, done.stderr
        new_pid = nova.service_pid("nova-conductor")
        assert new_pid is not None and new_pid != old_pid and not process_alive(old_pid)
        # the new conductor and its worker stay in the group the testbed stops and kills
        assert new_pid in _group_members(nova.pids()["nova-conductor"])
        eventually(
            lambda: reported_since(service_record(nova, "nova-conductor", "controller"), returned),
            UPGRADE_TIMEOUT_S,
            "nova-conductor heartbeating again",
        )
        report.append(
            f"nova testbed: conductor restart to a new release: command {command_s:.1f} s, "
            f"heartbeating again {time.monotonic() - started:.1f} s after it was run"
        )
        # a heartbeat the stopping conductor took is lost; the computes must not go down
        while time.monotonic() < started + SERVICE_DOWN_TIME + 4:
            states = {host: service.state for host, service in compute_services(nova).items()}
            assert states == dict.fromkeys(nova.hosts, "up")
            time.sleep(0.5)
        assert nova_release(nova, "nova-conductor").stdout == "2.0.0\n"
        assert {host: nova.service_pid(host) for host in nova.hosts} == computes
        assert hypervisor_versions(nova) == dict.fromkeys(nova.hosts, 1000000)
    finally:
        restore(nova, "nova-conductor")


def test_api_scheduler_and_placement_upgraded_then_a_server_boots(
    clean_nova: NovaTestbed,
) -> None:
    names = ("nova-api", "placement", "nova-scheduler")
    before = {name: clean_nova.service_pid(name) for name in names}
    try:
        since = utcnow()
        for name in names:
            old, new = clean_nova.set_release(name, "2.0.0")
            assert old == before[name] and new != old
        for name in names:
            clean_nova.wait_service(name, since if name == "nova-scheduler" else None)
            assert clean_nova.release(name) == "2.0.0"
        clean_nova.boot("compute-1", 1)  # API, scheduler and Placement all serve again
    finally:
        for name in names:
            restore(clean_nova, name)


def test_release_command_refuses_unknown_names_and_versions(nova: NovaTestbed) -> None:
    pid = nova.service_pid("compute-1")
    conf = (nova.etc / "compute-1.conf").read_text()
    bad_name = nova_release(nova, "compute-9", "2.0.0")
    assert bad_name.returncode == 2
    assert "no service 'compute-9'" in bad_name.stderr and "compute-3" in bad_name.stderr
    for version in ("broken", "2.x", "3000.0.0"):
        refused = nova_release(nova, "compute-1", version)
        assert refused.returncode == 2, version
        assert f"release {version!r}" in refused.stderr
    elsewhere = subprocess.run(
        [*nova.release_command[:-1], str(nova.root / "logs"), "compute-1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert elsewhere.returncode == 2 and "is not a Nova testbed root" in elsewhere.stderr
    assert nova.service_pid("compute-1") == pid
    assert (nova.etc / "compute-1.conf").read_text() == conf
