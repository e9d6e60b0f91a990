from __future__ import annotations

import pytest

from ephyra.compute.budget import Budget, Fallback, OnTimeout, Settings
from ephyra.compute.nova import Server
from ephyra.errors import UsageError


def server(sid: str, project: str = "p", groups: tuple[str, ...] = ()) -> Server:
    return Server(sid, sid, project, "ACTIVE", None, "h1", 512, 1, 1, groups)


def test_total_and_per_host_limits() -> None:
    budget = Budget(Settings(concurrency=3, per_host=2, max_per_group=None))
    assert budget.take("h1", server("a"))
    assert budget.take("h1", server("b"))
    assert budget.blocker("h1", server("c")) == "2 per host on h1"
    assert not budget.take("h1", server("c"))
    assert budget.take("h2", server("d"))
    assert budget.blocker("h3", server("e")) == "3 migrations at once"
    budget.give_back("a")
    assert budget.take("h1", server("c"))
    assert budget.peak["total"] == 3 and budget.peak["host:h1"] == 2


def test_disruption_budgets_per_project_and_group() -> None:
    budget = Budget(Settings(concurrency=10, per_host=10, max_per_project=2, max_per_group=1))
    assert budget.take("h1", server("a", "p1", ("g",)))
    assert not budget.take("h1", server("b", "p2", ("g",)))  # same group
    assert budget.take("h1", server("c", "p1"))
    assert not budget.take("h1", server("d", "p1"))  # third of p1
    assert budget.blocker("h1", server("d", "p1")) == "2 per project in p1"
    assert budget.take("h1", server("e", "p2"))


def test_forced_take_counts_moves_already_under_way() -> None:
    budget = Budget(Settings(concurrency=1, per_host=1))
    assert budget.take("h1", server("a"))
    assert budget.take("h1", server("b"), force=True)  # adopted after a crash
    assert budget.active() == 2
    assert not budget.take("h1", server("c"))
    budget.stuck("b")
    assert budget.active() == 1
    budget.give_back("b")
    assert budget.active() == 1


def test_settings_round_trip_and_validation() -> None:
    settings = Settings(fallback=Fallback.STOP, on_timeout=OnTimeout.FORCE_COMPLETE, target="x")
    assert Settings.from_meta(settings.to_meta()) == settings
    with pytest.raises(UsageError):
        Settings(concurrency=0)
    with pytest.raises(UsageError):
        Settings(max_per_project=0)
    with pytest.raises(UsageError):
        Settings(migration_timeout=0)
