"""What a freeze changes, and how its undoing treats what others changed meanwhile."""

from __future__ import annotations

from typing import Any

import pytest

from ephyra.errors import PlanRefused, StepFailed, UsageError
from ephyra.tenants.freeze import LEFT, PRESENT, RESTORED, make_freeze, reached, sources
from ephyra.tenants.keystone import Grant, Project
from ephyra.tenants.steps import FORWARD, ROLLBACK, Record, TenantContext
from tests.unit.tenants.fake_keystone import ROLES, FakeKeystone

R, M, MGR = ROLES["reader"], ROLES["member"], ROLES["manager"]
PARENT = Project("parent", "parent", "d", "d")
FROZEN = Project("p", "frozen", "d", "parent")
SIBLING = Project("s", "sibling", "d", "parent")
CHILD = Project("c", "child", "d", "p")
OTHER = Project("o", "other", "d", "d")
PROJECTS = [PARENT, FROZEN, SIBLING, CHILD, OTHER]


def on_p(actor: str, ident: str, role: str) -> Grant:
    return Grant(actor, ident, "project", "p", role)


ALICE = on_p("user", "alice", M)  # a member
ALICE_READS = on_p("user", "alice", R)  # ... who reads already
BOB = on_p("user", "bob", MGR)
TEAM = on_p("group", "team", M)
CAROL = on_p("user", "carol", R)  # a reader only
DOMAIN_ADMIN = Grant("user", "dana", "domain", "d", MGR, inherited=True)
PARENT_GROUP = Grant("group", "ops", "project", "parent", M, inherited=True)


def keystone(*extra: Grant) -> FakeKeystone:
    return FakeKeystone(PROJECTS, {ALICE, ALICE_READS, BOB, TEAM, CAROL, *extra})


def test_every_direct_writer_loses_write_and_reads_instead() -> None:
    ks = keystone()
    freeze = make_freeze(ks, FROZEN)
    assert set(freeze.revokes) == {ALICE, BOB, TEAM}
    # alice reads already: nothing granted to her, nothing of hers taken back on off
    assert set(freeze.grants) == {on_p("user", "bob", R), on_p("group", "team", R)}
    assert CAROL in freeze.before


def test_inherited_writers_refuse_the_plan_naming_their_source() -> None:
    ks = keystone(DOMAIN_ADMIN, PARENT_GROUP)
    with pytest.raises(PlanRefused) as refused:
        make_freeze(ks, FROZEN)
    assert "dana (user): manager inherited from domain d" in str(refused.value)
    assert "ops (group): member inherited from project parent" in str(refused.value)
    assert "--split-inherited" in str(refused.value)


def test_split_inherited_writers_keep_their_role_on_every_other_project() -> None:
    already = Grant("user", "dana", "project", "o", MGR)  # dana manages other directly too
    ks = keystone(DOMAIN_ADMIN, PARENT_GROUP, already)
    freeze = make_freeze(ks, FROZEN, split_inherited=True)
    assert {DOMAIN_ADMIN, PARENT_GROUP} <= set(freeze.revokes)
    dana = {g.target_id for g in freeze.grants if g.actor_id == "dana" and g.role_id == MGR}
    ops = {g.target_id for g in freeze.grants if g.actor_id == "ops" and g.role_id == M}
    assert dana == {"parent", "s", "c"}  # every project of the domain but p; o has it already
    assert ops == {"s", "c"}  # every project below parent but p
    assert on_p("user", "dana", R) in freeze.grants


def test_sources_and_reach() -> None:
    assert sources(CHILD, PROJECTS) == [("domain", "d"), ("project", "parent"), ("project", "p")]
    assert reached(PARENT_GROUP, FROZEN, PROJECTS) == ["c", "s"]
    assert reached(DOMAIN_ADMIN, FROZEN, PROJECTS) == ["c", "o", "parent", "s"]


def test_unknown_roles_are_refused() -> None:
    with pytest.raises(UsageError, match="no role 'writer'"):
        make_freeze(keystone(), FROZEN, writing=["writer"])
    with pytest.raises(UsageError, match="cannot be a writing role"):
        make_freeze(keystone(), FROZEN, writing=["member", "reader"])


def run(ks: FakeKeystone, freeze: Any, steps: Any, data: dict[str, Any]) -> list[str]:
    said: list[str] = []
    record = Record(lambda: data, lambda saved: data.update(saved))
    ctx = TenantContext("run-1", ks, record, message=said.append)  # type: ignore[arg-type]
    for step in steps:
        step(ctx).execute()
    return said


def test_on_then_off_gives_back_exactly_what_was_there() -> None:
    ks = keystone(DOMAIN_ADMIN, PARENT_GROUP)
    before = set(ks.grants)
    data: dict[str, Any] = {"freeze": make_freeze(ks, FROZEN, split_inherited=True).to_dict()}
    run(ks, None, FORWARD, data)
    writers = {g for g in ks.grants if g.target_id == "p" and g.role_id != R}
    assert writers == set()
    assert ks.records["p"]["run"] == "run-1"
    assert not ks.has(DOMAIN_ADMIN) and ks.has(Grant("user", "dana", "project", "s", MGR))
    run(ks, None, ROLLBACK, data)
    assert ks.grants == before
    assert ks.records["p"] is None


def test_off_keeps_what_someone_else_changed_during_the_freeze() -> None:
    ks = keystone()
    data: dict[str, Any] = {"freeze": make_freeze(ks, FROZEN).to_dict()}
    run(ks, None, FORWARD, data)
    erin = on_p("user", "erin", R)
    ks.grant(erin)  # someone gives erin the reader role: it stays
    ks.revoke(on_p("user", "bob", R))  # someone takes bob off the project: he stays off
    said = run(ks, None, ROLLBACK, data)
    assert ks.has(erin) and not ks.has(BOB) and not ks.has(on_p("user", "bob", R))
    assert ks.has(ALICE) and ks.has(ALICE_READS) and ks.has(TEAM)
    assert any("not given back" in line for line in said)
    assert data["done"][BOB.path] == LEFT
    assert data["done"][ALICE.path] == RESTORED
    # off again: a no-op, the decisions kept
    calls = len(ks.calls)
    run(ks, None, ROLLBACK, data)
    assert not ks.has(BOB)
    assert [c for c in ks.calls[calls:] if c.startswith("grant")] == []


def test_a_run_records_only_grants_still_absent_and_writers_still_there() -> None:
    ks = keystone()
    freeze = make_freeze(ks, FROZEN)
    ks.grant(on_p("user", "bob", R))  # granted by someone between plan and run
    ks.revoke(TEAM)  # removed by someone between plan and run
    data: dict[str, Any] = {"freeze": freeze.to_dict()}
    run(ks, None, FORWARD[:1], data)
    assert on_p("user", "bob", R).to_dict() not in data["freeze"]["grants"]
    assert TEAM.to_dict() not in data["freeze"]["revokes"]
    assert ks.records["p"]["grants"] == data["freeze"]["grants"]


def test_a_project_frozen_by_another_run_is_refused() -> None:
    ks = keystone()
    ks.records["p"] = {"run": "run-0"}
    data: dict[str, Any] = {"freeze": make_freeze(ks, FROZEN).to_dict()}
    with pytest.raises(StepFailed, match="run run-0"):
        run(ks, None, FORWARD[:1], data)


def test_a_writer_never_removed_is_present_on_off() -> None:
    from ephyra.tenants.freeze import restore

    ks = keystone()
    freeze = make_freeze(ks, FROZEN)
    assert restore(ks, freeze, ALICE, None) == PRESENT


def test_grant_paths_and_api_entries() -> None:
    assert (
        DOMAIN_ADMIN.path
        == "/OS-INHERIT/domains/d/users/dana/roles/r-manager/inherited_to_projects"
    )
    assert ALICE.path == "/projects/p/users/alice/roles/r-member"
    raw = {
        "scope": {"project": {"id": "parent"}, "OS-INHERIT:inherited_to": "projects"},
        "group": {"id": "ops"},
        "role": {"id": M},
    }
    assert Grant.from_api(raw) == PARENT_GROUP
    assert Grant.from_api({"scope": {"system": {"all": True}}, "user": {"id": "x"}}) is None
    assert Grant.from_dict(PARENT_GROUP.to_dict()) == PARENT_GROUP
