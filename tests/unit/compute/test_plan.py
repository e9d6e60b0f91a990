from __future__ import annotations

from typing import Any

import pytest

from ephyra.compute.budget import Settings
from ephyra.compute.nova import Service
from ephyra.compute.plan import make_plan
from ephyra.errors import PlanRefused, UsageError


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
