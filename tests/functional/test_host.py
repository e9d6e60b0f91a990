"""Compute hosts against real Nova: maintenance, evacuation within budgets, capacity,
escalation, rollback, a host down and fenced, the API gone mid-drain. Kills -9 and their
resume, abort and rollback: test_crash_evacuation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from testbed.nova import NovaTestbed
from testbed.nova_watch import MigrationWatch, migrations_of, wait_until
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional


@pytest.fixture
def ephyra(clean_nova: NovaTestbed, tmp_path: Path) -> Ephyra:
    return Ephyra(clean_nova.clouds_yaml, tmp_path / "state")


def service(nova: NovaTestbed, host: str) -> dict[str, Any]:
    response = nova.connect().compute.get(
        f"/os-services?binary=nova-compute&host={host}", microversion="2.80"
    )
    found: dict[str, Any] = response.json()["services"][0]
    return found


def hosts_of(nova: NovaTestbed, ids: list[str]) -> dict[str, str]:
    conn = nova.connect()
    found = {}
    for sid in ids:
        server = conn.compute.get(f"/servers/{sid}", microversion="2.80").json()["server"]
        found[sid] = server["OS-EXT-SRV-ATTR:host"]
    return found


def evacuate(*extra: str) -> list[str]:
    return ["host", "evacuate", "--os-cloud", "nova", "--yes", *extra]


def test_ten_servers_three_projects_and_a_group_never_exceed_their_budgets(
    clean_nova: NovaTestbed, ephyra: Ephyra, tmp_path: Path
) -> None:
    group = clean_nova.server_group("web", project="alpha")
    grouped = clean_nova.boot("compute-1", 4, project="alpha", group=group, name_prefix="web")
    alpha = clean_nova.boot("compute-1", 1, project="alpha", name_prefix="a")
    beta = clean_nova.boot("compute-1", 3, project="beta", name_prefix="b")
    gamma = clean_nova.boot("compute-1", 2, project="gamma", name_prefix="c")
    projects = {
        **{s: "alpha" for s in grouped + alpha},
        **{s: "beta" for s in beta},
        **{s: "gamma" for s in gamma},
    }
    metrics = tmp_path / "metrics.prom"
    with MigrationWatch(clean_nova.connect(), projects, {s: group for s in grouped}) as watch:
        result = ephyra(
            *evacuate("compute-1", "--concurrency", "6", "--per-host", "6"),
            *("--max-per-project", "2", "--max-per-group", "1"),
            *("--metrics-textfile", str(metrics)),
        )
    assert result.code == 0, result.err
    # observed from the side, through the migrations API
    assert watch.samples > 20
    assert watch.max_of("group:") == 1
    assert watch.max_of("project:") == 2
    assert watch.peak["total"] >= 3  # the limits were used, not just obeyed by going slowly
    # the host ends empty and disabled by this run
    assert clean_nova.servers_on("compute-1") == []
    svc = service(clean_nova, "compute-1")
    assert svc["status"] == "disabled"
    assert svc["disabled_reason"].startswith("ephyra evacuate run ")
    assert all(
        h in ("compute-2", "compute-3") for h in hosts_of(clean_nova, list(projects)).values()
    )
    conn = clean_nova.connect()
    for sid in projects:
        assert migrations_of(conn, sid) == [("live-migration", "completed")]
    text = metrics.read_text()
    assert 'ephyra_migrations_total{event="finished",how="live"' in text
    assert 'ephyra_host_drain_seconds{host="compute-1"' in text
    status = ephyra("--format", "json", "host", "status")
    assert '"moved": 10' in status.out


def test_maintenance_never_enables_what_someone_else_disabled(
    clean_nova: NovaTestbed, ephyra: Ephyra
) -> None:
    conn = clean_nova.connect()
    other = service(clean_nova, "compute-2")
    conn.compute.put(
        f"/os-services/{other['id']}",
        json={"status": "disabled", "disabled_reason": "hardware ticket 42"},
        microversion="2.80",
    )
    on = ephyra("host", "maintenance", "on", "compute-2", "--os-cloud", "nova")
    assert on.code == 0 and "someone else" in on.out
    off = ephyra("host", "maintenance", "off", "compute-2", "--os-cloud", "nova")
    assert off.code == 2
    assert "disabled by someone else (hardware ticket 42)" in off.err
    after = service(clean_nova, "compute-2")
    assert (after["status"], after["disabled_reason"]) == ("disabled", "hardware ticket 42")

    on = ephyra("host", "maintenance", "on", "compute-3", "--os-cloud", "nova")
    assert on.code == 0, on.err
    assert service(clean_nova, "compute-3")["disabled_reason"].startswith("ephyra maintenance run ")
    off = ephyra("host", "maintenance", "off", "compute-3", "--os-cloud", "nova")
    assert off.code == 0, off.err
    assert service(clean_nova, "compute-3")["status"] == "enabled"


def test_capacity_refusal_with_the_numbers(clean_nova: NovaTestbed, ephyra: Ephyra) -> None:
    ram = clean_nova.memory_mb * 5 // 8  # one such server per host, no second
    big = clean_nova.flavor("big", ram=ram, vcpus=1, disk=1)
    assert big
    for host in clean_nova.hosts:
        clean_nova.boot(host, 1, flavor="big", name_prefix=f"big-{host}")
    refused = ephyra("host", "plan", "compute-1", "--os-cloud", "nova")
    assert refused.code == 2
    assert "not enough room elsewhere" in refused.err
    assert f"needs {ram} MEMORY_MB" in refused.err
    assert "compute-2 has free" in refused.err
    assert clean_nova.servers_on("compute-1")  # nothing moved
    assert service(clean_nova, "compute-1")["status"] == "enabled"

    clean_nova.clean()
    clean_nova.boot("compute-1", 1)
    fits = ephyra("--format", "json", "host", "plan", "compute-1", "--os-cloud", "nova")
    assert fits.code == 0 and '"fits": true' in fits.out
    other_hosts = ["--also-down", "compute-2", "--also-down", "compute-3"]
    alone = ephyra("host", "plan", "compute-1", "--os-cloud", "nova", *other_hosts)
    assert alone.code == 2 and "no other host is enabled" in alone.err


def test_slow_live_migration_is_aborted_then_cold_migrated(
    clean_nova: NovaTestbed, ephyra: Ephyra
) -> None:
    (sid,) = clean_nova.boot("compute-1", 1)
    result = ephyra(*evacuate("compute-1", "--migration-timeout", "3", "--on-timeout", "abort"))
    assert result.code == 0, result.err
    assert "aborted" in result.err
    assert migrations_of(clean_nova.connect(), sid) == [
        ("live-migration", "cancelled"),
        ("migration", "confirmed"),
    ]
    assert hosts_of(clean_nova, [sid])[sid] != "compute-1"


def test_slow_live_migration_is_force_completed(clean_nova: NovaTestbed, ephyra: Ephyra) -> None:
    (sid,) = clean_nova.boot("compute-1", 1)
    result = ephyra(
        *evacuate("compute-1", "--migration-timeout", "3", "--on-timeout", "force-complete")
    )
    assert result.code == 0, result.err
    assert "forced" in result.err
    response = clean_nova.connect().compute.get(
        f"/os-migrations?instance_uuid={sid}", microversion="2.80"
    )
    (migration,) = response.json()["migrations"]
    assert migration["status"] == "completed"
    took = datetime.fromisoformat(migration["updated_at"]) - datetime.fromisoformat(
        migration["created_at"]
    )
    # the fake driver ends a live migration by itself after 5 s: this one was cut short
    assert took.total_seconds() < 5.0, took


def test_rollback_enables_the_host_and_leaves_servers_where_they_are(
    clean_nova: NovaTestbed, ephyra: Ephyra
) -> None:
    ids = clean_nova.boot("compute-1", 2)
    assert ephyra(*evacuate("compute-1")).code == 0
    moved = hosts_of(clean_nova, ids)
    back = ephyra("host", "rollback")
    assert back.code == 0, back.err
    assert service(clean_nova, "compute-1")["status"] == "enabled"
    assert hosts_of(clean_nova, ids) == moved


def test_a_down_and_fenced_host_is_evacuated(clean_nova: NovaTestbed, ephyra: Ephyra) -> None:
    ids = clean_nova.boot("compute-3", 2)
    clean_nova.kill_compute("compute-3")
    svc = service(clean_nova, "compute-3")
    clean_nova.connect().compute.put(
        f"/os-services/{svc['id']}", json={"forced_down": True}, microversion="2.80"
    )
    result = ephyra(*evacuate("compute-3"))
    assert result.code == 0, result.err
    conn = clean_nova.connect()
    for sid in ids:
        assert migrations_of(conn, sid) == [("evacuation", "done")]
        wait_until(
            lambda sid=sid: (
                conn.compute.get(f"/servers/{sid}").json()["server"]["status"] == "ACTIVE"
            ),
            what=f"{sid} ACTIVE",
        )
    assert all(h != "compute-3" for h in hosts_of(clean_nova, ids).values())


def test_evacuation_and_rollback_never_enable_someone_elses_disabled_host(
    clean_nova: NovaTestbed, ephyra: Ephyra
) -> None:
    ids = clean_nova.boot("compute-2", 2)
    svc = service(clean_nova, "compute-2")
    clean_nova.connect().compute.put(
        f"/os-services/{svc['id']}",
        json={"status": "disabled", "disabled_reason": "ticket 7: bad DIMM"},
        microversion="2.80",
    )
    result = ephyra(*evacuate("compute-2"))
    assert result.code == 0, result.err
    assert "already disabled by someone else (ticket 7: bad DIMM)" in result.err
    assert clean_nova.servers_on("compute-2") == []
    back = ephyra("host", "rollback")
    assert back.code == 0, back.err
    assert "left disabled" in back.err
    after = service(clean_nova, "compute-2")
    assert (after["status"], after["disabled_reason"]) == ("disabled", "ticket 7: bad DIMM")
    assert set(hosts_of(clean_nova, ids).values()) <= {"compute-1", "compute-3"}


def test_nova_api_gone_mid_drain_pauses_the_run_and_resume_finishes(
    clean_nova: NovaTestbed, ephyra: Ephyra
) -> None:
    ids = clean_nova.boot("compute-1", 3)
    run = ephyra.background(*evacuate("compute-1", "--concurrency", "1", "--per-host", "1"))
    try:
        run.wait_for(lambda line: "live from compute-1 started" in line)
        clean_nova.kill_api()
        paused = run.finish(60)
    finally:
        clean_nova.start_api()
    assert paused.code == 1, paused.err
    assert "unreachable" in paused.err and "run " in paused.out and "paused" in paused.out
    resumed = ephyra("host", "resume")
    assert resumed.code == 0, resumed.err
    assert clean_nova.servers_on("compute-1") == []
    conn = clean_nova.connect()
    for sid in ids:
        assert migrations_of(conn, sid) == [("live-migration", "completed")]
