"""Preflight and the Placement audit against real Nova and Placement: a stale nova-compute
record blocks preflight, naming it, until it is deleted; an allocation nobody holds is
caught by the audit after the drain and pauses the run, and a run started with --heal
removes it and keeps it in the journal."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.nova import NovaTestbed
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional

HOST = "compute-1"


@pytest.fixture
def ephyra(clean_nova: NovaTestbed, tmp_path: Path) -> Iterator[Ephyra]:
    yield Ephyra(clean_nova.clouds_yaml, tmp_path / "state")


def _files(tmp_path: Path, nova: NovaTestbed) -> list[str]:
    """A one-compute upgrade whose strategy changes nothing: what is checked here is
    what comes before it."""
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        yaml.safe_dump({"hosts": {HOST: {"roles": ["compute"], "services": ["nova-compute"]}}})
    )
    spec = tmp_path / "upgrade.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "release": "1.0.0",
                "strategies": {"same": {"type": "noop"}},
                "strategy": "same",
                "roles": {"compute": {"max_at_once": 1, "drain": True}},
                "gates": {"services_up": True, "timeout": 40, "interval": 0.5},
                "evacuation": {"concurrency": 2, "per_host": 2, "max_per_group": 0},
            }
        )
    )
    return ["--spec", str(spec), "--source", f"static:{inventory}", "--os-cloud", nova.cloud]


def _rows(result: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(result.out)
    return rows


def test_a_stale_compute_record_blocks_preflight_until_it_is_deleted(
    clean_nova: NovaTestbed, ephyra: Ephyra, tmp_path: Path
) -> None:
    args = _files(tmp_path, clean_nova)
    stale = clean_nova.add_stale_compute("compute-9", days=6)
    try:
        blocked = ephyra("upgrade", "preflight", *args, "-f", "json")
        assert blocked.code == 1, blocked.err
        [row] = [r for r in _rows(blocked) if r["level"] == "block"]
        assert row["check"] == "nova-services"
        assert row["subject"] == "nova-compute on compute-9"
        assert row["message"].startswith("down (last heartbeat ")
        assert row["todo"].endswith(f"openstack compute service delete {stale}")
        assert "preflight: 1 check(s) block" in blocked.err
        # a run stops before it touches anything, saying why
        run = ephyra("upgrade", "start", *args, "--yes")
        assert run.code == 1
        assert "preflight: nova-services: nova-compute on compute-9: down" in run.err
        disabled = [s for s in clean_nova.connect().compute.services() if s.status == "disabled"]
        assert disabled == []
    finally:
        clean_nova.connect().compute.delete_service(stale, ignore_missing=True)
    passed = ephyra("upgrade", "preflight", *args, "-f", "json")
    assert passed.code == 0, passed.err
    levels = {r["check"]: r["level"] for r in _rows(passed)}
    assert levels == {"nova-services": "ok", "placement": "ok", "capacity": "ok"}


def _orphan(nova: NovaTestbed, host: str) -> str:
    """An allocation against ``host``'s compute node that no server holds."""
    placement = nova.connect().placement
    provider = (
        nova.connect()
        .compute.get("/os-hypervisors/detail", microversion="2.53")
        .json()["hypervisors"]
    )
    rp = next(h["id"] for h in provider if h["service"]["host"] == host)
    consumer = str(uuid.uuid4())
    body = {
        "allocations": {rp: {"resources": {"VCPU": 1, "MEMORY_MB": 64}}},
        "project_id": "ghost",
        "user_id": "ghost",
        "consumer_generation": None,
    }
    reply = placement.put(f"/allocations/{consumer}", json=body, microversion="1.28")
    assert reply.status_code == 204, reply.text
    return consumer


def _held(nova: NovaTestbed, consumer: str) -> dict[str, Any]:
    reply = nova.connect().placement.get(f"/allocations/{consumer}", microversion="1.28")
    held: dict[str, Any] = reply.json()["allocations"]
    return held


def test_a_leaked_allocation_pauses_the_run_after_the_drain_and_heal_removes_it(
    clean_nova: NovaTestbed, ephyra: Ephyra, tmp_path: Path
) -> None:
    args = _files(tmp_path, clean_nova)
    servers = clean_nova.boot(HOST, 2)
    consumer = _orphan(clean_nova, HOST)

    warned = ephyra("upgrade", "preflight", *args, "-f", "json")
    assert warned.code == 0, warned.err
    [leak] = [r for r in _rows(warned) if r["level"] == "warn"]
    assert leak["subject"] == f"allocation {consumer}"
    assert leak["todo"].startswith("start the upgrade with --heal")

    paused = ephyra("upgrade", "start", *args, "--yes")
    assert paused.code == 1
    assert f"consumer {consumer} holds MEMORY_MB 64, VCPU 1 on {HOST}" in paused.err
    assert "--heal" in paused.err
    assert clean_nova.servers_on(HOST) == []  # drained before the audit
    assert list(_held(clean_nova, consumer))  # left as it was
    back = ephyra("upgrade", "rollback")
    assert back.code == 0, back.err

    healed = ephyra("upgrade", "start", *args, "--yes", "--heal")
    assert healed.code == 0, healed.err
    assert _held(clean_nova, consumer) == {}
    status = json.loads(ephyra("upgrade", "status", "-f", "json").out)
    [unit] = status["units"]
    assert unit["healed"] == [
        f"{consumer} on {HOST} (no server or migration under way has this id)"
    ]
    assert status["preflight"] and status["availability"]["probes"] > 0
    assert {s.id for s in clean_nova.wait_servers(servers)} == set(servers)
