"""A project brought to a cloud with a Keystone of its own, against two real Keystones: the
plan lists each identity object (to create, or found on B: reused) and refuses a role B
lacks; the copy makes on B the project (its domain created), its users (one found there
already: reused), its group with its member and every role assignment, direct and inherited
from the domain, equal to A's by names; run again, nothing is made twice; killed between
the intent and the record of a creation, the resumed copy finds what it made; the
rollback deletes exactly what it made and keeps the reused user."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ephyra.engine.slots import Slots
from ephyra.errors import PlanRefused
from ephyra.tenants.freeze import make_freeze
from ephyra.tenants.identity_copy import CREATE, REUSE, IdentityCopy, separate
from ephyra.tenants.keystone import Grant, Identity
from ephyra.tenants.mapping import CREATED, DELETED, INTENT, REUSED, Mapping
from ephyra.tenants.migrate_plan import _on_own_keystone
from ephyra.tenants.migrate_steps import (
    BringProject,
    ClearIdentity,
    Enter,
    Leave,
    MigrationContext,
)
from ephyra.tenants.steps import Record, TenantContext
from testbed.keystone import Keystone

pytestmark = pytest.mark.functional


class Killed(Exception):
    """The process died here: what the journal holds is what the last save wrote."""


class Journal:
    """A mapping whose saves are kept (deep copies), as the run's journal keeps them;
    ``kill`` says which state of the entries the process never gets to save."""

    def __init__(
        self,
        entries: dict[str, Any] | None = None,
        kill: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.saved: dict[str, Any] = copy.deepcopy(entries or {})
        self.kill = kill
        self.mapping = Mapping(copy.deepcopy(self.saved), self._save)
        self._entries = self.mapping._entries

    def _save(self) -> None:
        if self.kill is not None and self.kill(self._entries):
            raise Killed
        self.saved = copy.deepcopy(self._entries)


def call(conn: Any, verb: str, path: str, body: Any = None) -> Any:
    answer = getattr(conn.identity, verb)(path, json=body, raise_exc=False)
    assert answer.status_code < 300, f"{verb} {path}: {answer.status_code} {answer.text}"
    return answer.json() if answer.content else None


def listed(conn: Any, kind: str, **query: str) -> list[dict[str, Any]]:
    path = f"/{kind}s?" + "&".join(f"{k}={v}" for k, v in query.items())
    return list(call(conn, "get", path)[f"{kind}s"])


def by_names(conn: Any, project: str, domain: str) -> set[tuple[str, str, str, str, bool]]:
    """(actor kind, actor name, role name, target kind, inherited) of every assignment made
    on the project, and inherited ones on its domain."""
    found = set()
    for scope in (f"scope.project.id={project}", f"scope.domain.id={domain}"):
        path = f"/role_assignments?{scope}&include_names"
        for raw in call(conn, "get", path)["role_assignments"]:
            actor = "user" if "user" in raw else "group"
            target = "project" if "project" in raw["scope"] else "domain"
            inherited = raw["scope"].get("OS-INHERIT:inherited_to") == "projects"
            if target == "domain" and not inherited:
                continue
            found.add((actor, raw[actor]["name"], raw["role"]["name"], target, inherited))
    return found


@pytest.fixture
def keystones(
    keystone: Keystone, second_keystone: Keystone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Identity, Identity]:
    """Clouds ``ka`` (the session's Keystone) and ``kb`` (the second one), admins both."""
    clouds = {
        "ka": keystone.clouds_entry("admin", keystone.admin_password, "admin"),
        "kb": second_keystone.clouds_entry("admin", second_keystone.admin_password, "admin"),
    }
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    return Identity.connect("ka"), Identity.connect("kb")


def steps_on(a: Identity, b: Identity, freeze: Any, mapping: Mapping) -> MigrationContext:
    """A migration's context for its identity steps, its record in memory."""
    data: dict[str, Any] = {"freeze": freeze.to_dict()}
    record = Record(lambda: data, lambda saved: None)
    copy = IdentityCopy(a, b, record.freeze, mapping)

    def no_move() -> Any:
        raise AssertionError("the identity steps need no Move")

    return MigrationContext(
        tenant=TenantContext(run_id="run-1", identity=a, record=record),
        move=no_move,
        role="member",
        user=lambda: str(b._conn.current_user_id),
        slots=Slots("tenant-migration into nowhere", 1),  # never taken: no Bring step here
        identity_copy=lambda: copy,
    )


@dataclasses.dataclass
class OnA:
    project: str
    domain: str
    name: str
    users: dict[str, str]
    group: str


def make_project(a: Any, b: Any) -> OnA:
    """On A: a project in a domain of its own, user u1 (of that domain, in group g1) and
    u2 (of Default) members, g1 reader, u2 reader inherited from the domain. On B: a user
    named as u2 in Default already."""
    tag = uuid.uuid4().hex[:6]
    roles = {r["name"]: r["id"] for r in call(a, "get", "/roles")["roles"]}
    if "manager" not in roles:  # a freeze names it among the writing roles
        call(a, "post", "/roles", {"role": {"name": "manager"}})
    domain = call(a, "post", "/domains", {"domain": {"name": f"dom-{tag}"}})["domain"]["id"]
    project = call(
        a,
        "post",
        "/projects",
        {
            "project": {
                "name": f"idc-{tag}",
                "domain_id": domain,
                "description": "a tenant with its own people",
                "tags": ["gold", "ephyra-maintenance"],
            }
        },
    )["project"]["id"]
    users = {
        "u1": call(
            a,
            "post",
            "/users",
            {
                "user": {
                    "name": f"u1-{tag}",
                    "domain_id": domain,
                    "email": "u1@example.org",
                    "description": "first",
                    "password": "secret-on-a",
                }
            },
        )["user"]["id"],
        "u2": call(a, "post", "/users", {"user": {"name": f"u2-{tag}", "domain_id": "default"}})[
            "user"
        ]["id"],
    }
    group = call(a, "post", "/groups", {"group": {"name": f"g1-{tag}", "domain_id": domain}})
    group_id = group["group"]["id"]
    call(a, "put", f"/groups/{group_id}/users/{users['u1']}")
    for user in users.values():
        call(a, "put", f"/projects/{project}/users/{user}/roles/{roles['member']}")
    call(a, "put", f"/projects/{project}/groups/{group_id}/roles/{roles['reader']}")
    inherited = Grant("user", users["u2"], "domain", domain, roles["reader"], inherited=True)
    call(a, "put", inherited.path)
    call(b, "post", "/users", {"user": {"name": f"u2-{tag}", "domain_id": "default"}})
    return OnA(project, domain, f"idc-{tag}", users, group_id)


def test_a_project_its_people_and_their_roles_brought_to_another_keystone(
    keystones: tuple[Identity, Identity],
) -> None:
    a, b = keystones
    on_a = make_project(a._conn, b._conn)
    assert separate(a, b, on_a.project)
    assert not separate(a, Identity.connect("ka"), on_a.project)  # the same Keystone
    freeze = make_freeze(a, a.project(on_a.project))

    # the plan: every object, to create or reuse; nothing made
    users = {on_a.users["u1"]: "u1", on_a.users["u2"]: "u2"}
    rows, b_project, b_users = _on_own_keystone(a, b, freeze, users)
    by: dict[str, list[str]] = {}
    for r in rows:
        by.setdefault(r.resource.kind, []).append(r.action)
    assert {kind: sorted(found) for kind, found in by.items()} == {
        "domain": [CREATE, REUSE],  # its own domain; Default (u2's) is on B
        "project": [CREATE],
        "user": [CREATE, REUSE],  # u2 is on B already
        "group": [CREATE],
        "membership": [CREATE],
        "assignment": [CREATE] * 4,
    }
    assert b_project == ""  # B has no such project yet
    assert set(b_users.values()) == {"u2"}  # the reused user's key pairs are the tenant's
    assert listed(b._conn, "project", name=on_a.name) == []

    # a role B lacks refuses the plan, naming it
    special = call(a._conn, "post", "/roles", {"role": {"name": f"special-{on_a.name}"}})
    odd = Grant("user", on_a.users["u1"], "project", on_a.project, special["role"]["id"])
    names = {**freeze.names, odd.role_id: f"special-{on_a.name}"}
    lacking = dataclasses.replace(freeze, before=(*freeze.before, odd), names=names)
    with pytest.raises(PlanRefused, match=f"no role 'special-{on_a.name}'"):
        IdentityCopy(a, b, lacking).run()

    # killed between making u1 on B and writing that down
    u1 = f"user:{on_a.users['u1']}"
    first = Journal(kill=lambda e: e.get(u1, {}).get("state") == CREATED)
    with pytest.raises(Killed):
        IdentityCopy(a, b, freeze, first.mapping).run()
    assert first.saved[u1]["state"] == INTENT
    assert len(listed(b._conn, "user", name=f"u1-{on_a.name[4:]}")) == 1  # made on B

    resumed = Journal(first.saved)
    b_id = IdentityCopy(a, b, freeze, resumed.mapping).run()
    states = {k: v["state"] for k, v in resumed.saved.items()}
    assert states[u1] == CREATED and states[f"user:{on_a.users['u2']}"] == REUSED
    assert states[f"domain:{on_a.domain}"] == CREATED and states["domain:default"] == REUSED
    assert states[f"project:{on_a.project}"] == CREATED
    assert sorted(states.values()).count(CREATED) == 9  # domain, project, u1, g1, 1 + 4

    # B: the project, equal by names
    project = call(b._conn, "get", f"/projects/{b_id}")["project"]
    assert b_id != on_a.project
    assert (project["name"], project["description"], project["tags"], project["enabled"]) == (
        on_a.name,
        "a tenant with its own people",
        ["gold"],  # ephyra's own tag not copied
        True,
    )
    b_domain = call(b._conn, "get", f"/domains/{project['domain_id']}")["domain"]
    assert b_domain["name"] == f"dom-{on_a.name[4:]}"
    u1_b = listed(b._conn, "user", name=f"u1-{on_a.name[4:]}")
    assert len(u1_b) == 1
    assert (u1_b[0]["email"], u1_b[0]["description"], u1_b[0]["enabled"]) == (
        "u1@example.org",
        "first",
        True,
    )
    assert u1_b[0]["domain_id"] == b_domain["id"]
    group_b = listed(b._conn, "group", name=f"g1-{on_a.name[4:]}")
    assert len(group_b) == 1
    members = call(b._conn, "get", f"/groups/{group_b[0]['id']}/users")["users"]
    assert [m["name"] for m in members] == [f"u1-{on_a.name[4:]}"]
    want = by_names(a._conn, on_a.project, on_a.domain)
    assert len(want) == 4
    assert by_names(b._conn, b_id, b_domain["id"]) == want

    # run again: nothing made twice, nothing new in the mapping
    again = Journal(resumed.saved)
    assert IdentityCopy(a, b, freeze, again.mapping).run() == b_id
    assert again.saved == resumed.saved
    assert len(listed(b._conn, "user", name=f"u1-{on_a.name[4:]}")) == 1
    assert len(listed(b._conn, "project", name=on_a.name)) == 1

    # the migration's steps: bring-project again (nothing made), enter and leave on B's
    # Keystone in B's project, then clear-identity: exactly what the copy made, never the
    # reused user nor Default
    ctx = steps_on(a, b, freeze, again.mapping)
    admin_b = str(b._conn.current_user_id)
    entered = Grant("user", admin_b, "project", b_id, b.roles()["member"])
    for step in (BringProject, Enter):
        step(ctx).execute()
    assert b.has(entered) and again.saved == resumed.saved
    Leave(ctx).execute()
    assert not b.has(entered)
    ClearIdentity(ctx).execute()
    states = {k: v["state"] for k, v in again.saved.items()}
    assert sorted(set(states.values())) == [DELETED, REUSED]
    assert listed(b._conn, "project", name=on_a.name) == []
    assert listed(b._conn, "domain", name=b_domain["name"]) == []
    assert listed(b._conn, "user", name=f"u1-{on_a.name[4:]}") == []
    assert listed(b._conn, "group", name=f"g1-{on_a.name[4:]}") == []
    assert len(listed(b._conn, "user", name=f"u2-{on_a.name[4:]}")) == 1  # reused: kept
    assert by_names(a._conn, on_a.project, on_a.domain) == want  # A untouched
