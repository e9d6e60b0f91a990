"""The plan of a tenant freeze: the project, and every assignment it adds and removes.
Planning reads Keystone and changes nothing; it refuses a project already frozen by
another run, and writers that inherit their role unless told to split them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from ephyra.errors import PlanRefused
from ephyra.tenants.freeze import Freeze, make_freeze
from ephyra.tenants.keystone import RECORD, Identity
from ephyra.tenants.steps import FORWARD, ROLLBACK


@dataclass(frozen=True)
class TenantPlan:
    cloud: str
    freeze: Freeze
    identity: Identity | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        f = self.freeze
        return {
            "cloud": self.cloud,
            "project": f.project,
            "project_name": f.project_name,
            "steps": [s.title for s in FORWARD],
            "rollback": [s.title for s in ROLLBACK],
            "grants": [f.said(g) for g in f.grants],
            "revokes": [f.said(g) for g in f.revokes],
            "freeze": f.to_dict(),
        }

    def tree(self) -> Tree:
        f = self.freeze
        root = Tree(f"[bold]tenant maintenance on[/] {escape(f.project_name)} ({f.project})")
        root.add(
            f"steps: {' -> '.join(s.title for s in FORWARD)}; "
            f"off: {' -> '.join(s.title for s in ROLLBACK)}"
        )
        grants = root.add(f"grant ({len(f.grants)})")
        for g in f.grants:
            grants.add(escape(f.said(g)))
        revokes = root.add(f"revoke ({len(f.revokes)})")
        for g in f.revokes:
            revokes.add(escape(f.said(g)))
        return root


def make_plan(
    identity: Identity,
    project: str,
    writing: list[str],
    reader: str,
    split_inherited: bool,
) -> TenantPlan:
    found = identity.project(project)
    if found.record:
        run = found.record.get("run") or "?"
        raise PlanRefused(
            f"{found.name} is in maintenance already (run {run}, its {RECORD} property): "
            f"`ephyra tenant maintenance off {found.id}` first"
        )
    freeze = make_freeze(identity, found, writing, reader, split_inherited)
    return TenantPlan(identity.name, freeze, identity)
