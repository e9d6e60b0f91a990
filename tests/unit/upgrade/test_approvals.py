"""Stages that wait for an approval and a run that goes one stage at a time: the plan's
marks, the runner's hold, approve and step (with an in-memory strategy and no cloud);
through the API and against real Nova in tests/functional/test_upgrade_approvals.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ephyra.engine.states import RunState
from ephyra.errors import IllegalTransition, LockHeld, UsageError
from ephyra.progress import PlainObserver
from ephyra.upgrade import approvals
from ephyra.upgrade.kind import UpgradeKind
from ephyra.upgrade.plan import Plan, make_plan
from tests.unit.upgrade import upgrade_fakes
from tests.unit.upgrade.test_runner import Env, _spec
from tests.unit.upgrade.upgrade_fakes import WORLD, World

pytestmark = pytest.mark.usefixtures("fake_world")


def _plan(**extra: Any) -> Plan:
    return make_plan(upgrade_fakes.cloud(computes=2), _spec(**extra))


def _upgraded() -> list[str]:
    """The first service of each call of the strategy, in order."""
    return [services[0] for _, _, services, _ in WORLD.calls]


def test_the_plan_marks_the_stages_named_by_pattern_or_by_role() -> None:
    plan = _plan(
        approvals=["control plane: nova-*"],
        roles={"compute": {"max_at_once": 2, "approval": True}},
    )
    held = [s.name for s in plan.stages if s.approval]
    assert held == [
        "control plane: nova-conductor",
        "control plane: nova-scheduler",
        "control plane: nova-api",
        "data plane: compute",
    ]
    text = plan.render()
    assert "├── waits for approval (ephyra upgrade approve RUN)" in text
    kept = plan.to_dict()
    assert [s.get("approval", False) for s in kept["stages"]] == [s.approval for s in plan.stages]
    assert Plan.from_dict(kept) == plan  # the run keeps it so


def test_a_pattern_that_names_no_stage_is_refused() -> None:
    with pytest.raises(UsageError, match="approvals: 'data plane: comptue' names no stage"):
        _plan(approvals=["data plane: comptue"])
    with pytest.raises(UsageError, match=r"roles.compute: unknown key\(s\) aproval"):
        _plan(roles={"compute": {"aproval": True}})


def test_the_run_waits_before_the_stage_until_approved_and_the_approver_is_kept(
    tmp_path: Path, fake_world: World
) -> None:
    env = Env(tmp_path)
    run = env.start(_spec(approvals=["data plane: compute"]), computes=2)
    assert run.state is RunState.PAUSED
    assert run.meta["reason"] == (
        f"stage data plane: compute waits for approval (ephyra upgrade approve {run.short})"
    )
    assert "nova-compute" not in _upgraded() and "nova-api" in _upgraded()
    status = env.service.status(run.id).to_dict()
    assert status["approvals"] == [
        {"stage": "data plane: compute", "by": "", "at": 0.0, "source": ""}
    ]
    assert "approval: data plane: compute: not approved yet" in UpgradeKind().view(status).lines

    run = env.resume()  # a resume without an approval waits again
    assert run.state is RunState.PAUSED and "waits for approval" in run.meta["reason"]
    assert "nova-compute" not in _upgraded()

    done = approvals.approve(env.service, None, None, "ada", "cli")
    assert done.message == "stage data plane: compute approved by ada"
    assert env.resume().state is RunState.SUCCEEDED
    assert _upgraded().count("nova-compute") == 2
    (held,) = env.service.status(run.id).to_dict()["approvals"]
    assert (held["by"], held["source"]) == ("ada", "cli") and held["at"] > 0


def test_approve_refuses_what_waits_for_no_approval(tmp_path: Path, fake_world: World) -> None:
    env = Env(tmp_path)
    run = env.start(_spec(approvals=["data plane: compute"]), computes=1)
    with pytest.raises(UsageError, match=r"stage control plane: keystone of run .* waits for no"):
        approvals.approve(env.service, run.id, "control plane: keystone", "ada", "cli")
    with pytest.raises(UsageError, match="has no stage 'data plane: storage'"):
        approvals.approve(env.service, run.id, "data plane: storage", "ada", "cli")
    approvals.approve(env.service, run.id, "data plane: compute", "ada", "cli")
    again = approvals.approve(env.service, run.id, "data plane: compute", "bob", "cli")
    assert again.message == "stage data plane: compute was approved already, by ada"
    with pytest.raises(IllegalTransition, match="waits for no approval"):
        approvals.approve(env.service, run.id, None, "bob", "cli")


def test_approve_is_refused_while_a_process_drives_the_run(
    tmp_path: Path, fake_world: World
) -> None:
    env = Env(tmp_path)
    run = env.start(_spec(approvals=["data plane: compute"]), computes=1)
    with env.service.holding(env.service.locks(run)), pytest.raises(LockHeld):
        approvals.approve(env.service, run.id, None, "ada", "cli")


def test_step_runs_the_next_stage_alone_then_pauses(tmp_path: Path, fake_world: World) -> None:
    env = Env(tmp_path)
    run = env.start(_spec(approvals=["control plane: keystone"]), computes=1)
    assert run.state is RunState.PAUSED and _upgraded() == []

    said = approvals.step(env.service, run.id)
    assert said.message == f"run {run.short}: stage control plane: keystone, then it pauses"
    run = env.resume()  # the stage waits for its approval still
    assert "waits for approval" in run.meta["reason"] and _upgraded() == []
    approvals.approve(env.service, run.id, None, "ada", "cli")
    run = env.resume()  # approved: that stage, then the step stops the run
    assert run.state is RunState.PAUSED
    assert run.meta["reason"].startswith("stepped: stage control plane: keystone done")
    assert _upgraded() == ["keystone", "keystone"]

    approvals.step(env.service, run.id)
    run = env.resume()
    assert run.meta["reason"].startswith("stepped: stage control plane: glance-api done")
    assert _upgraded()[2:] == ["glance-api", "glance-api"]
    assert env.resume().state is RunState.SUCCEEDED  # a resume: the rest, with no stop


def test_a_step_of_the_last_stage_ends_the_run(tmp_path: Path, fake_world: World) -> None:
    env = Env(tmp_path)
    run = env.start(_spec(approvals=["data plane: compute"]), computes=1)
    approvals.approve(env.service, run.id, None, "ada", "cli")
    approvals.step(env.service, run.id)
    assert env.resume().state is RunState.SUCCEEDED
    with pytest.raises(IllegalTransition, match="nothing to resume"):
        approvals.step(env.service, run.id)


def test_the_in_process_operations_approve_then_resume(tmp_path: Path, fake_world: World) -> None:
    from ephyra.operations.local import Local

    env = Env(tmp_path)
    run = env.start(_spec(approvals=["data plane: compute"]), computes=1)
    local = Local(env.journal.url, env.locks)
    local.__dict__["journal"] = env.journal  # the same journal, opened once
    done = local.approve(run.id, PlainObserver(env.out), stage=None, by="ada")
    assert done.state is RunState.SUCCEEDED
    assert "stage data plane: compute approved by ada" in env.out.getvalue()
