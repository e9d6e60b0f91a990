"""Plans compared with saved expected plans (``tests/unit/upgrade/plans``), and the planner's
refusals. ``EPHYRA_WRITE_PLANS=1`` rewrites the expected files after a deliberate change."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from ephyra.errors import UsageError
from ephyra.inventory.model import Inventory, Service, inventory, make_host
from ephyra.upgrade.plan import Plan, make_plan
from ephyra.upgrade.spec import parse

PLANS = Path(__file__).parent / "plans"
CASES = sorted(p.name.removesuffix(".input.yaml") for p in PLANS.glob("*.input.yaml"))


def _inventory(hosts: dict[str, Any]) -> Inventory:
    return inventory(
        make_host(
            name,
            roles=h.get("roles", []),
            servers=h.get("servers", 0),
            services=[Service(*s.split("/")) for s in h.get("services", [])],
        )
        for name, h in hosts.items()
    )


def _plan(case: str) -> Plan:
    data = yaml.safe_load((PLANS / f"{case}.input.yaml").read_text())
    return make_plan(_inventory(data["inventory"]), parse(data["spec"]))


@pytest.mark.parametrize("case", CASES)
def test_plan_matches_the_saved_plan(case: str) -> None:
    plan = _plan(case)
    tree, data = PLANS / f"{case}.txt", PLANS / f"{case}.yaml"
    if os.environ.get("EPHYRA_WRITE_PLANS"):
        tree.write_text(plan.render() + "\n")
        data.write_text(yaml.safe_dump(plan.to_dict(), sort_keys=False))
    assert plan.render() + "\n" == tree.read_text()
    assert plan.to_dict() == yaml.safe_load(data.read_text())
    assert Plan.from_dict(plan.to_dict()) == plan


def test_there_are_saved_plans() -> None:
    assert len(CASES) >= 2


def _spec(**extra: Any) -> Any:
    return parse({"release": "2", "strategies": {"default": {"type": "command"}}, **extra})


SMALL = {
    "c1": {"roles": ["controller"], "services": ["nova-api/compute"]},
    "h1": {"roles": ["compute"], "services": ["nova-compute/compute"]},
    "n1": {"roles": ["network"], "services": ["neutron-l3-agent/network"]},
}


def test_roles_waiting_for_each_other_are_refused() -> None:
    spec = _spec(roles={"compute": {"after": ["network"]}, "network": {"after": ["compute"]}})
    with pytest.raises(UsageError, match="roles wait for each other"):
        make_plan(_inventory(SMALL), spec)


def test_a_canary_outside_its_role_is_refused() -> None:
    with pytest.raises(UsageError, match=r"roles\.compute\.canary: 'n1' is not a host of role"):
        make_plan(_inventory(SMALL), _spec(roles={"compute": {"canary": "n1"}}))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"strategy": "nope"}, "spec.strategy: no strategy 'nope'"),
        ({"order": "random"}, "spec.order: 'service' or 'node'"),
        ({"roles": {"compute": {"max_at_once": -1}}}, "max_at_once: must not be negative"),
        ({"roles": {"compute": {"speed": 3}}}, "unknown key"),
        ({"gates": {"checks": [{"name": "x"}]}}, r"checks\[0\].command: required"),
    ],
)
def test_bad_specifications_name_their_key(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _spec(**extra)


def test_soak_without_canary_is_refused() -> None:
    with pytest.raises(UsageError, match="a soak time needs a canary"):
        make_plan(_inventory(SMALL), _spec(roles={"compute": {"soak": 30}}))
