"""One cloud's Keystone as a tenant freeze uses it: projects, roles and role assignments,
through openstacksdk's identity proxy as plain REST calls (one request per action, errors
translated at the edge like every cloud call in Ephyra)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ephyra.clouds import answer, connect, keystone_pages
from ephyra.errors import UsageError

IDENTITY = "identity (Keystone)"
#: The project's extra property that holds the freeze's record in Keystone itself.
RECORD = "ephyra_maintenance"
#: The tag a frozen project carries (``openstack project list --tags ephyra-maintenance``).
TAG = "ephyra-maintenance"
ACTORS = ("user", "group")
TARGETS = ("project", "domain")


@dataclass(frozen=True, order=True)
class Grant:
    """One role assignment: an actor (user or group) holds a role on a target (project or
    domain), on the target itself or, ``inherited``, on every project below it."""

    actor: str
    actor_id: str
    target: str
    target_id: str
    role_id: str
    inherited: bool = False

    def __post_init__(self) -> None:
        if self.actor not in ACTORS or self.target not in TARGETS:
            raise UsageError(f"not a role assignment: {self.actor} on {self.target}")

    @property
    def path(self) -> str:
        """The assignment's own URL below /v3 (PUT grants it, DELETE revokes it)."""
        base = (
            f"/{self.target}s/{self.target_id}/{self.actor}s/{self.actor_id}/roles/{self.role_id}"
        )
        return f"/OS-INHERIT{base}/inherited_to_projects" if self.inherited else base

    def on(self, target: str, target_id: str, role_id: str, inherited: bool = False) -> Grant:
        """The same actor's assignment of ``role_id`` on another target."""
        return Grant(self.actor, self.actor_id, target, target_id, role_id, inherited)

    def to_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "actor_id": self.actor_id,
            "target": self.target,
            "target_id": self.target_id,
            "role_id": self.role_id,
            "inherited": self.inherited,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Grant:
        return cls(
            str(data["actor"]),
            str(data["actor_id"]),
            str(data["target"]),
            str(data["target_id"]),
            str(data["role_id"]),
            bool(data.get("inherited")),
        )

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Grant | None:
        """An entry of /v3/role_assignments (None: a system assignment)."""
        actor = next((a for a in ACTORS if a in raw), None)
        scope = raw.get("scope") or {}
        target = next((t for t in TARGETS if t in scope), None)
        if actor is None or target is None:
            return None
        inherited = scope.get("OS-INHERIT:inherited_to") == "projects"
        return cls(
            actor, raw[actor]["id"], target, scope[target]["id"], raw["role"]["id"], inherited
        )


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    domain_id: str
    parent_id: str  # the domain's id for a project at the top of its domain
    record: dict[str, Any] | None = None  # the freeze's record kept in Keystone
    tags: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Project:
        record = raw.get(RECORD)
        return cls(
            id=str(raw["id"]),
            name=str(raw.get("name") or ""),
            domain_id=str(raw.get("domain_id") or ""),
            parent_id=str(raw.get("parent_id") or ""),
            record=dict(record) if isinstance(record, Mapping) else None,
            tags=tuple(raw.get("tags") or ()),
        )


class Identity:
    """The identity API of the cloud ``name`` of clouds.yaml (an admin's credentials)."""

    def __init__(self, name: str, conn: Any) -> None:
        self.name = name
        self._conn = conn
        #: id -> name of the users, groups, roles and projects listings have shown.
        self.names: dict[str, str] = {}

    @classmethod
    def connect(cls, name: str) -> Identity:
        return cls(name, connect(name))

    def _call(
        self, verb: str, path: str, action: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        """The answer's JSON (None: no content, or 404 when ``missing_ok``)."""
        identity = self._conn.identity
        return answer(
            identity, verb, path, self.name, action, IDENTITY, body, missing_ok=missing_ok
        )

    def _pages(self, path: str, key: str, action: str) -> Iterator[dict[str, Any]]:
        return keystone_pages(lambda at: self._call("get", at, action), path, key)

    # -- projects and roles ----------------------------------------------------------
    def project(self, ident: str) -> Project:
        """The project whose id or name (unique in the cloud) is ``ident``."""
        raw = self._call("get", f"/projects/{ident}", f"show project {ident}", missing_ok=True)
        if raw:
            return Project.from_api(raw["project"])
        found = list(
            self._pages(f"/projects?{urlencode({'name': ident})}", "projects", "find project")
        )
        if not found:
            raise UsageError(f"{self.name}: no project {ident!r} (by id or name)")
        if len(found) > 1:
            domains = ", ".join(sorted(p["domain_id"] for p in found))
            raise UsageError(
                f"{self.name}: {len(found)} projects are named {ident!r} (domains {domains}): "
                "name it by its id"
            )
        return Project.from_api(found[0])

    def projects(self, domain_id: str) -> list[Project]:
        """Every project of a domain, at any depth."""
        path = f"/projects?{urlencode({'domain_id': domain_id})}"
        return [Project.from_api(p) for p in self._pages(path, "projects", "list projects")]

    def roles(self) -> dict[str, str]:
        """Role name -> id (global roles)."""
        return {r["name"]: r["id"] for r in self._pages("/roles", "roles", "list roles")}

    # -- assignments -----------------------------------------------------------------
    def assignments(self, **query: str) -> list[Grant]:
        """The role assignments /v3/role_assignments lists for ``query`` (not effective:
        as granted, groups and inheritance not expanded)."""
        path = "/role_assignments?" + urlencode({**query, "include_names": "true"})
        found: list[Grant] = []
        for raw in self._pages(path, "role_assignments", "list role assignments"):
            for key in ("user", "group", "role"):
                if key in raw and raw[key].get("name"):
                    self.names[raw[key]["id"]] = str(raw[key]["name"])
            grant = Grant.from_api(raw)
            if grant is not None:
                found.append(grant)
        return found

    def on(self, target: str, target_id: str) -> list[Grant]:
        """Every assignment made on a project or domain, direct and inherited."""
        return self.assignments(**{f"scope.{target}.id": target_id})

    def of(self, grant: Grant, role_id: str) -> list[Grant]:
        """Every assignment of ``role_id`` the actor of ``grant`` holds, on any target."""
        return self.assignments(**{f"{grant.actor}.id": grant.actor_id, "role.id": role_id})

    def has(self, grant: Grant) -> bool:
        found = self._call("head", grant.path, f"check {describe(grant)}", missing_ok=True)
        return found is not None

    def grant(self, grant: Grant) -> None:
        self._call("put", grant.path, f"grant {describe(grant)}")

    def revoke(self, grant: Grant) -> bool:
        """Revoke it; False if it was not there."""
        gone = self._call("delete", grant.path, f"revoke {describe(grant)}", missing_ok=True)
        return gone is not None

    # -- the freeze's record -----------------------------------------------------------
    def save_record(self, project_id: str, record: Mapping[str, Any] | None) -> None:
        """Keep the freeze's record in the project (None: remove it), and its tag."""
        saved = self._call(
            "patch",
            f"/projects/{project_id}",
            "record the maintenance in the project",
            {"project": {RECORD: None if record is None else dict(record)}},
        )
        tagged = TAG in ((saved or {}).get("project") or {}).get("tags", ())
        tag = f"/projects/{project_id}/tags/{TAG}"
        if record is None and tagged:
            self._call("delete", tag, "untag the project", missing_ok=True)
        elif record is not None and not tagged:  # Keystone refuses a tag twice (400)
            self._call("put", tag, "tag the project")


def describe(grant: Grant) -> str:
    """An assignment in words, by ids."""
    how = " (inherited to its projects)" if grant.inherited else ""
    return (
        f"role {grant.role_id} of {grant.actor} {grant.actor_id} "
        f"on {grant.target} {grant.target_id}{how}"
    )
