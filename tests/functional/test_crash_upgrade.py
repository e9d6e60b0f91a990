"""The upgrade's crash matrix against real Nova (harness: ``tests.functional.crash``):
kill -9 in the control-plane phase (nova-conductor's upgrade command held at a gate
file), during a compute's health-gate wait (its new release starts only when the test
opens the gate), and during a rollback (compute-2's downgrade held); each resumed in a new
process. Invariants: every service at the release it should have, no compute left
disabled, and the command strategy's ledger shows each unit upgraded (and downgraded)
exactly once.

The command checks the world first (it changes nothing when the service already runs the
version asked), as a strategy's command must; a command left running by the killed
process is ended by the test (it wrote its pid) before the run is resumed."""

# ruff: noqa: F811 (the fixture ephyra of test_upgrade, imported, is named as parameters)
from __future__ import annotations

import contextlib
import os
import shlex
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.nova import NovaTestbed
from tests.functional.crash import MID, Crash, KillPoint, ok, reported, said, wait_file
from tests.functional.ephyra_cli import Ephyra, Result
from tests.functional.test_upgrade import (
    COMPUTES,
    CONTROL,
    _disabled,
    _hypervisors,
    _inventory,
    _spec,
    ephyra,  # noqa: F401 (the fixture, used by name)
)

pytestmark = pytest.mark.functional
UNITS = (*CONTROL, *COMPUTES)


class Upgrade:
    """An upgrade of the testbed to 2.0.0 whose command can be held, and its ledger."""

    def __init__(self, nova: NovaTestbed, ephyra: Ephyra, tmp: Path) -> None:
        self.nova, self.ephyra, self.dir = nova, ephyra, tmp / "gates"
        self.dir.mkdir()
        self.ledger = tmp / "ledger"
        self.inventory = _inventory(nova, tmp / "inventory.yaml")
        spec = _spec(nova, tmp / "spec.yaml")
        data = yaml.safe_load(spec.read_text())
        release = shlex.join(nova.release_command)
        name = 'n={service}; [ "$n" = nova-compute ] && n={host}; '
        d = self.dir
        hold = (
            f"if [ -e {d}/hold-$WHAT-$n ] && [ ! -e {d}/open ]; then echo $$ > {d}/pid; "
            f"touch {d}/held; until [ -e {d}/open ]; do sleep 0.05; done; fi; "
        )
        change = (
            f"if [ -e {d}/late-$n ]; then (until [ -e {d}/open ]; do sleep 0.05; done; "
            f"{release} $n {{version}}) > /dev/null 2>&1 & else {release} $n {{version}}; fi"
        )
        for what in ("upgrade", "downgrade"):
            data["strategies"]["testbed"][what] = (
                f'{name}WHAT={what}; if [ "$({release} $n)" != {{version}} ]; then '
                f"{hold}echo $WHAT $n >> {self.ledger}; {change}; fi"
            )
        spec.write_text(yaml.safe_dump(data))
        self.spec = spec

    def start(self) -> list[str]:
        return [
            "upgrade", "start", "--yes", "--spec", str(self.spec),
            "--source", f"static:{self.inventory}", "--os-cloud", "nova",
        ]  # fmt: skip

    def hold(self, what: str, unit: str) -> None:
        (self.dir / f"hold-{what}-{unit}").touch()

    def release_held(self) -> None:
        """End the command the killed process left at the gate; open the gates."""
        pid = self.dir / "pid"
        if pid.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid.read_text()), signal.SIGKILL)
        (self.dir / "open").touch()

    def lines(self) -> list[str]:
        return self.ledger.read_text().splitlines() if self.ledger.exists() else []

    def status(self) -> dict[str, Any]:
        shown: dict[str, Any] = yaml.safe_load(
            ok(self.ephyra("--format", "yaml", "upgrade", "status")).out
        )
        return shown

    def at(self, version: str) -> None:
        """Every unit at ``version``, no compute disabled."""
        assert {u: self.nova.release(u) for u in UNITS} == {u: version for u in UNITS}
        number = 1000000 if version == "1.0.0" else 2000000
        assert _hypervisors(self.nova) == {h: number for h in COMPUTES}
        assert not _disabled(self.nova)

    def once(self, what: str) -> None:
        lines = self.lines()
        assert sorted(line for line in lines if line.startswith(what)) == sorted(
            f"{what} {u}" for u in UNITS
        ), lines


def crash_forward(up: Upgrade, point: KillPoint, held: Any, landed: Any) -> None:
    proc = up.ephyra.background(*up.start())

    def recover() -> Result:
        up.release_held()
        return up.ephyra("-v", "upgrade", "resume")

    def check() -> None:
        up.at("2.0.0")
        up.once("upgrade")
        assert up.status()["state"] == "succeeded"

    Crash(lambda: held(proc), landed, recover, check).run(proc)


def test_killed_in_the_control_plane_phase_then_resumed(
    clean_nova: NovaTestbed, ephyra: Ephyra, tmp_path: Path, report: list[str]
) -> None:
    up = Upgrade(clean_nova, ephyra, tmp_path)
    up.hold("upgrade", "nova-conductor")

    def landed() -> None:
        assert up.lines() == []  # held before it changed anything
        assert up.nova.release("nova-conductor") == "1.0.0"
        assert up.status()["state"] == "running"

    point = KillPoint("forward", "upgrade (control plane)", MID)
    with reported(report, "upgrade", point):
        crash_forward(up, point, lambda proc: wait_file(up.dir / "held"), landed)


def test_killed_during_a_gate_wait_then_resumed(
    clean_nova: NovaTestbed, ephyra: Ephyra, tmp_path: Path, report: list[str]
) -> None:
    up = Upgrade(clean_nova, ephyra, tmp_path)
    (up.dir / "late-compute-1").touch()  # its new release starts when the gate opens

    def landed() -> None:
        assert up.lines() == [f"upgrade {u}" for u in (*CONTROL, "compute-1")], up.lines()
        assert _hypervisors(up.nova)["compute-1"] == 1000000  # the gate had not passed
        assert "compute-1" in _disabled(up.nova)  # drained, out of scheduling
        assert up.status()["state"] == "running"

    point = KillPoint("forward", "gate", MID)
    with reported(report, "upgrade", point):
        gating = said("compute-1: gate started")
        crash_forward(up, point, lambda proc: proc.wait_for(gating), landed)


def test_killed_during_rollback_then_resumed(
    clean_nova: NovaTestbed, ephyra: Ephyra, tmp_path: Path, report: list[str]
) -> None:
    up = Upgrade(clean_nova, ephyra, tmp_path)
    ok(ephyra(*up.start()))
    up.at("2.0.0")
    up.hold("downgrade", "compute-2")
    proc = ephyra.background("upgrade", "rollback")

    def landed() -> None:
        assert up.lines()[-1] == "downgrade compute-3"  # newest first; compute-2 held
        assert up.nova.release("compute-2") == "2.0.0"
        assert up.status()["state"] == "rolling-back"

    def recover() -> Result:
        up.release_held()
        return ephyra("-v", "upgrade", "resume")

    def check() -> None:
        up.at("1.0.0")
        up.once("upgrade")
        up.once("downgrade")
        assert up.status()["state"] == "rolled-back"

    point = KillPoint("rollback", "downgrade", MID)
    with reported(report, "upgrade", point):
        Crash(lambda: wait_file(up.dir / "held"), landed, recover, check).run(proc)
