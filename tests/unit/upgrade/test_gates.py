"""Health gates against a cloud in memory: heartbeats after the upgrade, hypervisor
versions as Nova compares them, custom checks, and the wait's time-out."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from ephyra.engine.control import Control, Request
from ephyra.errors import GateFailed, PauseRequested
from ephyra.strategies.base import Target
from ephyra.upgrade.gates import Gate
from ephyra.upgrade.spec import Check, Gates


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None).isoformat()


class Cloud:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.versions: dict[str, int] = {}

    def service_records(self, host: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["host"] == host]

    def services(self) -> list[Any]:
        return []

    def hypervisor_versions(self) -> dict[str, int]:
        return dict(self.versions)


def _gate(cloud: Cloud, since: float, **gates: Any) -> Gate:
    return Gate(
        Gates(**{"timeout": 0.3, "interval": 0.05, **gates}),
        cloud,  # type: ignore[arg-type]
        Target("cmp-1", "2.1.0", ("nova-compute",)),
        since=since,
    )


def test_a_heartbeat_older_than_the_upgrade_keeps_the_gate_red() -> None:
    cloud = Cloud()
    now = time.time()
    cloud.records = [
        {"host": "cmp-1", "binary": "nova-compute", "state": "up", "updated_at": _stamp(now - 5)}
    ]
    gate = _gate(cloud, since=now)
    assert gate.failures() == ["nova-compute on cmp-1: no heartbeat since the upgrade"]
    cloud.records[0]["updated_at"] = _stamp(now + 1)
    assert gate.failures() == []


def test_a_service_down_or_missing_is_red() -> None:
    cloud = Cloud()
    gate = _gate(cloud, since=0)
    assert gate.failures() == ["nova-compute on cmp-1: no service record"]
    cloud.records = [{"host": "cmp-1", "binary": "nova-compute", "state": "down"}]
    assert gate.failures() == ["nova-compute on cmp-1 is down"]


def test_hypervisor_version_compared_as_nova_does() -> None:
    cloud = Cloud()
    cloud.records = [
        {"host": "cmp-1", "binary": "nova-compute", "state": "up", "updated_at": _stamp(10)}
    ]
    cloud.versions = {"cmp-1": 2000000}
    gate = _gate(cloud, since=0, hypervisor_version="{version}")
    assert gate.failures() == ["hypervisor of cmp-1 reports version 2000000, expected 2001000"]
    cloud.versions = {"cmp-1": 2001000}
    assert gate.failures() == []


def test_custom_checks_are_templated_and_must_exit_zero(tmp_path: Any) -> None:
    flag = tmp_path / "cmp-1.ok"
    check = Check("flag", f"test -e {tmp_path}/{{host}}.ok && echo fine")
    gate = Gate(Gates(checks=(check,)), None, Target("cmp-1", "2"), since=0)
    assert gate.failures() == ["flag exited with 1: (no output)"]
    flag.touch()
    assert gate.failures() == []


def test_the_wait_times_out_with_what_is_still_red() -> None:
    gate = _gate(Cloud(), since=0)
    started = time.monotonic()
    with pytest.raises(GateFailed, match="health gate still red after 0s: nova-compute on cmp-1"):
        gate.wait(Control())
    assert time.monotonic() - started < 2


def test_a_pause_ends_the_wait_at_once() -> None:
    control = Control()
    control.ask(Request.PAUSE)
    with pytest.raises(PauseRequested):
        _gate(Cloud(), since=0, timeout=60).wait(control)
