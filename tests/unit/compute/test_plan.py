"""Evacuation plans made from a fake cloud, compared with saved expected plans
(``tests/unit/compute/plans``, see ``tests/unit/saved_plans.py``), and the planner's
refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ephyra.compute.budget import Settings
from ephyra.compute.nova import Server, Service
from ephyra.compute.plan import Batching, make_plan
from ephyra.errors import PlanRefused, UsageError
from tests.unit.compute.fake_nova import FakeCloud, PlacementCloud
from tests.unit.saved_plans import SavedPlans, text_of


def _cloud(data: Any) -> PlacementCloud:
    computes: dict[str, Any] = data["computes"]
    compute = FakeCloud(hosts=list(computes), name=data["cloud"])
    for host, c in computes.items():
        up, forced = c.get("up", True), c.get("forced_down", False)
        compute.services[host] = Service(
            f"svc-{host}",
            host,
            c.get("enabled", True),
            up,
            forced,
            c.get("reason", ""),
            c.get("zone", ""),
        )
    for sid, s in data["servers"].items():
        compute.servers[sid] = Server(
            sid,
            s["name"],
            s["project"],
            s.get("status", "ACTIVE"),
            None,
            s["host"],
            s["ram"],
            s["vcpus"],
            s["disk"],
            tuple(s.get("groups", ())),
            extra_specs=s.get("extra_specs", {}),
            image=s.get("image", ""),
            tags=tuple(s.get("tags", ())),
            metadata=s.get("metadata", {}),
        )
    compute.images = data.get("images", {})
    compute.anti = frozenset(data.get("anti_affinity", ()))
    compute.aggregate = data.get("aggregates", {})
    return PlacementCloud(compute, {host: c["room"] for host, c in computes.items()})


def _made(data: Any) -> tuple[str, dict[str, Any]]:
    settings = Settings.from_meta({**Settings().to_meta(), **data.get("settings", {})})
    cloud: Any = _cloud(data)
    batching = data.get("batching", {})
    limits = tuple(batching.get("limits", {}).items())
    plan = make_plan(
        cloud,
        data["hosts"],
        settings,
        data.get("also_down", ()),
        Batching(batching.get("at_once"), limits),
    )
    return text_of(plan.tree()), plan.to_dict()


SAVED = SavedPlans(Path(__file__).parent / "plans", _made)


@pytest.mark.parametrize("case", SAVED.cases)
def test_plan_matches_the_saved_plan(case: str) -> None:
    (text, data), (saved_text, saved_data) = SAVED.made(case), SAVED.expected(case)
    assert text == saved_text
    assert data == saved_data


def test_there_are_saved_plans() -> None:
    assert SAVED.cases == ["batches", "fates", "live-and-fenced", "one-host-to-a-target"]


class Cloud:
    name = "fake"

    def __init__(self, *services: Service) -> None:
        self._services = list(services)

    def services(self) -> list[Service]:
        return self._services

    def group_index(self) -> dict[str, tuple[str, ...]]:
        return {}

    def servers_on(self, host: str, groups: Any = None) -> list[Any]:
        return []


def svc(host: str, *, up: bool = True, forced: bool = False, enabled: bool = True) -> Service:
    return Service(host, host, enabled, up, forced, "")


def test_a_host_down_but_not_fenced_is_refused_with_the_way_out() -> None:
    cloud = Cloud(svc("c1", up=False), svc("c2"))
    with pytest.raises(PlanRefused) as err:
        make_plan(cloud, ["c1"], Settings())  # type: ignore[arg-type]
    assert "down but not forced down" in str(err.value)
    assert "openstack compute service set --down c1 nova-compute" in str(err.value)


def test_every_problem_is_listed_at_once() -> None:
    cloud = Cloud(svc("c1"), svc("c2", enabled=False))
    with pytest.raises(PlanRefused) as err:
        make_plan(cloud, ["c1", "nope"], Settings(target="c2"), ["gone"])  # type: ignore[arg-type]
    text = str(err.value)
    assert "nope: no nova-compute service" in text
    assert "gone: no nova-compute service" in text
    assert "--target c2: its nova-compute is disabled or down" in text


def test_no_host_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        make_plan(Cloud(), [], Settings())  # type: ignore[arg-type]
