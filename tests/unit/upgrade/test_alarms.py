"""Alarm gates: the policy's judgement of alerts, what an unreadable Alertmanager means,
and where a run stops (before a stage, after the last), with Alertmanager's answers in
memory; the real one is in tests/functional/test_upgrade_alarms.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from ephyra.engine.control import Control
from ephyra.engine.states import RunState
from ephyra.errors import UsageError
from ephyra.upgrade import alarms
from ephyra.upgrade.alarms import AlarmGate, Alarms
from ephyra.upgrade.spec import parse
from tests.unit.upgrade.test_runner import Env, _spec
from tests.unit.upgrade.upgrade_fakes import WORLD, World

URL = "http://alertmanager.test:9093"


def alert(name: str, severity: str = "warning", **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": severity, **labels}}


class Reply:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self.body = status, body

    def json(self) -> Any:
        return self.body


class Manager:
    """Alertmanager's GET /api/v2/alerts, in memory; ``down``: no connection."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.down = False
        self.asked: list[dict[str, str]] = []
        self.on_ask: Any = None

    def get(self, url: str, params: dict[str, str], timeout: float) -> Reply:
        assert url == f"{URL}/api/v2/alerts"
        self.asked.append(params)
        if self.on_ask is not None:
            self.on_ask(len(self.asked))
        if self.down:
            raise requests.ConnectionError("refused")
        return Reply(200, list(self.alerts))


@pytest.fixture
def manager(monkeypatch: pytest.MonkeyPatch) -> Manager:
    found = Manager()
    monkeypatch.setattr(alarms.requests, "get", found.get)
    return found


def gate(manager: Manager, **options: Any) -> AlarmGate:
    return AlarmGate(Alarms(url=URL, **options), Control(), lambda text: None)


def test_strict_stops_on_every_alert_but_the_ignored(manager: Manager) -> None:
    manager.alerts = [alert("Watchdog", "none"), alert("HostDown", "critical", instance="c-1")]
    assert gate(manager, ignore=("Watchdog",)).blocking() == [
        "HostDown{instance=c-1, severity=critical}"
    ]
    # only what Alertmanager holds active: neither silenced nor inhibited
    assert manager.asked[-1] == {"active": "true", "silenced": "false", "inhibited": "false"}
    manager.alerts = [alert("Watchdog", "none")]
    assert gate(manager, ignore=("Watchdog",)).blocking() == []


def test_relaxed_stops_on_listed_severities_and_names_only(manager: Manager) -> None:
    manager.alerts = [alert("DiskFilling"), alert("CephHealthError"), alert("NodeDown", "critical")]
    relaxed = gate(manager, policy="relaxed", severities=("critical",), names=("CephHealthError",))
    assert relaxed.blocking() == [
        "CephHealthError{severity=warning}",
        "NodeDown{severity=critical}",
    ]


def test_an_alertmanager_that_cannot_be_read_stops_the_run(manager: Manager) -> None:
    manager.down = True
    assert gate(manager).blocking() == [f"Alertmanager at {URL} unreadable (ConnectionError)"]


def test_a_gate_waits_for_the_alerts_to_resolve_then_goes_on(manager: Manager) -> None:
    manager.alerts = [alert("HostDown")]
    said: list[str] = []
    waiting = AlarmGate(Alarms(url=URL, wait=60, interval=0.01), Control(), said.append)
    manager.on_ask = lambda n: manager.alerts.clear() if n == 3 else None
    assert waiting.hold("before data plane: compute") == ""
    assert said == [
        "alarms before data plane: compute: waiting up to 60s: HostDown{severity=warning}",
        "alarms before data plane: compute: resolved",
    ]


def test_a_gate_past_its_wait_says_why_the_run_pauses(manager: Manager) -> None:
    manager.alerts = [alert(f"A{i}") for i in range(7)]
    why = gate(manager, wait=0).hold("after x")
    assert why.startswith("alarms after x: A0{severity=warning}, A1{severity=warning}")
    assert why.endswith("and 2 more")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"url": "alertmanager:9093"}, "alarms.url: Alertmanager's http(s) URL"),
        ({"url": URL, "policy": "lenient"}, "alarms.policy: one of strict, relaxed"),
        ({"url": URL, "policy": "relaxed"}, "a relaxed policy names the severities or names"),
        ({"url": URL, "ignore": ["bad name"]}, "alarms.ignore: not a name: 'bad name'"),
        ({"url": URL, "colour": "red"}, "alarms: unknown key(s) colour"),
    ],
)
def test_a_bad_alarms_section_is_refused_naming_its_key(
    options: dict[str, Any], error: str
) -> None:
    with pytest.raises(UsageError, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse({"release": "2.0", "strategies": {"d": {"type": "noop"}}, "alarms": options})


def test_an_alert_after_a_stage_pauses_the_run_before_the_next(
    tmp_path: Path, manager: Manager, fake_world: World
) -> None:
    env = Env(tmp_path)
    # the alert fires while the first stage (keystone on both controllers) runs
    manager.on_ask = lambda n: manager.alerts.append(alert("HostDown")) if n == 2 else None
    run = env.start(_spec(alarms={"url": URL}), computes=1)
    assert run.state is RunState.PAUSED
    assert (
        run.meta["reason"] == "alarms before control plane: glance-api: HostDown{severity=warning}"
    )
    assert {services[0] for _, _, services, _ in WORLD.calls} == {"keystone"}

    run = env.resume()  # still firing: paused again, nothing more upgraded
    assert run.state is RunState.PAUSED and len(WORLD.calls) == 2
    manager.alerts.clear()
    run = env.resume()
    assert run.state is RunState.SUCCEEDED
    assert len(WORLD.calls) == 11  # 5 services on 2 controllers, 1 compute
