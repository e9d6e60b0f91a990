"""Forklift plans made from two control planes in memory, compared with saved expected plans
(``tests/unit/forklift/plans``, see ``tests/unit/saved_plans.py``)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ephyra.clouds import INTERFACES
from ephyra.errors import PlanRefused
from ephyra.forklift.plan import TargetRules, make_plan
from ephyra.forklift.secrets import NoCredentials, load_credentials
from ephyra.forklift.settings import Settings
from tests.unit.forklift.test_model import node, port
from tests.unit.saved_plans import SavedPlans, text_of

PLANS = Path(__file__).parent / "plans"


@dataclass
class Plane:
    """What planning reads of a control plane: its nodes and their ports."""

    name: str
    enrolled: list[SimpleNamespace] = field(default_factory=list)
    held: list[SimpleNamespace] = field(default_factory=list)

    def check(self) -> None:
        pass

    def nodes(self) -> list[SimpleNamespace]:
        return list(self.enrolled)

    def ports(self) -> list[SimpleNamespace]:
        return list(self.held)

    def conductor_groups(self) -> set[str]:
        return {""}

    def enabled_interfaces(self) -> dict[str, dict[str, set[str]]]:
        every = {interface: {"fake"} for interface in INTERFACES}
        return {driver: every for driver in ("ipmi", "redfish", "snmp", "fake-hardware")}

    connection = SimpleNamespace(current_project_id=None)  # a system-scoped login


def _plane(name: str, nodes: dict[str, Any]) -> Plane:
    plane = Plane(name)
    for label, n in nodes.items():
        addresses = n.pop("ports")
        plane.enrolled.append(node(name=label, instance_info={}, **n))
        for address in addresses:
            plane.held.append(port(address))
            plane.held[-1].node_id = n["id"]
    return plane


def _made(data: Any) -> tuple[str, dict[str, Any]]:
    source, target = _plane(data["from"], data["nodes"]), _plane(data["to"], data["target"])
    with contextlib.chdir(PLANS):  # a credentials file named as given, next to the input
        credentials = load_credentials(data["credentials"])
    planes: Any = (source, target)
    plan = make_plan(*planes, Settings(**data["settings"]), credentials, data.get("wanted"))
    return text_of(plan.tree()), plan.to_dict()


SAVED = SavedPlans(PLANS, _made)


@pytest.mark.parametrize("case", SAVED.cases)
def test_plan_matches_the_saved_plan(case: str) -> None:
    (text, data), (saved_text, saved_data) = SAVED.made(case), SAVED.expected(case)
    assert text == saved_text
    assert data == saved_data


def test_there_are_saved_plans() -> None:
    assert SAVED.cases == ["racks-with-credentials-file", "two-named-from-the-source"]


def test_what_the_target_does_not_accept_of_a_node_is_named_with_what_to_do() -> None:
    rules = TargetRules(
        "cp2",
        frozenset({"", "rack1"}),
        {"ipmi": {i: {"fake"} for i in INTERFACES} | {"power_interface": {"ipmitool"}}},
        "p-ops",
    )
    fine = node(driver="ipmi", power_interface="ipmitool", conductor_group="rack1")
    assert rules.problems(fine, "n1") == []
    odd = node(driver="ipmi", conductor_group="rack9", owner=None)
    assert rules.problems(odd, "n1") == [
        "n1: no conductor of group 'rack9' in cp2: start one there, or move the node "
        "to a group it has",
        "n1: cp2 does not enable power_interface 'fake' for ipmi: enable it there "
        "(enabled_power_interfaces)",
        "n1: has no owner; cp2 would make the forklift's project (p-ops) its owner and hide "
        "it from other projects' views: give it an owner first, or log in to cp2 with a "
        "system scope",
    ]
    assert rules.problems(node(driver="redfish"), "n2") == [
        "n2: cp2 does not enable hardware type 'redfish'"
    ]


@pytest.mark.parametrize(
    ("power", "said"),
    [
        ({"fault": "power failure"}, "n1: Ironic reports a power failure in cp1: fix its BMC"),
        ({"target_power_state": "power off"}, "n1: a power change to 'power off' is under way"),
    ],
)
def test_a_node_whose_bmc_is_not_in_sync_is_refused(power: dict[str, Any], said: str) -> None:
    source = _plane("cp1", {"n1": {"id": "u-1", "ports": [], **power}})
    planes: Any = (source, _plane("cp2", {}))
    with pytest.raises(PlanRefused) as refused:
        make_plan(*planes, Settings(), NoCredentials())
    assert said in str(refused.value)
