"""Keystone's assignments in memory, as a freeze reads and changes them."""

from __future__ import annotations

from typing import Any

from ephyra.tenants.keystone import Grant, Project

ROLES = {"reader": "r-reader", "member": "r-member", "manager": "r-manager", "admin": "r-admin"}


class FakeKeystone:
    name = "fake"

    def __init__(self, projects: list[Project], grants: set[Grant]) -> None:
        self.names: dict[str, str] = {}
        self._projects = {p.id: p for p in projects}
        self.grants = set(grants)
        self.records: dict[str, Any] = {}
        self.calls: list[str] = []

    def project(self, ident: str) -> Project:
        p = self._projects[ident]
        return Project(p.id, p.name, p.domain_id, p.parent_id, self.records.get(ident))

    def projects(self, domain_id: str) -> list[Project]:
        return [p for p in self._projects.values() if p.domain_id == domain_id]

    def roles(self) -> dict[str, str]:
        return dict(ROLES)

    def on(self, target: str, target_id: str) -> list[Grant]:
        return sorted(g for g in self.grants if (g.target, g.target_id) == (target, target_id))

    def of(self, grant: Grant, role_id: str) -> list[Grant]:
        return sorted(
            g
            for g in self.grants
            if (g.actor, g.actor_id, g.role_id) == (grant.actor, grant.actor_id, role_id)
        )

    def has(self, grant: Grant) -> bool:
        return grant in self.grants

    def grant(self, grant: Grant) -> None:
        self.calls.append(f"grant {grant.path}")
        self.grants.add(grant)

    def revoke(self, grant: Grant) -> bool:
        self.calls.append(f"revoke {grant.path}")
        found = grant in self.grants
        self.grants.discard(grant)
        return found

    def save_record(self, project_id: str, record: Any) -> None:
        self.records[project_id] = None if record is None else dict(record)
