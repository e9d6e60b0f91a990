"""The copy of a project's identity to B's own Keystone, against Keystone's REST API kept
in memory: how separate Keystones are told, what is copied and what stays, a parent
project B lacks, a rollback after a crash between a create and its record, and the
project's id on B in a move."""

from __future__ import annotations

import uuid
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import pytest
from openstack import exceptions as sdk_exc

from ephyra.errors import PlanRefused, StepFailed
from ephyra.tenants.freeze import Freeze
from ephyra.tenants.identity_copy import CREATE, REUSE, STAY, IdentityCopy, separate
from ephyra.tenants.keystone import Grant, Identity
from ephyra.tenants.mapping import CREATED, DELETED, INTENT, Mapping
from ephyra.tenants.transfer import Move

ROLES = {"member": "r-member", "reader": "r-reader"}


class RestKeystone(Identity):
    """Keystone's objects in memory behind :meth:`Identity._call`."""

    def __init__(self, name: str) -> None:
        super().__init__(name, None)
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            k: {} for k in ("domain", "project", "user", "group", "role")
        }
        self.paths: set[str] = set()  # memberships and assignments
        self.calls: list[str] = []
        for role, ident in ROLES.items():
            self.objects["role"][ident] = {"id": ident, "name": role}
        self.add("domain", name="Default", id="default")

    def add(self, kind: str, **fields: Any) -> str:
        ident = str(fields.pop("id", "") or uuid.uuid4().hex)
        self.objects[kind][ident] = {"id": ident, **fields}
        return ident

    def _call(
        self, verb: str, path: str, action: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        self.calls.append(f"{verb} {path}")
        url = urlsplit(path)
        parts = url.path.strip("/").split("/")
        kind = parts[0].rstrip("s")
        if "roles" in parts[1:] or (kind == "group" and "users" in parts):
            return self._path(verb, url.path, missing_ok)
        if verb == "post":
            return {kind: self.objects[kind][self.add(kind, **body[kind])]}
        if len(parts) == 1:  # a listing
            query = dict(parse_qsl(url.query))
            found = [
                o
                for o in self.objects[kind].values()
                if all(str(o.get(k)) == v for k, v in query.items())
            ]
            return {f"{kind}s": found}
        found = self.objects[kind].get(parts[1])
        if found is None:
            if missing_ok:
                return None
            raise sdk_exc.NotFoundException(f"{path}: 404")
        if verb == "delete":
            del self.objects[kind][parts[1]]
            return {}
        if verb == "patch":
            found.update(body[kind])
        return {kind: found}

    def _path(self, verb: str, path: str, missing_ok: bool) -> Any:
        if verb == "get":  # a group's users
            members = [p.split("/")[-1] for p in self.paths if p.startswith(path)]
            return {"users": [self.objects["user"][u] for u in members]}
        if verb == "put":
            self.paths.add(path)
            return {}
        if path not in self.paths:
            if missing_ok:
                return None
            raise sdk_exc.NotFoundException(f"{path}: 404")
        if verb == "delete":
            self.paths.discard(path)
        return {}


def tenant(a: RestKeystone, parent: bool = False) -> Freeze:
    """On A: domain dom, project p (below project top when ``parent``), users u1 (in g1)
    and u2, u1 member, g1 reader, u2 reader inherited from dom (and from top)."""
    dom = a.add("domain", name="dom", description="", enabled=True)
    top = a.add("project", name="top", domain_id=dom, parent_id=dom)
    project = a.add(
        "project",
        name="p",
        domain_id=dom,
        parent_id=top if parent else dom,
        description="d",
        enabled=True,
        tags=["gold", "ephyra-maintenance"],
    )
    u1 = a.add("user", name="u1", domain_id=dom, email="u1@x", enabled=True)
    u2 = a.add("user", name="u2", domain_id="default", enabled=True)
    g1 = a.add("group", name="g1", domain_id=dom)
    a.paths.add(f"/groups/{g1}/users/{u1}")
    before = [
        Grant("user", u1, "project", project, ROLES["member"]),
        Grant("group", g1, "project", project, ROLES["reader"]),
        Grant("user", u2, "domain", dom, ROLES["reader"], inherited=True),
    ]
    if parent:
        before.append(Grant("user", u2, "project", top, ROLES["reader"], inherited=True))
    names = {ident: name for name, ident in ROLES.items()} | {top: "top"}
    return Freeze(project, "p", dom, ("r-member",), "r-reader", tuple(before), (), (), names)


def mapping() -> tuple[Mapping, dict[str, Any]]:
    entries: dict[str, Any] = {}
    return Mapping(entries, lambda: None), entries


def test_separate_keystones_are_told_by_url_then_by_the_project_s_id() -> None:
    a, b = RestKeystone("a"), RestKeystone("b")
    urls = {"a": "http://k1/v3", "b": "http://k1/v3/"}
    with mock.patch("ephyra.clouds._auth_url", side_effect=urls.__getitem__):
        assert not separate(a, b, "p1")
        assert b.calls == []  # one URL: one Keystone, B not even asked
        urls["b"] = "http://k2/v3"
        assert separate(a, b, "p1")
        b.add("project", name="whatever", id="p1")  # another URL of the same Keystone
        assert not separate(a, b, "p1")


def test_the_plan_lists_each_object_and_what_stays_and_makes_nothing() -> None:
    a, b = RestKeystone("a"), RestKeystone("b")
    freeze = tenant(a, parent=True)
    b.add("domain", name="dom", id="b-dom")
    b.add("project", name="top", domain_id="b-dom", parent_id="b-dom")
    b.add("user", name="u2", domain_id="default")
    copy = IdentityCopy(a, b, freeze)
    assert copy.run() == ""
    rows = {(i.kind, i.name): i.action for i in copy.items}
    assert rows[("domain", "dom")] == REUSE and rows[("domain", "Default")] == REUSE
    assert rows[("project", "p")] == CREATE
    assert rows[("user", "u1")] == CREATE and rows[("user", "u2")] == REUSE
    assert rows[("membership", "u1 in g1")] == CREATE
    assert rows[("assignment", "member of user u1 on project p")] == CREATE
    assert rows[("assignment", "reader of user u2 on domain dom (inherited)")] == CREATE
    assert rows[("assignment", "reader of user u2 on project top (inherited)")] == STAY
    assert not [c for c in b.calls if not c.startswith(("get", "head"))]


def test_a_parent_b_lacks_refuses_the_plan_and_fails_the_step() -> None:
    a, b = RestKeystone("a"), RestKeystone("b")
    freeze = tenant(a, parent=True)
    with pytest.raises(PlanRefused, match="parent project top is not on b"):
        IdentityCopy(a, b, freeze).run()
    with pytest.raises(StepFailed, match="parent project top"):
        IdentityCopy(a, b, freeze, mapping()[0]).run()
    assert b.objects["project"] == {}


def test_a_parent_on_b_is_the_copy_s_parent() -> None:
    a, b = RestKeystone("a"), RestKeystone("b")
    freeze = tenant(a, parent=True)
    dom = b.add("domain", name="dom")
    top = b.add("project", name="top", domain_id=dom, parent_id=dom)
    made = IdentityCopy(a, b, freeze, mapping()[0]).run()
    project = b.objects["project"][made]
    assert (project["parent_id"], project["domain_id"], project["tags"]) == (top, dom, ["gold"])


def test_a_rollback_after_a_crash_deletes_what_the_run_meant_to_make_and_found() -> None:
    a, b = RestKeystone("a"), RestKeystone("b")
    freeze = tenant(a)
    b.add("user", name="u2", domain_id="default")
    found, entries = mapping()
    IdentityCopy(a, b, freeze, found).run()
    u1 = next(k for k, e in entries.items() if e["kind"] == "user" and e["name"] == "u1")
    entries[u1]["state"], b_u1 = INTENT, entries[u1].pop("b")  # killed before its record
    IdentityCopy(a, b, freeze, found).clear()
    assert b_u1 not in b.objects["user"]
    assert [u["name"] for u in b.objects["user"].values()] == ["u2"]  # reused: kept
    assert list(b.objects["domain"]) == ["default"]
    assert b.objects["project"] == {} and b.objects["group"] == {} and b.paths == set()
    assert {e["state"] for e in entries.values()} == {DELETED, "reused"}


def test_nothing_is_made_twice_and_a_second_run_reuses_everything() -> None:
    a, b = RestKeystone("a"), RestKeystone("b")
    freeze = tenant(a)
    found, entries = mapping()
    made = IdentityCopy(a, b, freeze, found).run()
    posts = [c for c in b.calls if c.startswith(("post", "put"))]
    assert IdentityCopy(a, b, freeze, found).run() == made
    assert [c for c in b.calls if c.startswith(("post", "put"))] == posts
    assert sum(e["state"] == CREATED for e in entries.values()) == 9  # dom p u1 u2 g1 m, 3
    other = IdentityCopy(a, b, freeze)  # a new run's plan: B has them all
    assert other.run() == made
    assert {i.action for i in other.items} == {REUSE}


def test_a_move_uses_b_s_project_and_users_on_b() -> None:
    found, _ = mapping()
    kw: dict[str, Any] = dict(run_id="r", source="a", target="b", a=None, b=None, users={})
    one = Move(project="p-a", mapping=found, scoped=lambda: None, **kw)
    assert one.b_project == "p-a" and one.b_user("u-a") == "u-a"  # one Keystone
    found.created("user", "u-a", "u-b")
    two = Move(project="p-a", b_project="p-b", mapping=found, scoped=lambda: None, **kw)
    assert two.b_project == "p-b" and two.b_user("u-a") == "u-b"
