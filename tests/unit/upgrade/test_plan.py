"""Plans compared with saved expected plans (``tests/unit/upgrade/plans``, see
``tests/unit/saved_plans.py``), and the planner's refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ephyra.errors import UsageError
from ephyra.inventory.model import Inventory, Service, inventory, make_host
from ephyra.upgrade.plan import Plan, make_plan
from ephyra.upgrade.spec import parse
from tests.unit.saved_plans import SavedPlans


def _inventory(hosts: dict[str, Any]) -> Inventory:
    return inventory(
        make_host(
            name,
            roles=h.get("roles", []),
            servers=h.get("servers", 0),
            volumes=h.get("volumes", 0),
            facts=h.get("facts", {}),
            services=[Service(*s.split("/")) for s in h.get("services", [])],
        )
        for name, h in hosts.items()
    )


def _plan(data: Any) -> Plan:
    return make_plan(_inventory(data["inventory"]), parse(data["spec"]))


def _made(data: Any) -> tuple[str, dict[str, Any]]:
    plan = _plan(data)
    return plan.render() + "\n", plan.to_dict()


SAVED = SavedPlans(Path(__file__).parent / "plans", _made)


@pytest.mark.parametrize("case", SAVED.cases)
def test_plan_matches_the_saved_plan(case: str) -> None:
    (text, data), (saved_text, saved_data) = SAVED.made(case), SAVED.expected(case)
    assert text == saved_text
    assert data == saved_data


@pytest.mark.parametrize("case", SAVED.cases)
def test_a_plan_reads_back_from_its_data(case: str) -> None:
    plan = _plan(SAVED.input(case))
    assert Plan.from_dict(plan.to_dict()) == plan


def test_there_are_saved_plans() -> None:
    assert SAVED.cases == [
        "aio-and-racks",
        "node-by-node-frozen",
        "release-project-steps",
        "topology",
    ]


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
        ({"restart": "systemctl restart {servce}"}, r"spec.restart: .*placeholders"),
        ({"services": {"nova-api": {"restart": "{x}"}}}, r"services.nova-api.restart: "),
        ({"project_steps": {"compute": {"pin": {"options": {"a": "b"}}}}}, r"pin.file: required"),
        ({"project_steps": {"compute": {"pin": {"file": "f"}}}}, r"pin.options: required"),
        (
            {"project_steps": {"compute": {"pin": {"file": "f", "options": {"a b": "c"}}}}},
            r"'a b' is not an ini option name",
        ),
        (
            {"project_steps": {"compute": {"pin": {"file": "f", "options": {"a": "c\nd"}}}}},
            r"pin.options.a: 'c\\nd' is not a plain value",
        ),
        ({"project_steps": {"compute": {"expand_only": True}}}, "expand_only: says what the sync"),
        ({"project_steps": {"compute": {"migrate_again": 0}}}, "migrate_again: 0 is success"),
        ({"project_steps": {"compute": {"sync": ["{hots}"]}}}, r"compute.sync\[0\]: "),
        ({"project_steps": {"compute": {"contract": "x"}}}, "unknown key"),
        ({"versions": {"nope": "1.0"}}, r"spec.versions.nope: no strategy 'nope'"),
        ({"versions": {"default": "1.0;rm"}}, r"spec.versions.default '1.0;rm' refused"),
        ({"availability": {"interval": 0.01}}, r"availability.interval: at least 0.1"),
        ({"preflight": {"skip": "capacity", "only": []}}, r"spec.preflight: unknown key"),
        ({"roles": {"compute": {"apply": "rolling"}}}, r"compute.apply: one of serial, parallel"),
        (
            {"roles": {"compute": {"apply": "serial", "max_at_once": 3}}},
            r"spec.roles.compute: apply serial and max_at_once 3 disagree",
        ),
        ({"roles": {"compute": {"apply": "parallel"}}}, r"apply parallel and max_at_once None"),
        ({"roles": {"compute": {"per_domain": {"rack": 1}}}}, r"per_domain: unknown key\(s\) rack"),
        ({"roles": {"compute": {"per_domain": {"zone": 0}}}}, r"per_domain.zone: at least 1"),
        (
            {"failure_domains": {"a": ["s-1"], "b": ["s-1"]}},
            r"failure_domains.b: s-1 is already in failure domain a",
        ),
    ],
)
def test_bad_specifications_name_their_key(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _spec(**extra)


def test_soak_without_canary_is_refused() -> None:
    with pytest.raises(UsageError, match="a soak time needs a canary"):
        make_plan(_inventory(SMALL), _spec(roles={"compute": {"soak": 30}}))


def _strategies(**strategies: dict[str, Any]) -> Any:
    return parse(
        {
            "release": "2",
            "strategies": strategies,
            "strategy": "pkg",
            "services": {"neutron-l3-agent": {"strategy": "os"}},
        }
    )


def test_a_strategy_without_downgrade_is_named_in_the_plan_before_it_starts() -> None:
    spec = _strategies(
        pkg={"type": "package", "packages": ["nova-common"]},
        os={"type": "command", "upgrade": "true"},  # no downgrade command
    )
    plan = make_plan(_inventory(SMALL), spec)
    assert plan.no_downgrade == ("os",)
    assert plan.to_dict()["no_downgrade"] == ["os"]
    assert plan.render().splitlines()[-1] == (
        "rollback: not possible for units of strategy os (it has no downgrade): "
        "a rollback leaves what it did on n1"
    )
    assert Plan.from_dict(plan.to_dict()) == plan


def test_strategies_that_downgrade_add_no_note() -> None:
    spec = _strategies(
        pkg={"type": "package", "packages": ["nova-common"]},
        os={"type": "command", "upgrade": "true", "downgrade": "true"},
    )
    plan = make_plan(_inventory(SMALL), spec)
    assert plan.no_downgrade == ()
    assert "rollback:" not in plan.render()


def test_a_strategy_no_unit_calls_is_not_named() -> None:
    spec = _strategies(
        pkg={"type": "package", "packages": ["nova-common"]},
        os={"type": "command", "upgrade": "true"},
        spare={"type": "grenade", "projects": "/opt/grenade/projects"},
    )
    assert make_plan(_inventory(SMALL), spec).no_downgrade == ("os",)


def test_a_plan_kept_by_an_older_run_reads_with_nothing_named() -> None:
    spec = _strategies(pkg={"type": "noop"}, os={"type": "command", "upgrade": "true"})
    data = make_plan(_inventory(SMALL), spec).to_dict()
    del data["no_downgrade"]
    assert Plan.from_dict(data).no_downgrade == ()


def test_a_frozen_host_keeps_the_pins_and_the_migrations_wait_for_it() -> None:
    hosts = {
        "ctl-1": {"roles": ["controller"], "services": ["nova-api/compute"]},
        "cmp-1": {"roles": ["compute"], "services": ["nova-compute/compute"]},
        "sto-1": {"roles": ["storage"], "services": ["nova-compute/compute"]},
    }
    steps = {"pin": {"file": "/etc/nova/nova.conf", "options": {"compute": "auto"}}}
    steps |= {"sync": ["nova-manage db sync"], "migrate": "nova-manage db online_data_migrations"}
    plan = make_plan(
        _inventory(hosts),
        _spec(
            strategies={"default": {"type": "command", "upgrade": "true"}},
            roles={"storage": {"max_at_once": 0}},
            project_steps={"compute": steps},
        ),
    )
    names = [s.name for s in plan.stages]
    assert names[:2] == ["pin: compute", "database: compute"]
    assert "unpin: compute" not in names and "migrate: compute" not in names
    pinned = {u.host for u in plan.stages[0].units()}
    assert pinned == {"ctl-1", "cmp-1"}
    assert plan.frozen == ["sto-1"]
