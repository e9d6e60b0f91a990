"""A tenant to freeze in the testbed's Keystone, with every kind of writer: direct users,
a group, a reader who writes too, a user who only reads, and writers who inherit their
role from the domain and from a parent project. Each tenant lives in a domain of its own,
so that freezing it touches no other test's projects."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from keystoneauth1 import session
from keystoneauth1.identity import v3

from ephyra.tenants.keystone import Grant, Identity
from testbed.keystone import Keystone
from testbed.tenantload import active, public_key, statuses
from testbed.tenantload import make_tenant as make_workload
from tests.functional.ephyra_cli import Ephyra

__all__ = ["active", "make_workload", "public_key", "statuses"]  # the workload's, shared

CLOUD = "ks"
WRITING = ("member", "manager", "admin")


@dataclass
class Tenant:
    keystone: Keystone
    conn: Any
    domain: str
    project: str  # the one to freeze: its id
    name: str
    others: dict[str, str]  # name -> id of the other projects of the domain
    users: dict[str, str] = field(default_factory=dict)  # name -> id
    groups: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)

    @property
    def identity(self) -> Identity:
        return Identity(CLOUD, self.conn)

    def call(self, verb: str, path: str, body: Any = None, **kw: Any) -> Any:
        answer = getattr(self.conn.identity, verb)(path, json=body, raise_exc=False, **kw)
        assert answer.status_code < 300, f"{verb} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    def assignments(self) -> list[Grant]:
        """Every role assignment on the domain and its projects, as granted."""
        targets = {self.domain, self.project, *self.others.values()}
        return sorted(g for g in self.identity.assignments() if g.target_id in targets)

    def effective(self, project: str) -> set[tuple[str, str]]:
        """(user name, role name) of every user's effective roles on ``project``."""
        path = f"/role_assignments?scope.project.id={project}&effective&include_names"
        found = self.call("get", path)["role_assignments"]
        return {(a["user"]["name"], a["role"]["name"]) for a in found}

    def writers(self) -> set[str]:
        return {user for user, role in self.effective(self.project) if role in WRITING}

    def readers(self) -> set[str]:
        return {user for user, role in self.effective(self.project) if role == "reader"}

    def grant(self, grant: Grant) -> None:
        self.call("put", grant.path)

    def revoke(self, grant: Grant) -> None:
        self.call("delete", grant.path)

    def on_project(self, actor: str, name: str, role: str) -> Grant:
        ids = self.users if actor == "user" else self.groups
        return Grant(actor, ids[name], "project", self.project, self.roles[role])

    def add_user(self, name: str) -> str:
        made = self.call(
            "post",
            "/users",
            {"user": {"name": f"{name}-{self.name}", "domain_id": "default", "password": "pw"}},
        )
        self.users[name] = made["user"]["id"]
        return str(made["user"]["id"])

    def token(self, user: str) -> str:
        """A token of ``user`` scoped to the project."""
        auth = v3.Password(
            auth_url=self.keystone.url,
            user_id=self.users[user],
            password="pw",
            project_id=self.project,
        )
        return str(session.Session(auth=auth).get_token())

    def validate(self, token: str) -> tuple[int, list[str]]:
        """What Keystone answers an admin validating ``token`` again: status, role names."""
        answer = self.conn.identity.get(
            "/auth/tokens", headers={"X-Subject-Token": token}, raise_exc=False
        )
        roles = answer.json()["token"]["roles"] if answer.status_code == 200 else []
        return answer.status_code, sorted(r["name"] for r in roles)

    def record(self) -> dict[str, Any]:
        return dict(self.call("get", f"/projects/{self.project}")["project"])


def make_tenant(keystone: Keystone, inherited: bool = True) -> Tenant:
    """A domain with projects parent > (frozen, sibling), and other; writers of frozen:
    alice (member), bob (manager, and reader), group team (member; tess in it); carol reads
    only; with ``inherited``: dana (manager inherited from the domain), group ops (member
    inherited from parent; olga in it). alice is a member of other too."""
    conn = keystone._admin()
    tag = uuid.uuid4().hex[:8]
    ids = conn.identity

    def post(path: str, key: str, body: dict[str, Any]) -> str:
        answer = ids.post(path, json={key: body}, raise_exc=False)
        assert answer.status_code == 201, answer.text
        return str(answer.json()[key]["id"])

    domain = post("/domains", "domain", {"name": f"dom-{tag}"})
    parent = post("/projects", "project", {"name": f"parent-{tag}", "domain_id": domain})
    name = f"frozen-{tag}"
    project = post("/projects", "project", {"name": name, "domain_id": domain, "parent_id": parent})
    sibling = post(
        "/projects", "project", {"name": f"sibling-{tag}", "domain_id": domain, "parent_id": parent}
    )
    other = post("/projects", "project", {"name": f"other-{tag}", "domain_id": domain})
    tenant = Tenant(
        keystone,
        conn,
        domain,
        project,
        name,
        {"parent": parent, "sibling": sibling, "other": other},
        roles={r: keystone._role(conn, r).id for r in ("reader", "member", "manager", "admin")},
    )
    for user in ("alice", "bob", "carol", "tess", "dana", "olga"):
        tenant.add_user(user)
    for group in ("team", "ops"):
        tenant.groups[group] = post(
            "/groups", "group", {"name": f"{group}-{name}", "domain_id": "default"}
        )
    tenant.call("put", f"/groups/{tenant.groups['team']}/users/{tenant.users['tess']}")
    tenant.call("put", f"/groups/{tenant.groups['ops']}/users/{tenant.users['olga']}")
    for actor, who, role in (
        ("user", "alice", "member"),
        ("user", "bob", "manager"),
        ("user", "bob", "reader"),
        ("user", "carol", "reader"),
        ("group", "team", "member"),
    ):
        tenant.grant(tenant.on_project(actor, who, role))
    alice_other = Grant("user", tenant.users["alice"], "project", other, tenant.roles["member"])
    tenant.grant(alice_other)
    if inherited:
        r = tenant.roles
        tenant.grant(Grant("user", tenant.users["dana"], "domain", domain, r["manager"], True))
        tenant.grant(Grant("group", tenant.groups["ops"], "project", parent, r["member"], True))
    return tenant


def clouds(keystone: Keystone, tmp: Path) -> Ephyra:
    """``ephyra`` with the cloud ``ks``: Keystone's admin."""
    entry = keystone.clouds_entry("admin", keystone.admin_password, "admin")
    (tmp / "clouds.yaml").write_text(yaml.safe_dump({"clouds": {CLOUD: entry}}))
    return Ephyra(tmp / "clouds.yaml", tmp / "state")


def wait_for(check: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)


# -- a tenant's workload on the two clouds of testbed.tenantclouds ---------------------------
def export(conn: Any, project: str, users: dict[str, str]) -> dict[str, Any]:
    """The tenant's export in the cloud of ``conn`` (ids and servers' status aside)."""
    from ephyra.tenants.resources import collect, describe

    tenant = describe(project, collect(conn, project, users))
    for server in tenant.export["server"]:
        server.pop("status")
    return tenant.export
