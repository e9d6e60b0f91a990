"""The Nova testbed itself: real Nova and Placement, servers placed on chosen hosts, live and
cold migration, evacuation, compute crash and restart, and clean-up between tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from testbed.nova import MICROVERSION, NovaTestbed

pytestmark = pytest.mark.functional

OPENSTACK = Path(sys.executable).with_name("openstack")


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
    assert usage(clean_nova, "compute-1")["MEMORY_MB"] == 0
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
