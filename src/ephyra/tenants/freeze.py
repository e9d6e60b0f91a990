"""What a tenant freeze changes in Keystone, and how it is undone.

A freeze gives every user and group holding a writing role on a project the reader role
there instead. It is computed once, from Keystone as found, and written down (in the
journal and in the project itself) before anything changes:

- ``before``: every assignment found on the project and at the sources it inherits from
  (its domain, its parent projects);
- ``grants``: what the freeze adds, each absent before: the reader role on the project for
  each writer; for a writer that inherits its role (``split_inherited``), the same role
  directly on every other project the inherited assignment reached;
- ``revokes``: the writing assignments it removes: direct ones on the project, and
  inherited ones at their source.

Forward: every grant, then every revoke (no one is ever left with less than reader).
Undo (``off``): every revoke given back, then every grant taken back. A writer is given
back only while its actor still holds the reader role on the project (someone who took it
away during the freeze took the actor off the project: the freeze does not bring it back);
a grant is taken back only because the freeze made it (it was absent before). An
assignment someone made during the freeze is in neither list: never touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ephyra.errors import PlanRefused, UsageError
from ephyra.tenants.keystone import Grant, Project
from ephyra.tenants.records import DEFAULT_WRITING, READER


class Keystone(Protocol):
    """What a freeze needs of Keystone (:class:`ephyra.tenants.keystone.Identity`)."""

    name: str
    names: dict[str, str]

    def projects(self, domain_id: str) -> list[Project]: ...
    def roles(self) -> dict[str, str]: ...
    def on(self, target: str, target_id: str) -> list[Grant]: ...
    def of(self, grant: Grant, role_id: str) -> list[Grant]: ...
    def has(self, grant: Grant) -> bool: ...
    def grant(self, grant: Grant) -> None: ...
    def revoke(self, grant: Grant) -> bool: ...


@dataclass(frozen=True)
class Freeze:
    project: str  # id
    project_name: str
    domain: str
    writing: tuple[str, ...]  # role ids
    reader: str  # role id
    before: tuple[Grant, ...]
    grants: tuple[Grant, ...]
    revokes: tuple[Grant, ...]
    names: dict[str, str] = field(default_factory=dict, compare=False)
    run: str = ""

    def reader_of(self, grant: Grant) -> Grant:
        """The reader role on the project of ``grant``'s actor."""
        return grant.on("project", self.project, self.reader)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "project": self.project,
            "project_name": self.project_name,
            "domain": self.domain,
            "writing": list(self.writing),
            "reader": self.reader,
            "before": [g.to_dict() for g in self.before],
            "grants": [g.to_dict() for g in self.grants],
            "revokes": [g.to_dict() for g in self.revokes],
            "names": dict(self.names),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Freeze:
        return cls(
            project=str(data["project"]),
            project_name=str(data.get("project_name") or ""),
            domain=str(data.get("domain") or ""),
            writing=tuple(data.get("writing") or ()),
            reader=str(data["reader"]),
            before=tuple(Grant.from_dict(g) for g in data.get("before") or ()),
            grants=tuple(Grant.from_dict(g) for g in data.get("grants") or ()),
            revokes=tuple(Grant.from_dict(g) for g in data.get("revokes") or ()),
            names=dict(data.get("names") or {}),
            run=str(data.get("run") or ""),
        )

    def said(self, grant: Grant) -> str:
        """An assignment in words, by names where known."""
        name = self.names.get
        target = self.project_name if grant.target_id == self.project else name(grant.target_id)
        how = " (inherited to its projects)" if grant.inherited else ""
        return (
            f"{name(grant.role_id, grant.role_id)} of {grant.actor} "
            f"{name(grant.actor_id, grant.actor_id)} on {grant.target} "
            f"{target or grant.target_id}{how}"
        )


def role_ids(keystone: Keystone, writing: Sequence[str], reader: str) -> tuple[list[str], str]:
    """The ids of the writing roles and of the reader role, by name; refused if missing."""
    known = keystone.roles()
    keystone.names.update({ident: name for name, ident in known.items()})
    missing = [name for name in (*writing, reader) if name not in known]
    if missing:
        raise UsageError(f"{keystone.name}: no role {', '.join(map(repr, missing))} in Keystone")
    if reader in writing:
        raise UsageError(f"the reader role {reader!r} cannot be a writing role too")
    return [known[name] for name in writing], known[reader]


def sources(project: Project, projects: Sequence[Project]) -> list[tuple[str, str]]:
    """What ``project`` inherits assignments from: its domain, then its parents, nearest
    last (``("domain", id)``, ``("project", id)``)."""
    by_id = {p.id: p for p in projects}
    chain: list[tuple[str, str]] = []
    parent = by_id.get(project.parent_id)
    while parent is not None and len(chain) < len(by_id):
        chain.append(("project", parent.id))
        parent = by_id.get(parent.parent_id)
    return [("domain", project.domain_id), *reversed(chain)]


def reached(source: Grant, project: Project, projects: Sequence[Project]) -> list[str]:
    """The ids of the projects an inherited assignment at ``source`` gives its role on,
    but ``project``: every project of the domain, or every project below the parent."""
    if source.target == "domain":
        return sorted(p.id for p in projects if p.id != project.id)
    children: dict[str, list[str]] = {}
    for p in projects:
        children.setdefault(p.parent_id, []).append(p.id)
    below: list[str] = []
    todo = list(children.get(source.target_id, ()))
    while todo:
        ident = todo.pop()
        below.append(ident)
        todo.extend(children.get(ident, ()))
    return sorted(i for i in below if i != project.id)


def make_freeze(
    keystone: Keystone,
    project: Project,
    writing: Sequence[str] = DEFAULT_WRITING,
    reader: str = READER,
    split_inherited: bool = False,
) -> Freeze:
    """The freeze of ``project`` as Keystone is now; refused, naming each source, if a
    writer inherits its role and ``split_inherited`` is not given."""
    writers, reader_id = role_ids(keystone, writing, reader)
    projects = keystone.projects(project.domain_id)
    keystone.names.update({p.id: p.name for p in projects})
    here = keystone.on("project", project.id)
    before = [g for g in here if not g.inherited]  # inherited here: for projects below
    inherited: list[Grant] = []
    for target, ident in sources(project, projects):
        found = [g for g in keystone.on(target, ident) if g.inherited]
        before.extend(found)
        inherited.extend(g for g in found if g.role_id in writers)
    direct = [g for g in before if g.target_id == project.id and g.role_id in writers]
    if inherited and not split_inherited:
        names = keystone.names
        listing = "\n  ".join(
            f"{names.get(g.actor_id, g.actor_id)} ({g.actor}): "
            f"{names.get(g.role_id, g.role_id)} inherited from {g.target} "
            f"{names.get(g.target_id, g.target_id)}"
            for g in inherited
        )
        raise PlanRefused(
            f"writers of {project.name} hold their role by inheritance:\n  {listing}\n"
            "freezing them means replacing each inherited assignment at its source by direct "
            "ones on every other project it reaches: say so with --split-inherited"
        )
    held = set(before)
    grants: dict[Grant, None] = {}
    for writer in [*direct, *inherited]:
        reader_grant = writer.on("project", project.id, reader_id)
        if reader_grant not in held:
            grants[reader_grant] = None
    for source in inherited:
        has = {g.target_id for g in keystone.of(source, source.role_id) if not g.inherited}
        for ident in reached(source, project, projects):
            if ident not in has:
                grants[source.on("project", ident, source.role_id)] = None
    return Freeze(
        project=project.id,
        project_name=project.name,
        domain=project.domain_id,
        writing=tuple(writers),
        reader=reader_id,
        before=tuple(before),
        grants=tuple(grants),
        revokes=tuple(dict.fromkeys([*direct, *inherited])),
        names=dict(keystone.names),
    )


# -- doing and undoing -------------------------------------------------------------------
#: What became of one writer on ``off``.
PRESENT = "present"  # it was there already (never removed, or given back before)
RESTORED = "restored"
LEFT = "left"  # its actor lost the reader role during the freeze: not given back


def restore(keystone: Keystone, freeze: Freeze, writer: Grant, decided: str | None) -> str:
    """Give back one writer the freeze removed, as :data:`RESTORED`, :data:`PRESENT` or
    :data:`LEFT` (``decided``: what an earlier attempt found, kept)."""
    if decided == LEFT:
        return LEFT
    if keystone.has(writer):
        return decided or PRESENT
    if decided != RESTORED and not keystone.has(freeze.reader_of(writer)):
        return LEFT
    keystone.grant(writer)
    return RESTORED
