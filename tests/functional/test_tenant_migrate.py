"""A tenant moved from cloud a to cloud b (one Keystone, two Novas, Glances and Neutrons):
``ephyra tenant plan`` lists every resource; ``migrate`` brings them to b, the export of
the tenant on a before equals the export on b after (ids and servers' status aside), the
originals are stopped on a, not deleted; ``rollback`` leaves b without anything of the run
and a as it was, its servers running again. Its crash matrix, and ``finish``, are in
``test_crash_tenant_migrate``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from testbed.tenantclouds import TwoClouds
from tests.functional.crash import ok
from tests.functional.ephyra_cli import Ephyra
from tests.functional.tenants import export, make_workload, statuses

pytestmark = pytest.mark.functional
PROJECT = "mover"
SERVERS = 6


def tenant(ephyra: Ephyra, *args: str, code: int = 0) -> Any:
    return ok(ephyra("tenant", *args, timeout=900), code)


def test_a_tenant_moves_to_b_and_rollback_restores_a(two_clouds: TwoClouds, tmp_path: Path) -> None:
    two = two_clouds
    two.add_project(PROJECT)
    a, b = two.connect("a"), two.connect("b")
    member = two.connect(two.entry_name("a", PROJECT, "member"))
    project, users = make_workload(a, member, PROJECT, SERVERS)
    before = export(a, project, users)
    assert len(before["server"]) == SERVERS
    ephyra = Ephyra(two.clouds_yaml, tmp_path / "state")

    plan = json.loads(tenant(ephyra, "plan", PROJECT, "--from", "a", "--to", "b", "-f", "json").out)
    kinds = {(r["kind"], r["name"]): r for r in plan["resources"]}
    assert {n for k, n in kinds if k == "server"} == {f"vm{n}" for n in range(SERVERS)}
    assert kinds[("image", "img1")]["size"] == 4096
    assert kinds[("flavor", f"{PROJECT}.tiny")]["action"] == "create"
    assert plan["total_bytes"] >= 2 * 4096
    assert export(b, project, users)["server"] == []  # a plan changes nothing

    started = time.monotonic()
    moved = tenant(ephyra, "migrate", PROJECT, "--from", "a", "--to", "b", "--yes")
    seconds = time.monotonic() - started
    print(f"moved {SERVERS} servers in {seconds:.1f} s")
    assert "succeeded" in moved.out
    after = export(b, project, users)
    for kind in before:
        assert after[kind] == before[kind], kind
    assert set(statuses(a, project).values()) == {"SHUTOFF"}  # stopped, not deleted
    assert set(statuses(b, project).values()) == {"ACTIVE"}
    status = json.loads(tenant(ephyra, "status", "-f", "json").out)
    assert status["state"] == "succeeded"
    assert all(r["state"] in ("created", "reused") for r in status["resources"])
    frozen = a.identity.get_project(project)
    assert "ephyra-maintenance" not in (frozen.tags or [])  # unfrozen at the end

    tenant(ephyra, "rollback")
    assert export(a, project, users) == before
    assert set(statuses(a, project).values()) == {"ACTIVE"}
    left = export(b, project, users)
    assert left["server"] == left["image"] == left["network"] == left["subnet"] == []
    assert left["router"] == left["server_group"] == left["keypair"] == []
    assert [g["name"] for g in left["security_group"]] in ([], ["default"])
    assert b.compute.find_flavor(f"{PROJECT}.tiny", ignore_missing=True) is None
