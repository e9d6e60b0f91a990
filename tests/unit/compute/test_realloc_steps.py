"""The steps of a host reallocation, in order and again after any of them (a resumed run
runs a step again), against two clouds in memory and a hand-over that moves the host's
registration: the logic only; the proof against two real Novas is in
tests/functional/test_host_reallocation.py."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from ephyra.compute.drain import DrainResult, HostRecord
from ephyra.compute.nova import Service
from ephyra.compute.realloc_steps import FORWARD, ROLLBACK, ReallocContext
from ephyra.engine.control import Control
from ephyra.errors import StepFailed

HOST = "cmp-1"


@dataclass
class Cloud:
    name: str
    services: dict[str, Service] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)  # host -> uuid
    traits_of: dict[str, list[str]] = field(default_factory=dict)
    consumers: dict[str, list[str]] = field(default_factory=dict)
    aggregates_: list[dict[str, Any]] = field(default_factory=list)
    mapped: set[str] = field(default_factory=set)  # hosts a cell maps (discover)

    def register(self, host: str, enabled: bool = True) -> None:
        self.services[host] = Service(f"{self.name}-{host}", host, enabled, True, False, "")
        self.providers[host] = f"rp-{host}"
        self.mapped.discard(host)
        self.traits_of.setdefault(f"rp-{host}", ["HW_CPU_X86_AVX"])

    def find_service(self, host: str) -> Service | None:
        return self.services.get(host)

    def service(self, host: str) -> Service:
        return self.services[host]

    def force_down(self, svc: Service, down: bool = True) -> None:
        self.services[svc.host] = replace(svc, forced_down=down, up=not down)

    def delete_service(self, svc: Service) -> None:
        self.services.pop(svc.host, None)
        self.providers.pop(svc.host, None)
        self.mapped.discard(svc.host)

    def disable(self, svc: Service, reason: str) -> None:
        self.services[svc.host] = replace(svc, enabled=False, reason=reason)

    def enable(self, svc: Service) -> None:
        self.services[svc.host] = replace(svc, enabled=True, reason="")

    def hypervisors(self) -> dict[str, str]:
        return {host: uuid for host, uuid in self.providers.items() if host in self.mapped}

    def providers_named(self, name: str) -> list[dict[str, Any]]:
        return [{"uuid": self.providers[name]}] if name in self.providers else []

    def provider(self, uuid: str) -> dict[str, Any] | None:
        return {"uuid": uuid} if uuid in self.providers.values() else None

    def delete_provider(self, uuid: str) -> None:
        raise AssertionError("Nova deletes the provider with the service")

    def consumers_on(self, provider: str) -> list[str]:
        return self.consumers.get(provider, [])

    def inventories(self, provider: str) -> dict[str, dict[str, Any]]:
        return {rc: {"total": 8} for rc in ("VCPU", "MEMORY_MB", "DISK_GB")}

    def traits(self, provider: str) -> tuple[list[str], int]:
        return sorted(self.traits_of.get(provider, [])), 1

    def add_traits(self, provider: str, wanted: list[str]) -> list[str]:
        have = self.traits_of.setdefault(provider, [])
        added = sorted(set(wanted) - set(have))
        have.extend(added)
        return added

    def aggregates(self) -> list[dict[str, Any]]:
        return self.aggregates_

    def add_to_aggregate(self, aggregate: Any, host: str) -> None:
        next(a for a in self.aggregates_ if a["id"] == aggregate)["hosts"].append(host)

    def servers_on(self, host: str, groups: Any = None) -> list[Any]:
        return []


@dataclass
class Handover:
    clouds: dict[str, Cloud]
    calls: list[str] = field(default_factory=list)

    def release(self, host: str, cloud: str, output: Any) -> None:
        self.calls.append(f"release {cloud}")

    def adopt(self, host: str, cloud: str, output: Any) -> None:
        self.calls.append(f"adopt {cloud}")
        if host not in self.clouds[cloud].services:
            self.clouds[cloud].register(host)

    def discover(self, host: str, cloud: str, output: Any) -> bool:
        self.calls.append(f"discover {cloud}")
        self.clouds[cloud].mapped.add(host)
        return True


def setup(enabled: bool = True) -> tuple[Cloud, Cloud, Handover, ReallocContext]:
    a, b = Cloud("a"), Cloud("b")
    a.register(HOST)
    a.mapped.add(HOST)
    if not enabled:
        a.disable(a.services[HOST], "broken fan")
    a.traits_of[f"rp-{HOST}"] = ["CUSTOM_GOLD", "HW_CPU_X86_AVX"]
    a.aggregates_ = [{"id": 1, "name": "fast", "hosts": [HOST]}]
    b.aggregates_ = [{"id": 7, "name": "fast", "hosts": []}]
    handover = Handover({"a": a, "b": b})
    data: dict[str, Any] = {}
    ctx = ReallocContext(
        run_id="r1",
        cloud=a,  # type: ignore[arg-type]
        host=HOST,
        record=HostRecord(lambda: dict(data), data.update),
        control=Control(),
        drain=lambda: DrainResult(HOST, 0, {}, False, 0.0),
        kind="host-reallocation",
        revert=False,
        target=b,  # type: ignore[arg-type]
        handover=handover,  # type: ignore[arg-type]
        register_timeout=1.0,
        drain_back=lambda: DrainResult(HOST, 0, {}, False, 0.0),
    )
    return a, b, handover, ctx


def run(ctx: ReallocContext, steps: Any, again: int | None = None) -> None:
    for index, step in enumerate(steps):
        step(ctx).apply()
        if index == again:
            step(ctx).apply()  # a resumed run runs it again


@pytest.mark.parametrize("again", [None, *range(len(FORWARD))])
def test_forward_hands_the_host_over_and_a_step_run_twice_changes_nothing(
    again: int | None,
) -> None:
    a, b, _, ctx = setup()
    run(ctx, FORWARD, again)
    assert HOST not in a.services and HOST not in a.providers
    assert b.services[HOST].enabled
    assert "CUSTOM_GOLD" in b.traits_of[f"rp-{HOST}"]
    assert b.aggregates_[0]["hosts"] == [HOST]


@pytest.mark.parametrize("stop", range(len(FORWARD) + 1))
def test_rollback_from_any_point_brings_the_host_back_as_it_was(stop: int) -> None:
    a, b, handover, ctx = setup()
    run(ctx, FORWARD[:stop])
    run(ctx, ROLLBACK)
    assert a.services[HOST].enabled and HOST in a.providers
    assert HOST not in b.services
    assert "CUSTOM_GOLD" in a.traits_of[f"rp-{HOST}"]
    assert a.aggregates_[0]["hosts"] == [HOST]
    if stop <= FORWARD.index(next(s for s in FORWARD if s.title == "release")):
        assert handover.calls == []  # it never left: nothing handed over either way


def test_a_host_disabled_by_someone_else_stays_disabled_wherever_it_goes() -> None:
    a, b, _, ctx = setup(enabled=False)
    run(ctx, FORWARD)
    assert (b.services[HOST].enabled, b.services[HOST].reason) == (False, "broken fan")
    run(ctx, ROLLBACK)
    assert (a.services[HOST].enabled, a.services[HOST].reason) == (False, "broken fan")


def test_allocations_left_on_the_provider_stop_the_removal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ephyra.compute.realloc_steps.SETTLE_S", 2.0)
    a, _, _, ctx = setup()
    a.consumers[f"rp-{HOST}"] = ["c0ffee"]
    with pytest.raises(StepFailed, match=r"still holds allocations .* c0ffee"):
        run(ctx, FORWARD)
    assert HOST in a.services  # not removed


def test_a_host_that_never_registers_fails_after_the_timeout() -> None:
    _, _, handover, ctx = setup()
    handover.adopt = lambda host, cloud, output: None  # type: ignore[method-assign]
    with pytest.raises(StepFailed, match="not registered and up in b after 1s"):
        run(ctx, FORWARD)
