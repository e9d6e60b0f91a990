"""Preflight: the checks' verdicts, a project's own upgrade check read from its exit code,
and a run that a blocking verdict pauses before any host is touched."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from ephyra.engine.journal import Journal
from ephyra.engine.service import RunService
from ephyra.engine.states import RunState
from ephyra.progress import PlainObserver
from ephyra.strategies import base
from ephyra.upgrade import preflight, runner
from ephyra.upgrade.checks import UpgradeStatus
from ephyra.upgrade.kind import UpgradeKind, plan_upgrade
from ephyra.upgrade.preflight import Check, Context, Level, Verdict
from ephyra.upgrade.spec import parse
from tests.unit.upgrade import upgrade_fakes
from tests.unit.upgrade.upgrade_fakes import WORLD

TABLE = """\
+-------------------------------------------+
| Upgrade Check Results                     |
+-------------------------------------------+
| Check: Cells v2                           |
| Result: Success                           |
| Details: None                             |
+-------------------------------------------+
| Check: Older than N-1 computes            |
| Result: Failure                           |
| Details: Current Nova version does not    |
|   support computes older than Flamingo    |
+-------------------------------------------+
"""


@pytest.fixture(autouse=True)
def fake_strategies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "build", upgrade_fakes.build)
    monkeypatch.setattr(base, "build", upgrade_fakes.build)
    WORLD.__init__()  # type: ignore[misc]


def _spec(status: str = "", **extra: Any) -> Any:
    return parse(
        {
            "release": "2.0",
            "strategies": {"default": {"type": "fake"}},
            "roles": {"compute": {"max_at_once": 2, "drain": False}},
            "gates": {"services_up": False},
            "project_steps": {"compute": {"sync": ["true"], "expand_only": True, "status": status}},
            **extra,
        }
    )


def _context(spec: Any) -> Context:
    plan = plan_upgrade(spec, [], None, inventory=upgrade_fakes.cloud(computes=1)).plan
    return Context(spec, plan, None)


@pytest.mark.parametrize(
    ("code", "level"), [(0, Level.OK), (1, Level.WARN), (2, Level.BLOCK), (255, Level.BLOCK)]
)
def test_a_projects_upgrade_check_is_read_from_its_exit_code(
    tmp_path: Path, code: int, level: Level
) -> None:
    (tmp_path / "table").write_text(TABLE)
    spec = _spec(status=f"cat {tmp_path}/table; echo {{host}}; exit {code}")
    [verdict] = UpgradeStatus().run(_context(spec))
    assert (verdict.level, verdict.subject) == (level, "compute on ctl-1")
    if level is Level.OK:
        assert verdict.message == "passed"
    else:
        assert verdict.message.startswith(f"exited with {code}: Check: Older than N-1 computes")
        assert "Result: Failure" in verdict.message and "Cells v2" not in verdict.message


class Blocks(Check):
    name = "blocks"
    needs_cloud = False
    fixed = False

    def run(self, ctx: Context) -> list[Verdict]:
        if Blocks.fixed:
            return [Verdict(self.name, Level.OK, "thing", "fine")]
        return [Verdict(self.name, Level.BLOCK, "thing", "is broken", "fix it")]


class Crashes(Check):
    name = "crashes"
    needs_cloud = False

    def run(self, ctx: Context) -> list[Verdict]:
        raise KeyError("/etc/secret")


class NeedsCloud(Check):
    name = "cloudy"

    def run(self, ctx: Context) -> list[Verdict]:
        raise AssertionError("not run without a cloud")


def test_a_blocking_verdict_pauses_the_run_before_any_host_and_resume_checks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preflight, "checks", lambda skip=(): [Blocks(), NeedsCloud()])
    Blocks.fixed = False
    service = RunService(UpgradeKind(), Journal(f"sqlite:///{tmp_path / 'j.db'}"), "")
    out = io.StringIO()
    found = plan_upgrade(_spec(), [], None, inventory=upgrade_fakes.cloud(computes=1))
    run = service.start(found, PlainObserver(out))
    assert run.state is RunState.PAUSED
    assert run.meta["reason"] == "preflight: blocks: thing: is broken (fix it)"
    assert WORLD.calls == []
    status = service.status(run.id).to_dict()
    assert [v["level"] for v in status["preflight"]] == ["block"]
    Blocks.fixed = True
    run = service.resume(None, PlainObserver(out))
    assert run.state is RunState.SUCCEEDED
    assert [v["level"] for v in service.status(run.id).to_dict()["preflight"]] == ["ok"]


def test_a_check_that_fails_to_run_blocks_without_its_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(preflight, "checks", lambda skip=(): [Crashes()])
    [verdict] = preflight.run(_context(_spec()))
    assert verdict == Verdict("crashes", Level.BLOCK, "the check", "did not run: KeyError")


def test_skipped_checks_do_not_run() -> None:
    names = [c.name for c in preflight.checks(skip=("capacity", "placement"))]
    assert names == ["nova-services", "upgrade-status"]
