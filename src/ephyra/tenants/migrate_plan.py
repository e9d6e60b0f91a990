"""The plan of a tenant migration (a dry run): every resource of the project on A with
its kind, name and size, what B has already (reused, never made twice), what cannot move
and why, and the bytes a move copies. Planning reads both clouds and changes nothing.

When B has a Keystone of its own (:func:`ephyra.tenants.identity_copy.separate`), the
plan lists the project, its domain, users, groups, memberships and role assignments too,
each to create on B or found there (reused); a role B lacks refuses the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from ephyra.errors import PlanRefused
from ephyra.tenants.freeze import Freeze, make_freeze
from ephyra.tenants.identity_copy import KINDS as IDENTITY_KINDS
from ephyra.tenants.identity_copy import SEPARATE, IdentityCopy, separate
from ephyra.tenants.keystone import RECORD, Identity
from ephyra.tenants.migrate_steps import FORWARD, ROLLBACK, titles
from ephyra.tenants.resources import _DESCRIBE, KINDS, Resource, _Names, describe

CREATE = "create"
REUSE = "reuse"
STAY = "stays on A"


@dataclass(frozen=True)
class Row:
    resource: Resource
    action: str  # CREATE, REUSE or STAY

    def to_dict(self) -> dict[str, Any]:
        return {**self.resource.to_dict(), "action": self.action}


@dataclass(frozen=True)
class MigrationPlan:
    source: str
    target: str
    freeze: Freeze
    rows: tuple[Row, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    identity: Identity | None = field(default=None, compare=False, repr=False)

    @property
    def total_bytes(self) -> int:
        return sum(r.resource.size for r in self.rows if r.action == CREATE)

    def blocked(self) -> list[Row]:
        return [r for r in self.rows if r.action == STAY]

    def to_dict(self) -> dict[str, Any]:
        f = self.freeze
        return {
            "source": self.source,
            "target": self.target,
            "project": f.project,
            "project_name": f.project_name,
            "steps": titles(FORWARD),
            "rollback": titles(ROLLBACK),
            "resources": [r.to_dict() for r in self.rows],
            "counts": counts(self.rows),
            "total_bytes": self.total_bytes,
            "settings": dict(self.settings),
            "freeze": f.to_dict(),
        }

    def tree(self) -> Tree:
        f = self.freeze
        root = Tree(
            f"[bold]tenant migrate[/] {escape(f.project_name)} ({f.project}): "
            f"{escape(self.source)} -> {escape(self.target)}"
        )
        root.add(
            f"freeze: {len(f.grants)} grant(s), {len(f.revokes)} revoke(s); "
            f"then {len([r for r in self.rows if r.action == CREATE])} to create on "
            f"{escape(self.target)}, {self.total_bytes} bytes to copy"
        )
        for kind in (*IDENTITY_KINDS, *KINDS):
            rows = [r for r in self.rows if r.resource.kind == kind]
            if not rows:
                continue
            branch = root.add(f"{kind} ({len(rows)})")
            for row in rows:
                r = row.resource
                size = f", {r.size} bytes" if r.size else ""
                why = f": {r.blocker}" if r.blocker else ""
                branch.add(escape(f"{r.name} [{row.action}{size}]{why}"))
        return root


def counts(rows: Sequence[Row]) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in rows:
        found[row.action] = found.get(row.action, 0) + 1
    return found


def actions(a: Mapping[str, list[Any]], b: Mapping[str, list[Any]], project: str) -> list[Row]:
    """Each resource of A (``collect`` of each side) with what a move does about it: a
    thing B holds already, equal (the same export), is reused; quotas are always set."""
    on_b = describe(project, b).export
    names = _Names(a)
    rows: list[Row] = []
    for kind in KINDS:
        for item in a.get(kind, []):
            spec, resource = _DESCRIBE[kind](item, names, a)
            if resource.blocker:
                action = STAY
            elif kind not in ("quota", "server") and spec in on_b.get(kind, []):
                action = REUSE
            else:
                action = CREATE
            rows.append(Row(resource, action))
    return rows


def make_plan(
    source: str,
    target: str,
    project: str,
    *,
    split_inherited: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> MigrationPlan:
    from ephyra.clouds import connect, translated
    from ephyra.tenants.resources import collect

    if source == target:
        raise PlanRefused(f"--from and --to name the same cloud ({source})")
    identity = Identity.connect(source)
    found = identity.project(project)
    if found.record:
        run = found.record.get("run") or "?"
        raise PlanRefused(
            f"{found.name} is in maintenance already (run {run}, its {RECORD} property): "
            "undo that first"
        )
    freeze = make_freeze(identity, found, split_inherited=split_inherited)
    users = {
        g.actor_id: freeze.names.get(g.actor_id, g.actor_id)
        for g in freeze.before
        if g.actor == "user" and g.target_id == found.id
    }
    with translated(source, "read the tenant"):
        a = collect(connect(source), found.id, users)
    settings = dict(settings or {})
    b_identity = Identity.connect(target)
    rows: list[Row] = []
    b_project, b_users = found.id, users
    if separate(identity, b_identity, found.id):
        settings["keystones"] = SEPARATE
        rows, b_project, b_users = _on_own_keystone(identity, b_identity, freeze, users)
    b: dict[str, list[Any]] = {}
    if b_project:
        with translated(target, "read the tenant"):
            b = collect(connect(target), b_project, b_users)
    rows.extend(actions(a, b, found.id))
    return MigrationPlan(source, target, freeze, tuple(rows), settings, identity)


def _on_own_keystone(
    a: Identity, b: Identity, freeze: Freeze, users: dict[str, str]
) -> tuple[list[Row], str, dict[str, str]]:
    """The identity rows, B's project id ('' none yet) and B's users whose key pairs are
    the tenant's (B id -> name), when B has its own Keystone."""
    copy = IdentityCopy(a, b, freeze)
    b_project = copy.run()
    rows = [Row(Resource(i.kind, i.name, i.a, blocker=i.why), i.action) for i in copy.items]
    found = {i.a: i.b for i in copy.items if i.kind == "user" and i.b}
    return rows, b_project, {found[u]: name for u, name in users.items() if u in found}
