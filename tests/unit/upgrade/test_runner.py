"""An upgrade run's logic, with an in-memory strategy and no cloud: order, rolling
limits, failure threshold, canary, resume, rollback with and without downgrade."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest

from ephyra.engine.journal import Journal
from ephyra.engine.service import RunService
from ephyra.engine.states import RunState
from ephyra.errors import IllegalTransition, UsageError
from ephyra.inventory.model import Service, inventory, make_host
from ephyra.progress import PlainObserver
from ephyra.upgrade import runner
from ephyra.upgrade.kind import UpgradeKind, plan_upgrade
from ephyra.upgrade.spec import parse
from tests.unit.compute.fake_nova import FakeCloud
from tests.unit.upgrade import upgrade_fakes
from tests.unit.upgrade.upgrade_fakes import WORLD

pytestmark = pytest.mark.usefixtures("fake_world")


def _spec(**extra: Any) -> Any:
    data = {
        "release": "2.0",
        "strategies": {"default": {"type": "fake"}},
        "roles": {"compute": {"max_at_once": 2, "drain": False}},
        "gates": {"services_up": False},
        **extra,
    }
    return parse(data)


class Env:
    def __init__(self, tmp: Path) -> None:
        self.journal = Journal(f"sqlite:///{tmp / 'journal.db'}")
        self.locks = f"file://{tmp / 'locks'}"
        self.out = io.StringIO()
        self.service = RunService(UpgradeKind(), self.journal, self.locks)

    def start(self, spec: Any, computes: int = 5) -> Any:
        found = plan_upgrade(spec, [], None, inventory=upgrade_fakes.cloud(computes=computes))
        return self.service.start(found, PlainObserver(self.out))

    def resume(self) -> Any:
        return self.service.resume(None, PlainObserver(self.out))

    def rollback(self) -> Any:
        return self.service.rollback(None, PlainObserver(self.out))


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_control_plane_service_by_service_then_computes_two_at_once(env: Env) -> None:
    run = env.start(_spec())
    assert run.state is RunState.SUCCEEDED
    order = [(host, services[0]) for what, host, services, _ in WORLD.calls]
    controls = [s for h, s in order if h.startswith("ctl")]
    assert controls == [
        "keystone",
        "keystone",
        "glance-api",
        "glance-api",
        "nova-conductor",
        "nova-conductor",
        "nova-scheduler",
        "nova-scheduler",
        "nova-api",
        "nova-api",
    ]
    first_compute = next(i for i, (h, _) in enumerate(order) if h.startswith("cmp"))
    assert all(h.startswith("cmp") for h, _ in order[first_compute:])
    assert WORLD.peak == 2  # computes two at once, controllers one at a time
    assert set(WORLD.versions.values()) == {"2.0"}
    status = env.service.status(run.id).to_dict()
    assert status["counts"] == {"upgraded": 15}
    assert all(u["versions"] == "1.0->2.0" for u in status["units"])
    assert any("upgrade cmp-3 to 2.0" in line for u in status["units"] for line in u["output"])


def test_failure_over_threshold_pauses_and_resume_retries(env: Env) -> None:
    WORLD.fail.add("cmp-2")
    run = env.start(_spec(failure_threshold=0))
    assert run.state is RunState.PAUSED
    assert "1 unit(s) failed, more than the failure threshold (0): data@cmp-2" in run.meta["reason"]
    upgraded = {h for what, h, *_ in WORLD.calls if h.startswith("cmp")}
    assert upgraded == {"cmp-1", "cmp-2"}  # the batch after it never started
    WORLD.fail.clear()
    run = env.resume()
    assert run.state is RunState.SUCCEEDED
    calls = [h for what, h, *_ in WORLD.calls if h.startswith("cmp")]
    assert calls.count("cmp-2") == 2 and calls.count("cmp-1") == 1  # only the failed again


def test_failures_within_threshold_go_on_and_fail_the_run(env: Env) -> None:
    WORLD.fail.add("cmp-4")
    run = env.start(_spec(failure_threshold=1))
    assert run.state is RunState.FAILED
    assert "data@cmp-4" in run.meta["reason"]
    assert {h for _, h, *_ in WORLD.calls if h.startswith("cmp")} == {
        f"cmp-{i}" for i in range(1, 6)
    }


def test_failed_canary_pauses_whatever_the_threshold(env: Env) -> None:
    WORLD.fail.add("cmp-3")
    spec = _spec(
        failure_threshold=5,
        roles={"compute": {"max_at_once": 2, "drain": False, "canary": "cmp-3", "soak": 0.1}},
    )
    run = env.start(spec)
    assert run.state is RunState.PAUSED
    assert run.meta["reason"].startswith("canary cmp-3 failed")
    assert [h for _, h, *_ in WORLD.calls if h.startswith("cmp")] == ["cmp-3"]


def test_frozen_role_is_left_alone(env: Env) -> None:
    run = env.start(_spec(roles={"compute": {"max_at_once": 0}}))
    assert run.state is RunState.SUCCEEDED
    assert not [h for _, h, *_ in WORLD.calls if h.startswith("cmp")]
    assert env.service.status(run.id).to_dict()["frozen"] == [f"cmp-{i}" for i in range(1, 6)]


def test_rollback_downgrades_newest_first(env: Env) -> None:
    env.start(_spec())
    WORLD.calls.clear()
    run = env.rollback()
    assert run.state is RunState.ROLLED_BACK
    assert set(WORLD.versions.values()) == {"1.0"}
    hosts = [h for what, h, *_ in WORLD.calls if what == "downgrade"]
    assert hosts[0].startswith("cmp") and hosts[-1].startswith("ctl")
    assert next(s[0] for _, h, s, _ in WORLD.calls if h == "ctl-1") == "nova-api"


def test_rollback_says_where_there_is_no_downgrade(env: Env) -> None:
    spec = _spec(
        strategies={"default": {"type": "fake"}, "pkg": {"type": "fake", "no_downgrade": True}},
        roles={"compute": {"max_at_once": 2, "drain": False, "strategy": "pkg"}},
    )
    env.start(spec, computes=2)
    run = env.rollback()
    assert run.state is RunState.ROLLED_BACK
    status = env.service.status(run.id).to_dict()
    kept = {u["host"]: u["kept"] for u in status["units"] if u["kept"]}
    assert kept == {
        "cmp-1": "left at 2.0: the fake strategy has no downgrade",
        "cmp-2": "left at 2.0: the fake strategy has no downgrade",
    }
    assert WORLD.versions[("cmp-1", "nova-compute")] == "2.0"
    assert WORLD.versions[("ctl-1", "keystone")] == "1.0"
    assert "no downgrade" in env.out.getvalue()


def _wait(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_pause_from_another_caller_stops_at_a_step_and_resume_finishes(env: Env) -> None:
    import threading

    spec = _spec(strategies={"default": {"type": "fake", "delay": 0.3}})
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(env.start(spec)))
    thread.start()
    _wait(lambda: any(h == "ctl-2" for _, h, *_ in WORLD.calls))
    assert "pause of run" in env.service.pause(None)
    thread.join(30)
    assert result[0].state is RunState.PAUSED
    assert not result[0].meta.get("reason")  # asked for, not a failure
    assert not [h for _, h, *_ in WORLD.calls if h.startswith("cmp")]
    run = env.resume()
    assert run.state is RunState.SUCCEEDED
    upgrades = [(h, s) for what, h, s, _ in WORLD.calls if what == "upgrade"]
    assert len(upgrades) == len(set(upgrades)) == 15  # nothing done twice


def test_abort_then_rollback_takes_back_what_was_done(env: Env) -> None:
    import threading

    spec = _spec(strategies={"default": {"type": "fake", "delay": 0.2}})
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(env.start(spec)))
    thread.start()
    _wait(lambda: len(WORLD.calls) >= 3)
    env.service.abort(None, PlainObserver(env.out))
    thread.join(30)
    assert result[0].state is RunState.ABORTED
    done = {k for k, v in WORLD.versions.items() if v == "2.0"}
    assert 3 <= len(done) < 15
    run = env.rollback()
    assert run.state is RunState.ROLLED_BACK
    assert set(WORLD.versions.values()) == {"1.0"}
    downgrades = {(h, ",".join(s)) for what, h, s, _ in WORLD.calls if what == "downgrade"}
    assert downgrades == done


def test_a_plan_that_drains_needs_no_cloud_but_its_start_does(env: Env) -> None:
    """Planning reads only the inventory and the specification; the run drains compute
    hosts through their cloud's APIs, so starting without one is refused, before any run."""
    spec = _spec(roles={"compute": {"max_at_once": 2}})
    found = plan_upgrade(spec, [], None, inventory=upgrade_fakes.cloud(computes=2))
    assert [u.host for u in found.plan.units() if u.drain] == ["cmp-1", "cmp-2"]
    with pytest.raises(UsageError, match=r"--os-cloud NAME\) to start; planning needs none"):
        env.service.start(found, PlainObserver(env.out))
    assert env.journal.runs("upgrade") == []


# -- a project's own steps (project_steps) ------------------------------------------------


def _release_spec(tmp: Path, expand_only: bool = True, restart_then: str = "") -> Any:
    """Every restart, sync and migration round writes a line to ``tmp/log``; a restart
    says whether its host's file is pinned; the migrations have more to do twice."""
    log = tmp / "log"
    pinned = f"$(grep -h '^compute = auto' {tmp}/{{host}}.conf)"
    counter = tmp / "rounds"
    migrate = (
        f"n=$(($(cat {counter} 2>/dev/null || echo 0) + 1)); echo $n > {counter}; "
        f"echo migrate $n >> {log}; [ $n -ge 3 ]"
    )
    return _spec(
        restart=f"echo restart {{service}} {{host}} {pinned} >> {log}" + restart_then,
        project_steps={
            "compute": {
                "pin": {"file": f"{tmp}/{{host}}.conf", "options": {"compute": "auto"}},
                "sync": [f"echo sync {{host}} >> {log}"],
                "expand_only": expand_only,
                "migrate": migrate,
            }
        },
    )


def test_project_steps_run_in_the_upgrade_guides_order(env: Env, tmp_path: Path) -> None:
    (tmp_path / "ctl-1.conf").write_text("[DEFAULT]\ndebug = true\n")
    run = env.start(_release_spec(tmp_path), computes=2)
    assert run.state is RunState.SUCCEEDED
    log = (tmp_path / "log").read_text().splitlines()
    first_nova = next(i for i, line in enumerate(log) if line.startswith("restart nova-"))
    assert log.index("sync ctl-1") < first_nova  # the databases before any Nova restart
    upgraded = [line for line in log[first_nova:] if line.endswith("compute = auto")]
    assert upgraded[:6] == [  # restarted on the new code with the pin: control first
        "restart nova-conductor ctl-1 compute = auto",
        "restart nova-conductor ctl-2 compute = auto",
        "restart nova-scheduler ctl-1 compute = auto",
        "restart nova-scheduler ctl-2 compute = auto",
        "restart nova-api ctl-1 compute = auto",
        "restart nova-api ctl-2 compute = auto",
    ]
    assert sorted(upgraded[6:]) == [  # then the computes, two at once
        "restart nova-compute cmp-1 compute = auto",
        "restart nova-compute cmp-2 compute = auto",
    ]
    unpinned = log[log.index(upgraded[-1]) + 1 :]
    assert unpinned == [  # pins removed host by host, each host's services restarted
        "restart nova-conductor ctl-1",
        "restart nova-scheduler ctl-1",
        "restart nova-api ctl-1",
        "restart nova-conductor ctl-2",
        "restart nova-scheduler ctl-2",
        "restart nova-api ctl-2",
        "restart nova-compute cmp-1",
        "restart nova-compute cmp-2",
        "migrate 1",
        "migrate 2",
        "migrate 3",
    ]
    assert (tmp_path / "ctl-1.conf").read_text() == "[DEFAULT]\ndebug = true\n"
    status = env.service.status(run.id).to_dict()
    versions = {u["unit"]: u["versions"] for u in status["units"]}
    assert versions["database:compute@ctl-1"] == "1.0->2.0, compute: synced"
    assert versions["migrate:compute@ctl-1"] == "compute: migrated"
    with pytest.raises(IllegalTransition, match=r"stage 'migrate: compute', a point of no return"):
        env.rollback()


def test_rollback_before_the_point_of_no_return_unpins_and_downgrades(
    env: Env, tmp_path: Path
) -> None:
    WORLD.fail = {"cmp-2"}
    run = env.start(_release_spec(tmp_path), computes=2)
    assert run.state is RunState.PAUSED
    assert "compute = auto" in (tmp_path / "cmp-1.conf").read_text()
    (tmp_path / "log").write_text("")
    run = env.rollback()
    assert run.state is RunState.ROLLED_BACK
    assert set(WORLD.versions.values()) == {"1.0"}
    for host in ("ctl-1", "ctl-2", "cmp-1", "cmp-2"):
        assert "compute" not in (tmp_path / f"{host}.conf").read_text()
    log = (tmp_path / "log").read_text().splitlines()
    assert "restart nova-compute cmp-1 compute = auto" in log  # back to 1.0, still pinned
    assert not [line for line in log if line.startswith(("sync", "migrate"))]
    status = env.service.status(run.id).to_dict()
    kept = {u["unit"]: u["kept"] for u in status["units"] if u["kept"]}
    assert kept == {
        "database:compute@ctl-1": (
            "the compute databases stay at 2.0 (expand only: the previous release runs on them)"
        )
    }


def test_a_sync_that_is_not_expand_only_is_a_point_of_no_return(env: Env, tmp_path: Path) -> None:
    WORLD.fail = {"cmp-1"}
    plan = plan_upgrade(
        _release_spec(tmp_path, expand_only=False), [], None, upgrade_fakes.cloud(computes=1)
    )
    stage = next(s for s in plan.plan.stages if s.name == "database: compute")
    assert stage.no_return == "the compute schema migrations are not undone"
    assert "point of no return: the compute schema migrations" in plan.plan.render()
    run = env.start(_release_spec(tmp_path, expand_only=False), computes=1)
    assert run.state is RunState.PAUSED
    with pytest.raises(IllegalTransition, match=r"began stage 'database: compute'"):
        env.rollback()


def test_rollback_after_unpinning_pins_again_before_taking_each_host_back(
    env: Env, tmp_path: Path
) -> None:
    # cmp-2's nova-compute fails to restart without the pin: its unpin unit fails
    fails = f"; grep -q '^compute = auto' {tmp_path}/{{host}}.conf || [ {{host}} != cmp-2 ]"
    run = env.start(_release_spec(tmp_path, restart_then=fails), computes=2)
    assert run.state is RunState.PAUSED
    assert "unpin:compute@cmp-2" in run.meta["reason"]
    assert "compute = auto" not in (tmp_path / "cmp-1.conf").read_text()
    (tmp_path / "log").write_text("")
    run = env.rollback()
    assert run.state is RunState.ROLLED_BACK
    assert set(WORLD.versions.values()) == {"1.0"}
    log = (tmp_path / "log").read_text().splitlines()
    # pinned again first (newest first: cmp-2, cmp-1, ...), then each host taken back
    assert log[:2] == [
        "restart nova-compute cmp-2 compute = auto",
        "restart nova-compute cmp-1 compute = auto",
    ]
    for host in ("ctl-1", "ctl-2", "cmp-1", "cmp-2"):
        assert "compute" not in (tmp_path / f"{host}.conf").read_text()


def _told(log: Path, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "type": "command",
            "roles": ["compute"],
            "enter": f"echo enter {{host}} >> {log}",
            "leave": f"echo leave {{host}} >> {log}",
            **extra,
        }
    ]


def _events(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_selfheal_a_batchs_hosts_enter_before_it_and_leave_after(env: Env, tmp_path: Path) -> None:
    log = tmp_path / "told.log"
    WORLD.log = log  # the strategy's calls go in the same log, to see the order
    run = env.start(_spec(selfheal=_told(log)))
    assert run.state is RunState.SUCCEEDED
    events = _events(log)
    at = {event: i for i, event in enumerate(events)}
    for host in [f"cmp-{i}" for i in range(1, 6)]:
        assert at[f"enter {host}"] < at[f"upgrade {host}"] < at[f"leave {host}"]
    # two at once: a batch leaves before the next one enters; controllers are not told
    assert at["leave cmp-1"] < at["enter cmp-3"] and at["leave cmp-4"] < at["enter cmp-5"]
    assert at["enter cmp-2"] < at["upgrade cmp-1"]
    assert not [e for e in events if "ctl" in e and not e.startswith("upgrade")]
    assert len(events) == 15 + sum(1 for e in events if "ctl" in e)
    kept = env.journal.records(run.id, runner.selfheal.RECORD)[runner.selfheal.RECORD]
    assert kept == {"0": {}}  # nothing left entered


def test_selfheal_a_failed_batch_stays_entered_until_done_on_resume(
    env: Env, tmp_path: Path
) -> None:
    log = tmp_path / "told.log"
    WORLD.fail.add("cmp-2")
    run = env.start(_spec(selfheal=_told(log)))
    assert run.state is RunState.PAUSED
    assert sorted(_events(log)) == ["enter cmp-1", "enter cmp-2"]  # no leave: cmp-2 failed
    WORLD.fail.clear()
    run = env.resume()
    assert run.state is RunState.SUCCEEDED
    events = _events(log)
    assert events.count("enter cmp-2") == 1  # entered once, kept in the run's record
    assert events.count("leave cmp-1") == events.count("leave cmp-2") == 1
    assert events.index("leave cmp-2") < events.index("enter cmp-3")


def test_selfheal_rollback_leaves_what_the_forward_run_entered(env: Env, tmp_path: Path) -> None:
    log = tmp_path / "told.log"
    WORLD.fail.add("cmp-2")
    assert env.start(_spec(selfheal=_told(log))).state is RunState.PAUSED
    env.service.abort(None, PlainObserver(env.out))
    WORLD.fail.clear()
    run = env.rollback()
    assert run.state is RunState.ROLLED_BACK
    events = _events(log)
    assert sorted(e for e in events if e.startswith("leave")) == ["leave cmp-1", "leave cmp-2"]
    assert events.count("enter cmp-1") == 1  # the rollback found them entered


def test_selfheal_a_command_that_fails_pauses_the_run_and_says_why(
    env: Env, tmp_path: Path
) -> None:
    told = _told(tmp_path / "told.log", enter="exit 3")
    run = env.start(_spec(selfheal=told))
    assert run.state is RunState.PAUSED
    assert run.meta["reason"].startswith("self-healing: ")
    assert not [h for _, h, *_ in WORLD.calls if h.startswith("cmp")]  # no compute touched


def test_a_storage_host_whose_volumes_move_needs_the_cloud_to_start(env: Env) -> None:
    storage = make_host(
        "sto-1", roles={"storage"}, services=[Service("cinder-volume", "block-storage")]
    )
    found = plan_upgrade(_spec(), [], None, inventory=inventory([storage]))
    assert [u.move_volumes for u in found.plan.units()] == [True]
    with pytest.raises(UsageError, match=r"volumes moved\): name their cloud \(--os-cloud"):
        env.service.start(found, PlainObserver(env.out))
    assert env.journal.runs() == []


def test_every_compute_of_a_batch_is_disabled_before_any_of_its_hosts_drains(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No server moved off a host of a batch may land on another host of the batch: each
    unit's flow (its drain) starts only once every compute of its batch is disabled, and
    each is recorded as it was before. A host alone is left to its own flow."""
    cloud = FakeCloud(["cmp-1", "cmp-2", "cmp-3"])
    monkeypatch.setattr(runner.ComputeCloud, "connect", lambda name: cloud)
    seen: list[tuple[str, list[str]]] = []

    def flow(self: Any, unit: Any, phase: Any, drain: Any, batch: Any = None) -> Any:
        disabled = sorted(h for h, s in cloud.services.items() if not s.enabled)
        seen.append((unit.host, disabled))
        assert drain is not None
        if unit.host in disabled:
            assert drain.record.data["service"]["enabled"] is True
        return runner.DONE[phase]

    monkeypatch.setattr(runner.UpgradeRun, "unit_flow", flow)
    spec = _spec(
        roles={"compute": {"max_at_once": 2, "drain": True}, "controller": {"apply": "ignore"}},
        preflight={"skip": ["nova-services", "upgrade-status", "placement", "capacity"]},
        availability={"interval": 0},
    )
    found = plan_upgrade(spec, [], "fake", inventory=upgrade_fakes.cloud(computes=3))
    run = env.service.start(found, PlainObserver(env.out))
    assert run.state is RunState.SUCCEEDED
    assert sorted(seen) == [
        ("cmp-1", ["cmp-1", "cmp-2"]),
        ("cmp-2", ["cmp-1", "cmp-2"]),
        ("cmp-3", ["cmp-1", "cmp-2"]),  # alone: its own flow disables it
    ]
    assert cloud.calls[:2] == [("disable", "cmp-1"), ("disable", "cmp-2")]
