from __future__ import annotations

from dataclasses import replace
from typing import Any

from ephyra.compute.budget import Budget, Fallback, OnTimeout, Settings
from ephyra.compute.drain import Drain, DrainResult, Events, HostRecord, most_constrained_first
from ephyra.compute.nova import Server
from ephyra.engine.control import Control
from tests.unit.compute.fake_nova import FakeCloud, Move

FAST = {"poll": 0.001, "migration_timeout": 2.0}  # a move that never ends halts, not hangs


class Recorder(Events):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def started(self, host: str, server: Server, how: str) -> None:
        self.lines.append(f"start {how} {server.id}")

    def finished(self, host: str, server: Server, how: str, outcome: str, detail: str) -> None:
        self.lines.append(f"{outcome} {server.id}")

    def message(self, text: str) -> None:
        self.lines.append(text)


def drain(
    cloud: FakeCloud, settings: Settings, record: dict[str, Any] | None = None
) -> tuple[DrainResult, Budget, dict[str, Any]]:
    data: dict[str, Any] = record if record is not None else {}
    budget = Budget(settings)
    groups = {s.id: s.groups for s in cloud.servers.values()}
    d = Drain(
        cloud,  # type: ignore[arg-type]
        cloud.service("h1"),
        settings,
        budget,
        Control(),
        HostRecord(lambda: data, lambda saved: None),
        Recorder(),
        groups,
    )
    return d.run(), budget, data


def test_budgets_hold_and_the_host_ends_empty() -> None:
    cloud = FakeCloud(["h1", "h2", "h3"], live_polls=3)
    for i in range(10):
        cloud.add(f"s{i}", "h1", project=f"p{i % 3}", groups=("g",) if i < 4 else ())
    settings = Settings(concurrency=4, per_host=4, max_per_project=2, max_per_group=1, **FAST)
    result, budget, record = drain(cloud, settings)
    assert result.moved == 10 and not result.left and not result.stuck
    assert cloud.servers_on("h1") == []
    assert budget.peak["group:g"] == 1
    assert max(v for k, v in budget.peak.items() if k.startswith("project:")) == 2
    assert budget.peak["total"] <= 4
    assert all(e["outcome"] == "moved" for e in record["servers"].values())


def test_shutoff_server_is_cold_migrated_and_confirmed() -> None:
    cloud = FakeCloud(["h1", "h2"])
    cloud.add("off", "h1", status="SHUTOFF")
    result, _, record = drain(cloud, Settings(**FAST))
    assert ("cold", "off") in cloud.calls and ("confirm", "off") in cloud.calls
    assert record["servers"]["off"]["outcome"] == "moved"
    assert result.moved == 1


def test_refused_live_migration_falls_back_to_stop_and_is_reported() -> None:
    cloud = FakeCloud(["h1", "h2"])
    cloud.add("a", "h1")
    cloud.refuse_live.add("a")
    result, _, record = drain(cloud, Settings(fallback=Fallback.STOP, **FAST))
    assert cloud.servers["a"].status == "SHUTOFF" and cloud.servers["a"].host == "h1"
    assert record["servers"]["a"]["stopped_by_run"] is True
    assert not result.stuck and "stopped" in next(iter(result.left.values()))


def test_skip_policy_leaves_the_server() -> None:
    cloud = FakeCloud(["h1", "h2"])
    cloud.add("off", "h1", status="SHUTOFF")
    result, _, _ = drain(cloud, Settings(fallback=Fallback.SKIP, **FAST))
    assert cloud.calls == [] and not result.stuck
    assert "fallback skip" in next(iter(result.left.values()))


def test_timeout_aborts_then_falls_back_to_cold_migration() -> None:
    cloud = FakeCloud(["h1", "h2"])
    cloud.add("slow", "h1")
    cloud.stuck.add("slow")
    result, _, record = drain(cloud, Settings(**{**FAST, "migration_timeout": 0.02}))
    assert [c for c, _ in cloud.calls] == ["live", "abort", "cold", "confirm"]
    assert record["servers"]["slow"]["outcome"] == "moved" and result.moved == 1


def test_timeout_force_completes_first_when_asked() -> None:
    cloud = FakeCloud(["h1", "h2"])
    cloud.add("slow", "h1")
    cloud.stuck.add("slow")
    settings = Settings(**{**FAST, "migration_timeout": 0.02}, on_timeout=OnTimeout.FORCE_COMPLETE)
    result, _, _ = drain(cloud, settings)
    assert [c for c, _ in cloud.calls] == ["live", "force"]
    assert result.moved == 1


def test_a_move_stuck_through_every_escalation_halts_and_never_hangs() -> None:
    cloud = FakeCloud(["h1", "h2"])
    cloud.add("a", "h1", status="SHUTOFF")  # cold from the start
    cloud.add("b", "h1", project="p")
    cloud.stuck.add("a")
    settings = Settings(**{**FAST, "migration_timeout": 0.02}, max_per_project=1)
    result, budget, _ = drain(cloud, settings)
    assert result.stuck
    assert "stuck" in result.left["a (a)"]
    # b shares a's project: the stuck move keeps the slot, so b is reported, not moved
    assert "budget is held by stuck" in result.left["b (b)"]
    assert budget.active() == 0


def test_resume_adopts_moves_under_way_before_starting_new_ones() -> None:
    cloud = FakeCloud(["h1", "h2"], live_polls=2)
    cloud.add("a", "h1")
    cloud.add("b", "h1")
    cloud.servers["a"] = replace(cloud.servers["a"], task_state="migrating")
    cloud.moves["a"] = Move("live", 2, "h2")
    result, budget, _ = drain(cloud, Settings(concurrency=1, per_host=1, **FAST))
    assert result.moved == 2
    assert budget.peak["total"] == 1  # a (adopted) and b never at once
    assert cloud.calls == [("live", "b")]


def test_a_move_counts_until_its_migration_record_is_final() -> None:
    # Nova shows the server ACTIVE on its new host before the migration record says
    # completed (and before it frees the source's allocation): the slot is kept until then.
    cloud = FakeCloud(["h1", "h2"], live_polls=1, record_lag=3)
    for i in range(4):
        cloud.add(f"s{i}", "h1")
    result, _, _ = drain(cloud, Settings(concurrency=1, per_host=1, **FAST))
    assert result.moved == 4
    assert cloud.moving_peak == 1


def test_the_longest_chain_of_budgeted_moves_starts_first() -> None:
    def server(sid: str, project: str, groups: tuple[str, ...] = ()) -> Server:
        return Server(sid, sid, project, "ACTIVE", None, "h1", 512, 1, 1, groups)

    order = most_constrained_first(
        [
            server("a", "small"),
            server("b", "big"),
            server("c", "big"),
            server("z1", "small", ("g",)),
            server("z2", "big", ("g",)),
        ]
    )
    assert [s.id for s in order] == ["z2", "z1", "b", "c", "a"]


def test_a_server_the_list_still_shows_after_it_left_is_not_moved_twice() -> None:
    cloud = FakeCloud(["h1", "h2"], live_polls=1, list_lag=5)
    for i in range(3):
        cloud.add(f"s{i}", "h1")
    result, _, _ = drain(cloud, Settings(**FAST))
    assert result.moved == 3
    assert sorted(cloud.calls) == [("live", "s0"), ("live", "s1"), ("live", "s2")]


def test_a_cold_migration_is_confirmed_once_though_nova_lags() -> None:
    cloud = FakeCloud(["h1", "h2"], confirm_lag=3)
    cloud.add("off", "h1", status="SHUTOFF")
    result, _, record = drain(cloud, Settings(**FAST))
    assert cloud.calls.count(("confirm", "off")) == 1
    assert record["servers"]["off"]["outcome"] == "moved" and result.moved == 1
