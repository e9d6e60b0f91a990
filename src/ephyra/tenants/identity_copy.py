"""A project brought to a cloud with a Keystone of its own: its domain, the project, its
users, groups, group memberships and role assignments, found or made on B's Keystone.

Separate Keystones are told from the clouds themselves, never from names: the clouds'
``auth_url`` differ *and* B's Keystone does not know the project's id (two URLs of one
Keystone share its ids).

What is copied is read from A as it was before the freeze (the freeze's ``before``): the
assignments made directly on the project, and those inherited from its domain (given on
B's domain of the same name, inherited, as on A). Users and groups are those the
assignments name; a group's members are copied among those users. A user gets its name,
domain, e-mail, description and enabled flag, never a password (Keystone shows no hash):
the operator sets one on B, or B's users come from LDAP or federation. Roles go by name:
one missing on B refuses the plan. Objects are found on B by name (in their domain);
one found is *reused* and never deleted, one made is *created*.

Every object is written to the run's :class:`~ephyra.tenants.mapping.Mapping` before it
is made (``intent``) and after (``created``): a run resumed after a crash finds by name
what it meant to make before making it, so nothing is made twice. :meth:`IdentityCopy.clear`
deletes what the mapping says the run created, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from ephyra.errors import PlanRefused, StepFailed
from ephyra.tenants.freeze import Freeze
from ephyra.tenants.keystone import TAG, Grant, Identity
from ephyra.tenants.mapping import CREATED, INTENT, Mapping

#: The value of a migration's ``keystones`` setting when B has its own Keystone.
SEPARATE = "separate"
CREATE = "create"
REUSE = "reuse"
STAY = "stays on A"
#: The mapping's kinds, in the order they are made (and deleted backwards).
KINDS = ("domain", "project", "user", "group", "membership", "assignment")


def auth_url(cloud: str) -> str:
    """The cloud's Keystone URL in clouds.yaml."""
    from ephyra.clouds import _auth_url

    return _auth_url(cloud).rstrip("/")


def separate(a: Identity, b: Identity, project_id: str) -> bool:
    """Whether B's Keystone is another Keystone than A's (see the module's doc)."""
    if auth_url(a.name) == auth_url(b.name):
        return False
    found = b._call("get", f"/projects/{project_id}", "look for the project", missing_ok=True)
    return found is None


@dataclass(frozen=True)
class Item:
    """One identity object of the copy, as a plan lists it."""

    kind: str
    a: str  # its key in the mapping (its id on A; an assignment's path)
    name: str
    action: str  # CREATE, REUSE or STAY
    why: str = ""
    b: str = ""  # its id on B, when B has it


@dataclass
class Tree:
    """What the copy reads on A: the project as it was before the freeze."""

    project: dict[str, Any]
    parent: str  # the parent project's name ('' at the top of its domain)
    domains: dict[str, dict[str, Any]]  # A id -> domain
    users: dict[str, dict[str, Any]]  # A id -> user
    groups: dict[str, dict[str, Any]]
    members: list[tuple[str, str]]  # (group, user) on A, both copied
    grants: list[Grant]  # copied
    left: list[tuple[Grant, str]]  # not copied, and why
    roles: dict[str, str]  # A role id -> name

    @classmethod
    def read(cls, a: Identity, freeze: Freeze) -> Tree:
        project = _get(a, "project", freeze.project)
        domain = str(project["domain_id"])
        parent = ""
        if project.get("parent_id") and project["parent_id"] != domain:
            parent = str(_get(a, "project", str(project["parent_id"]))["name"])
        grants: list[Grant] = []
        left: list[tuple[Grant, str]] = []
        for grant in freeze.before:
            here = grant.target == "project" and grant.target_id == freeze.project
            if here or (grant.target == "domain" and grant.target_id == domain):
                grants.append(grant)
            else:
                source = freeze.names.get(grant.target_id) or grant.target_id
                left.append((grant, f"inherited from project {source}: give it on B if needed"))
        users = {g.actor_id: _get(a, "user", g.actor_id) for g in grants if g.actor == "user"}
        groups = {g.actor_id: _get(a, "group", g.actor_id) for g in grants if g.actor == "group"}
        members = [
            (group, str(user["id"]))
            for group in groups
            for user in a._pages(f"/groups/{group}/users", "users", "list a group's users")
            if user["id"] in users
        ]
        domain_ids = {domain, *(str(o["domain_id"]) for o in [*users.values(), *groups.values()])}
        return cls(
            project=project,
            parent=parent,
            domains={d: _get(a, "domain", d) for d in sorted(domain_ids)},
            users=users,
            groups=groups,
            members=members,
            grants=grants,
            left=left,
            roles={g.role_id: freeze.names.get(g.role_id, g.role_id) for g in grants},
        )


def _get(keystone: Identity, kind: str, ident: str) -> dict[str, Any]:
    raw = keystone._call("get", f"/{kind}s/{ident}", f"show {kind} {ident}")
    return dict(raw[kind])


def _find(b: Identity, kind: str, **query: str) -> str:
    """The id of the one ``kind`` B lists for ``query`` ('' if none)."""
    if any(not v for v in query.values()):
        return ""  # in a domain B does not have yet
    path = f"/{kind}s?{urlencode(query)}"
    found = b._call("get", path, f"find {kind} {query.get('name', '')}")[f"{kind}s"]
    return str(found[0]["id"]) if found else ""


@dataclass
class IdentityCopy:
    """The copy of one project's identity from A's Keystone to B's. Without a mapping it
    only looks (a plan); with one it makes what B lacks."""

    a: Identity
    b: Identity
    freeze: Freeze
    mapping: Mapping | None = None
    items: list[Item] = field(default_factory=list)
    _tree: Tree | None = None

    @property
    def tree(self) -> Tree:
        if self._tree is None:
            self._tree = Tree.read(self.a, self.freeze)
        return self._tree

    def b_project(self) -> str:
        """The project's id on B (A's id while it is not there)."""
        if self.mapping is None:
            return self.freeze.project
        return self.mapping.b_of("project", self.freeze.project) or self.freeze.project

    # -- one object -----------------------------------------------------------------
    def _ensure(
        self,
        kind: str,
        a_id: str,
        name: str,
        find: Callable[[], str],
        make: Callable[[], str],
        **extra: Any,
    ) -> str:
        """B's id of it: found (reused; created, if the run meant to make it) or made."""
        mapping = self.mapping
        if mapping is None:
            found = find()
            self.items.append(Item(kind, a_id, name, REUSE if found else CREATE, b=found))
            return found
        done = mapping.b_of(kind, a_id)
        if done:
            return done
        found = find()
        if found and mapping.state(kind, a_id) == INTENT:
            mapping.created(kind, a_id, found)
        elif found:
            mapping.reused(kind, a_id, name, found)
        else:
            mapping.intend(kind, a_id, name, **extra)
            found = make()
            mapping.created(kind, a_id, found)
        return found

    def _post(self, kind: str, body: dict[str, Any], name: str) -> str:
        made = self.b._call("post", f"/{kind}s", f"create {kind} {name}", {kind: body})
        return str(made[kind]["id"])

    # -- the copy -------------------------------------------------------------------
    def check(self) -> None:
        """Refuse a role B lacks, naming it (a parent project B lacks: see ``_project``)."""
        tree = self.tree
        on_b = self.b.roles()
        missing = sorted({n for n in tree.roles.values() if n not in on_b})
        if missing:
            raise PlanRefused(
                f"{self.b.name}'s Keystone has no role {', '.join(map(repr, missing))}: "
                f"the assignments of {tree.project['name']} on {self.a.name} use them; "
                "create them on B first"
            )

    def run(self) -> str:
        """Find or make everything on B; B's project id ('' when a plan finds none)."""
        self.items = []
        self.check()
        tree = self.tree
        domains = {a_id: self._domain(a_id, d) for a_id, d in tree.domains.items()}
        project = self._project(domains[str(tree.project["domain_id"])])
        users = {a_id: self._user(a_id, u, domains) for a_id, u in tree.users.items()}
        groups = {a_id: self._group(a_id, g, domains) for a_id, g in tree.groups.items()}
        for group, user in tree.members:
            self._member(group, user, groups[group], users[user])
        roles = self.b.roles()
        targets = {"project": project, "domain": domains[str(tree.project["domain_id"])]}
        for grant in tree.grants:
            actor = (users if grant.actor == "user" else groups)[grant.actor_id]
            role = roles[tree.roles[grant.role_id]]
            self._assignment(grant, actor, targets[grant.target], role)
        for grant, why in tree.left:
            self.items.append(Item("assignment", grant.path, self._said(grant), STAY, why))
        return project

    def _domain(self, a_id: str, domain: dict[str, Any]) -> str:
        name = str(domain["name"])
        body = {
            "name": name,
            "description": domain.get("description") or "",
            "enabled": bool(domain.get("enabled", True)),
        }
        return self._ensure(
            "domain",
            a_id,
            name,
            lambda: _find(self.b, "domain", name=name),
            lambda: self._post("domain", body, name),
        )

    def _project(self, domain: str) -> str:
        tree = self.tree
        project = tree.project
        name = str(project["name"])
        parent = ""
        if tree.parent:
            parent = _find(self.b, "project", name=tree.parent, domain_id=domain)
            if not parent:
                raise (PlanRefused if self.mapping is None else StepFailed)(
                    f"{name}'s parent project {tree.parent} is not on {self.b.name}'s Keystone "
                    "(in a domain of the same name): move it first, or create it there"
                )
        body: dict[str, Any] = {
            "name": name,
            "domain_id": domain,
            "description": project.get("description") or "",
            "enabled": bool(project.get("enabled", True)),
            "tags": [t for t in project.get("tags") or () if t != TAG],
        }
        if parent:
            body["parent_id"] = parent
        return self._ensure(
            "project",
            str(project["id"]),
            name,
            lambda: _find(self.b, "project", name=name, domain_id=domain),
            lambda: self._post("project", body, name),
        )

    def _actor(self, kind: str, a_id: str, raw: dict[str, Any], domains: dict[str, str]) -> str:
        name, domain = str(raw["name"]), domains[str(raw["domain_id"])]
        body = {"name": name, "domain_id": domain, "description": raw.get("description") or ""}
        if kind == "user":
            body["enabled"] = bool(raw.get("enabled", True))
            if raw.get("email"):
                body["email"] = raw["email"]
        return self._ensure(
            kind,
            a_id,
            name,
            lambda: _find(self.b, kind, name=name, domain_id=domain),
            lambda: self._post(kind, body, name),
        )

    def _user(self, a_id: str, raw: dict[str, Any], domains: dict[str, str]) -> str:
        return self._actor("user", a_id, raw, domains)

    def _group(self, a_id: str, raw: dict[str, Any], domains: dict[str, str]) -> str:
        return self._actor("group", a_id, raw, domains)

    def _member(self, group: str, user: str, b_group: str, b_user: str) -> None:
        tree = self.tree
        a_id = f"{group}/{user}"
        name = f"{tree.users[user]['name']} in {tree.groups[group]['name']}"
        path = f"/groups/{b_group}/users/{b_user}"

        def find() -> str:
            if not (b_group and b_user):
                return ""
            found = self.b._call("head", path, f"check {name}", missing_ok=True)
            return b_user if found is not None else ""

        def make() -> str:
            self.b._call("put", path, f"add {name}")
            return b_user

        self._ensure("membership", a_id, name, find, make, group=b_group, user=b_user)

    def _assignment(self, grant: Grant, actor: str, target: str, role: str) -> None:
        b_grant = Grant(grant.actor, actor, grant.target, target, role, grant.inherited)

        def make() -> str:
            self.b.grant(b_grant)
            return b_grant.path

        self._ensure(
            "assignment",
            grant.path,
            self._said(grant),
            lambda: b_grant.path if actor and target and self.b.has(b_grant) else "",
            make,
            grant=b_grant.to_dict(),
        )

    def _said(self, grant: Grant) -> str:
        """An assignment in words, by A's names."""
        tree, names = self.tree, self.freeze.names
        actor = (tree.users if grant.actor == "user" else tree.groups).get(grant.actor_id) or {}
        target = (tree.domains.get(grant.target_id) or {}).get("name") or names.get(
            grant.target_id, grant.target_id
        )
        if grant.target_id == tree.project["id"]:
            target = tree.project["name"]
        how = " (inherited)" if grant.inherited else ""
        return (
            f"{names.get(grant.role_id, grant.role_id)} of {grant.actor} "
            f"{actor.get('name') or grant.actor_id} on {grant.target} {target}{how}"
        )

    # -- rollback -------------------------------------------------------------------
    def clear(self) -> None:
        """Delete on B what :meth:`run` made (or meant to make: it may be there), the last
        made first; never what it reused."""
        mapping = self.mapping
        if mapping is None:
            raise ValueError("clearing needs the run's mapping")
        for kind in reversed(KINDS):
            for entry in mapping.entries(kind, CREATED, INTENT):
                self._delete(kind, entry)
                mapping.deleted(kind, entry["a"])

    def _delete(self, kind: str, entry: dict[str, Any]) -> None:
        b, what = self.b, f"delete {kind} {entry.get('name') or entry['a']}"
        if kind == "assignment":
            b.revoke(Grant.from_dict(entry["grant"]))
            return
        if kind == "membership":
            path = f"/groups/{entry['group']}/users/{entry['user']}"
            b._call("delete", path, what, missing_ok=True)
            return
        ident = str(entry.get("b") or "") or self._made(kind, entry)
        if not ident:
            return
        if kind == "domain":  # Keystone deletes a disabled domain only
            body = {"domain": {"enabled": False}}
            b._call("patch", f"/domains/{ident}", what, body, missing_ok=True)
        b._call("delete", f"/{kind}s/{quote(ident)}", what, missing_ok=True)

    def _made(self, kind: str, entry: dict[str, Any]) -> str:
        """What the run meant to make (``intent``), found on B by name: it was not there
        before, as the run looked first."""
        name = str(entry.get("name") or "")
        if kind == "domain":
            return _find(self.b, "domain", name=name)
        if kind == "project":
            domain = self.mapping.b_of("domain", str(self.tree.project["domain_id"]))  # type: ignore[union-attr]
            return _find(self.b, "project", name=name, domain_id=domain)
        raw = (self.tree.users if kind == "user" else self.tree.groups).get(entry["a"]) or {}
        domain = self.mapping.b_of("domain", str(raw.get("domain_id") or ""))  # type: ignore[union-attr]
        return _find(self.b, kind, name=name, domain_id=domain)


__all__ = ["SEPARATE", "IdentityCopy", "Item", "Tree", "separate"]
