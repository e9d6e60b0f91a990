"""Tenant maintenance against a real Keystone: ``ephyra tenant maintenance on`` leaves every
writer of the project (direct, through a group, inherited from the domain or a parent) a
reader; the freeze is written down in the project itself and in the journal; ``off`` gives
back exactly the assignments there were, keeps what someone else changed meanwhile, and
twice is a no-op; tokens already issued lose the writing roles when validated again; the
API's routes of the kind answer each role as the policy says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ephyra.tenants.keystone import RECORD, TAG, Grant
from testbed.keystone import Keystone
from tests.functional.crash import ok
from tests.functional.ephyra_cli import Ephyra
from tests.functional.tenants import CLOUD, Tenant, clouds, make_tenant, wait_for
from tests.functional.test_api import ADMIN, MEMBER, READER, Server

pytestmark = pytest.mark.functional
KIND = "tenant-maintenance"
FORMER_WRITERS = {"alice", "bob", "tess", "dana", "olga"}


def suffixed(tenant: Tenant, names: set[str]) -> set[str]:
    return {f"{name}-{tenant.name}" for name in names}


def maintenance(ephyra: Ephyra, *args: str, code: int = 0) -> Any:
    return ok(ephyra("tenant", "maintenance", *args), code)


def status(ephyra: Ephyra) -> dict[str, Any]:
    return dict(json.loads(maintenance(ephyra, "status", "-f", "json").out))


def test_on_freezes_every_writer_and_off_gives_back_exactly_what_was_there(
    keystone: Keystone, tmp_path: Path
) -> None:
    tenant = make_tenant(keystone)
    ephyra = clouds(keystone, tmp_path)
    before = tenant.assignments()
    others = {n: tenant.effective(p) for n, p in tenant.others.items()}
    assert tenant.writers() == suffixed(tenant, FORMER_WRITERS)
    old = tenant.token("alice")
    assert tenant.validate(old) == (200, ["member", "reader"])

    refused = maintenance(ephyra, "plan", tenant.name, "--os-cloud", CLOUD, code=2)
    assert f"dana-{tenant.name} (user): manager inherited from domain" in refused.err
    assert f"ops-{tenant.name} (group): member inherited from project parent-" in refused.err
    assert tenant.assignments() == before  # a plan changes nothing

    maintenance(ephyra, "on", tenant.name, "--os-cloud", CLOUD, "--split-inherited")
    assert tenant.writers() == set()
    assert tenant.readers() == suffixed(tenant, {*FORMER_WRITERS, "carol"})
    # no other project lost (or gained) anything: the inherited writers keep their role there
    assert {n: tenant.effective(p) for n, p in tenant.others.items()} == others

    shown = status(ephyra)
    run = shown["id"]
    assert (shown["state"], shown["projects"][0]["forward"]) == ("succeeded", "frozen")
    assert {c["state"] for c in shown["changes"]} == {"granted", "revoked"}
    revoked = {c["assignment"] for c in shown["changes"] if c["change"] == "revoke"}
    assert len(revoked) == 5  # alice, bob, team; dana and ops at their source
    # the record in Keystone itself survives another change of the project
    tenant.call("patch", f"/projects/{tenant.project}", {"project": {"description": "frozen"}})
    kept = tenant.record()
    assert kept[RECORD]["run"] == run and TAG in kept["tags"]
    assert len(kept[RECORD]["revokes"]) == 5 and kept[RECORD]["before"]

    # an old token of a member is validated again with the roles of now: reader only
    assert tenant.validate(old) == (200, ["reader"])
    events = tenant.call("get", "/OS-REVOKE/events")["events"]
    assert not [e for e in events if e.get("user_id") == tenant.users["alice"]]

    maintenance(ephyra, "off", tenant.name, "--os-cloud", CLOUD)
    assert tenant.assignments() == before
    assert tenant.writers() == suffixed(tenant, FORMER_WRITERS)
    assert tenant.record()[RECORD] is None and TAG not in tenant.record()["tags"]
    assert tenant.validate(old) == (200, ["member", "reader"])

    again = maintenance(ephyra, "off", tenant.project, "--os-cloud", CLOUD)
    assert "no maintenance of it to undo" in again.out
    assert tenant.assignments() == before
    listed = json.loads(maintenance(ephyra, "list", "-f", "json").out)
    assert [(r["id"], r["state"], r["project_id"]) for r in listed] == [
        (run, "rolled-back", tenant.project)
    ]


def test_off_keeps_what_someone_else_changed_during_the_freeze(
    keystone: Keystone, tmp_path: Path
) -> None:
    tenant = make_tenant(keystone, inherited=False)
    ephyra = clouds(keystone, tmp_path)
    before = set(tenant.assignments())
    maintenance(ephyra, "on", tenant.project, "--os-cloud", CLOUD)
    twice = maintenance(ephyra, "on", tenant.project, "--os-cloud", CLOUD, code=2)
    assert "in maintenance already" in twice.err
    elsewhere = Ephyra(tmp_path / "clouds.yaml", tmp_path / "another-journal")
    refused = maintenance(elsewhere, "off", tenant.project, "--os-cloud", CLOUD, code=2)
    assert f"by run {status(ephyra)['id']}" in refused.err
    assert "this journal does not have" in refused.err

    erin, frank = tenant.add_user("erin"), tenant.add_user("frank")
    r = tenant.roles
    erin_reads = Grant("user", erin, "project", tenant.project, r["reader"])
    frank_writes = Grant("user", frank, "project", tenant.project, r["member"])
    tenant.grant(erin_reads)  # granted during the freeze: stays
    tenant.grant(frank_writes)  # a writer added during the freeze: stays
    team_reads = tenant.on_project("group", "team", "reader")
    tenant.revoke(team_reads)  # team taken off the project during the freeze: stays off

    off = ok(ephyra("-v", "tenant", "maintenance", "off", tenant.name, "--os-cloud", CLOUD))
    assert "not given back" in off.err
    team_writes = tenant.on_project("group", "team", "member")
    assert set(tenant.assignments()) == (before - {team_writes}) | {erin_reads, frank_writes}
    shown = status(ephyra)
    left = [c for c in shown["changes"] if c["state"] == "left"]
    assert len(left) == 1 and "group team-" in left[0]["assignment"]


def test_the_api_routes_answer_each_role_as_the_policy_says(
    keystone: Keystone, tmp_path: Path
) -> None:
    tenant = make_tenant(keystone, inherited=False)
    ephyra = clouds(keystone, tmp_path)
    server = Server(ephyra, tmp_path, config={})
    body = {"cloud": CLOUD, "project": tenant.name}
    try:
        # a reader reads, and nothing else
        assert server.call("GET", f"/v1/{KIND}/runs", token=READER).status_code == 200
        for path in ("plan", "runs"):
            answer = server.call("POST", f"/v1/{KIND}/{path}", token=READER, json=body)
            assert answer.status_code == 403, answer.text
        # a member plans (a dry run), but may not freeze
        plan = server.call("POST", f"/v1/{KIND}/plan", token=MEMBER, json=body)
        assert plan.status_code == 200, plan.text
        assert len(plan.json()["plan"]["revokes"]) == 3
        assert server.call("POST", f"/v1/{KIND}/runs", token=MEMBER, json=body).status_code == 403
        assert tenant.writers() == suffixed(tenant, {"alice", "bob", "tess"})
        # an admin freezes and unfreezes
        started = server.call("POST", f"/v1/{KIND}/runs", token=ADMIN, json=body)
        assert started.status_code == 202, started.text
        run = started.json()["id"]

        def state() -> str:
            shown = server.call("GET", f"/v1/{KIND}/runs/{run}", token=READER).json()
            return str(shown["state"])

        wait_for(lambda: state() == "succeeded", "the freeze")
        assert tenant.writers() == set()
        back = server.call("POST", f"/v1/{KIND}/runs/{run}/rollback", token=MEMBER)
        assert back.status_code == 403
        back = server.call("POST", f"/v1/{KIND}/runs/{run}/rollback", token=ADMIN)
        assert back.status_code == 202, back.text
        wait_for(lambda: state() == "rolled-back", "the unfreeze")
        assert tenant.writers() == suffixed(tenant, {"alice", "bob", "tess"})
    finally:
        server.stop()
