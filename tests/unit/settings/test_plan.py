"""What a plan refuses (a section whose service the cloud lacks, a change no API makes, a
network type without the provider extension) and what it leaves to the operator."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ephyra.errors import PlanRefused
from ephyra.settings.document import ORDER, objects_of
from ephyra.settings.plan import make_plan
from tests.unit.settings.test_diff import DOC


class Target:
    """A cloud that has ``objects`` and the services ``sections``."""

    name = "b"

    def __init__(self, sections: set[str], objects: Any = None, provider: bool = True) -> None:
        self._sections = sections
        self.objects = objects or {k: {} for k in ORDER}
        self.provider = provider

    def sections(self) -> set[str]:
        return set(self._sections)

    def read(self, sections: set[str]) -> Any:
        return copy.deepcopy(self.objects)

    def has_provider(self) -> bool:
        return self.provider

    def network_types(self) -> set[str]:
        return {"flat"}


ALL = {"identity", "compute", "placement", "network"}


def plan(target: Target, doc: Any = DOC, prune: bool = False) -> Any:
    return make_plan(target, doc, prune)  # type: ignore[arg-type]


def test_a_section_whose_service_the_cloud_lacks_refuses_the_plan() -> None:
    with pytest.raises(PlanRefused, match="b has no network service"):
        plan(Target(ALL - {"network"}))


def test_a_network_type_without_the_provider_extension_refuses_the_plan() -> None:
    with pytest.raises(PlanRefused, match="no provider networks extension"):
        plan(Target(ALL, provider=False))


def test_a_type_no_network_of_the_cloud_uses_is_a_note() -> None:
    made = plan(Target(ALL))
    assert made.problems == ()
    assert [n for n in made.notes if "type vxlan is in use on no network of b" in n]


def test_what_no_api_changes_refuses_the_plan() -> None:
    have, _ = objects_of(DOC)
    have["network"]["shared"]["network_type"] = "vlan"
    have["project"]["Default p1"]["parent"] = "other"
    with pytest.raises(PlanRefused) as refused:
        plan(Target(ALL, have))
    assert "update network shared: network_type vlan -> vxlan: network_type cannot change" in str(
        refused.value
    )
    assert "a project's parent cannot change" in str(refused.value)


def test_server_groups_are_notes_not_changes() -> None:
    doc = copy.deepcopy(DOC)
    group = {"project": "Default/p1", "name": "db", "policy": "anti-affinity", "rules": {}}
    doc["compute"]["server_groups"] = [group]
    have, _ = objects_of(DOC)
    made = plan(Target(ALL, have), doc)
    assert made.changes == ()
    assert made.notes == (
        "not applied: create server group Default/p1 db (made by the project's own users)",
    )
