"""A tenant moved from cloud a to cloud b (one Keystone, two Novas, Glances and Neutrons):
``ephyra tenant plan`` lists every resource; ``migrate`` brings them to b, the export of
the tenant on a before equals the export on b after (ids and servers' status aside), the
originals are stopped on a, not deleted; ``rollback`` leaves b without anything of the run
and a as it was, its servers running again."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from ephyra.tenants.resources import collect, describe
from ephyra.tenants.transfer import images_by
from testbed.tenantclouds import TwoClouds
from testbed.tenantload import SERVERS, make_tenant, statuses
from tests.functional.crash import done_line, ok
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional
PROJECT = "mover"


def export(conn: Any, project: str, users: dict[str, str]) -> dict[str, Any]:
    tenant = describe(project, collect(conn, project, users))
    for server in tenant.export["server"]:
        server.pop("status")
    return tenant.export


def tenant(ephyra: Ephyra, *args: str, code: int = 0) -> Any:
    return ok(ephyra("tenant", *args, timeout=900), code)


def test_a_tenant_moves_to_b_and_rollback_restores_a(two_clouds: TwoClouds, tmp_path: Path) -> None:
    two = two_clouds
    two.add_project(PROJECT)
    a, b = two.connect("a"), two.connect("b")
    project, users = make_tenant(a, two.connect(two.entry_name("a", PROJECT, "member")), PROJECT)
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


def test_a_move_killed_at_a_step_boundary_resumes_and_makes_nothing_twice(
    two_clouds: TwoClouds, tmp_path: Path
) -> None:
    two, name, servers = two_clouds, "crashy", 3  # the move's every kind, fewer servers
    two.add_project(name)
    a, b = two.connect("a"), two.connect("b")
    member = two.connect(two.entry_name("a", name, "member"))
    project, users = make_tenant(a, member, name, servers)
    before = export(a, project, users)
    ephyra = Ephyra(two.clouds_yaml, tmp_path / "state")

    first = ephyra.background("tenant", "migrate", name, "--from", "a", "--to", "b", "--yes")
    first.wait_for(done_line(name, "bring-image"), timeout=600)
    first.kill()  # -9: the next step may have begun
    tenant(ephyra, "resume")

    after = export(b, project, users)
    for kind in before:
        assert after[kind] == before[kind], kind  # each once: the exports hold every copy
    marked = images_by(b, owner=project, ephyra_transfer=status_of(ephyra)["id"])
    assert len(marked) == servers  # one transfer image per server, none twice
    assert len(list(b.compute.servers(all_projects=True, project_id=project))) == servers
    assert set(statuses(a, project).values()) == {"SHUTOFF"}

    run = status_of(ephyra)["id"]
    tenant(ephyra, "finish")  # A's originals and the transfer images deleted
    assert statuses(a, project) == {}
    assert images_by(a, ephyra_transfer=run) == images_by(b, ephyra_transfer=run) == []
    assert export(b, project, users) == after  # B's copies run on
    assert "finished already" in tenant(ephyra, "finish").out


def status_of(ephyra: Ephyra) -> dict[str, Any]:
    return dict(json.loads(tenant(ephyra, "status", "-f", "json").out))
