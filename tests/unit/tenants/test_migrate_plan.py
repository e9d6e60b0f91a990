"""The plan of a tenant migration: each resource of A with what a move does about it,
what stays and why, and the bytes it copies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ephyra.errors import PlanRefused
from ephyra.tenants.mapping import MARK_FROM, MARK_RUN
from ephyra.tenants.migrate_plan import CREATE, REUSE, STAY, actions, counts, make_plan
from ephyra.tenants.migrate_steps import FORWARD, ROLLBACK, titles
from ephyra.tenants.resources import KINDS, describe
from tests.unit.tenants.test_resources import _tenant


def empty() -> dict[str, list[Any]]:
    return {kind: [] for kind in KINDS}


def test_everything_is_created_on_an_empty_b_but_what_cannot_move() -> None:
    rows = actions(_tenant("a"), empty(), "demo")
    by = {(r.resource.kind, r.resource.name): r.action for r in rows}
    assert by[("server", "web-1")] == CREATE
    assert by[("server", "web-2")] == STAY  # ERROR: the plan says why
    assert by[("image", "cirros")] == CREATE
    assert [r.resource.kind for r in rows] == sorted(
        (r.resource.kind for r in rows), key=KINDS.index
    )  # in the order a move brings them
    assert counts(rows) == {CREATE: len(rows) - 1, STAY: 1}
    sizes = {r.resource.name: r.resource.size for r in rows}
    assert sizes["cirros"] == 1024 and sizes["web-1"] == 1024**3


def test_what_b_holds_equal_is_reused_and_a_difference_is_created() -> None:
    b = _tenant("b")
    b["flavor"][0]["extra_specs"] = {}  # not the same flavor
    b["server"] = []
    rows = actions(_tenant("a"), b, "demo")
    by = {(r.resource.kind, r.resource.name): r.action for r in rows}
    assert by[("image", "cirros")] == REUSE
    assert by[("network", "net")] == REUSE
    assert by[("flavor", "m1.pin")] == CREATE
    assert by[("quota", "compute")] == CREATE  # always set
    assert by[("server", "web-1")] == CREATE  # a server is never taken for another


def test_a_migration_s_own_marks_are_not_the_tenant_s() -> None:
    a = _tenant("a")
    moved = copy.deepcopy(_tenant("b"))
    moved["server"][0]["metadata"] = {"role": "web", MARK_RUN: "r", MARK_FROM: "a-s1"}
    moved["image"][0]["properties"] = {"os_distro": "cirros", MARK_RUN: "r", MARK_FROM: "x"}
    assert describe("demo", a).export == describe("demo", moved).export


def test_the_forward_flow_freezes_first_and_unfreezes_last() -> None:
    forward = titles(FORWARD)
    assert forward[:3] == ["record", "grant-readers", "revoke-writers"]
    assert forward[-3:] == ["restore-writers", "revoke-grants", "forget"]
    assert forward[3:5] == ["bring-project", "enter"]  # B's own Keystone: before enter
    assert forward[5:-4] == [f"bring-{kind}" for kind in KINDS]
    rollback = titles(ROLLBACK)
    assert rollback[:2] == ["clear-b", "restart-a"]
    assert rollback.index("clear-identity") > rollback.index("leave")


def test_one_cloud_is_refused() -> None:
    with pytest.raises(PlanRefused, match="same cloud"):
        make_plan("a", "a", "demo")
