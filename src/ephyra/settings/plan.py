"""The plan of a settings apply: the diff of the document against the cloud, what cannot be
applied through an API (problems: they refuse the plan), and what is left to the operator
(notes). Planning reads the cloud and changes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ephyra.errors import PlanRefused
from ephyra.settings.cloud import SettingsCloud
from ephyra.settings.diff import CREATE, UPDATE, Change, diff
from ephyra.settings.document import SECTION_OF, SOURCE_KEY, Objects, objects_of, sections_of

#: Kinds the document carries for the reader but a run does not make (a server group
#: belongs to its project's users: only a token of that project makes one).
NOT_APPLIED = frozenset({"server_group"})


@dataclass(frozen=True)
class SettingsPlan:
    cloud: str
    source: str
    prune: bool
    changes: tuple[Change, ...]
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    target: SettingsCloud | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "source": self.source,
            "prune": self.prune,
            "changes": [c.said() for c in self.changes],
            "problems": list(self.problems),
            "notes": list(self.notes),
        }

    def text(self) -> str:
        head = f"settings of {self.source or 'the document'} onto {self.cloud}"
        lines = [f"{head}: {len(self.changes)} change(s){' (pruning)' if self.prune else ''}"]
        lines += [f"  {c.said()}" for c in self.changes]
        lines += [f"problem: {p}" for p in self.problems]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def problems_of(
    changes: list[Change], wanted: Objects, target: SettingsCloud, sections: set[str]
) -> tuple[list[str], list[str]]:
    """What the cloud cannot be given through its APIs, and what the run leaves alone."""
    problems: list[str] = []
    notes: list[str] = []
    have = target.sections()
    for section in sorted(sections - have):
        if any(wanted.get(k) for k, s in SECTION_OF.items() if s == section):
            problems.append(f"{target.name} has no {section} service")
    for change in changes:
        if change.kind in NOT_APPLIED:
            notes.append(f"not applied: {change.said()} (made by the project's own users)")
        elif change.kind == "project" and change.action == UPDATE and "parent" in change.fields:
            problems.append(f"{change.said()}: a project's parent cannot change")
        elif change.kind == "network" and change.action == UPDATE:
            fixed = {"project", "network_type", "physical_network", "segmentation_id"}
            stuck = sorted(fixed & set(change.fields))
            if stuck:
                problems.append(f"{change.said()}: {', '.join(stuck)} cannot change")
    made = [c.after for c in changes if c.kind == "network" and c.action == CREATE and c.after]
    if "network" in have and any(n.get("network_type") for n in made):
        if not target.has_provider():
            problems.append(
                f"{target.name}'s Neutron has no provider networks extension: the network "
                "types of the document cannot be set"
            )
        else:
            used = target.network_types()
            for n in made:
                kind = n.get("network_type")
                if kind and kind not in used:
                    notes.append(
                        f"network {n['name']}: type {kind} is in use on no network of "
                        f"{target.name} (its Neutron may lack it: the create then fails)"
                    )
    return problems, notes


def make_plan(target: SettingsCloud, document: Mapping[str, Any], prune: bool) -> SettingsPlan:
    """The plan of ``document`` onto ``target``; refused when it has problems."""
    wanted, kinds = objects_of(document)
    sections = sections_of(kinds)
    have = target.read(sections & target.sections())
    changes = diff(wanted, have, kinds, prune)
    problems, notes = problems_of(changes, wanted, target, sections)
    plan = SettingsPlan(
        target.name,
        str(document.get(SOURCE_KEY) or ""),
        prune,
        tuple(c for c in changes if c.kind not in NOT_APPLIED),
        tuple(problems),
        tuple(notes),
        target,
    )
    if problems:
        raise PlanRefused(
            f"the settings cannot be applied to {target.name}: " + "; ".join(problems)
        )
    return plan
