"""Alarm gates against a real Alertmanager (Debian's ``prometheus-alertmanager``): an
alert that fires while the control plane is upgraded stops the run at the gate before
the data plane. Without a wait, the run pauses, naming the alert, and a resume once it is
resolved upgrades the computes; with a wait, the run holds at the gate and goes on by
itself once the alert is resolved."""

from __future__ import annotations

import json
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from testbed.alertmanager import Alertmanager
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional

#: The upgrade command: it records its host; on the controller it fires the test's alert.
FIRE = """\
import datetime, json, sys
import requests

host, log, alertmanager, name = sys.argv[1:5]
with open(log, "a") as out:
    out.write(host + "\\n")
if host == "ctl-1":
    now = datetime.datetime.now(datetime.timezone.utc)
    alert = {
        "labels": {"alertname": name, "instance": host, "severity": "critical"},
        "startsAt": now.isoformat(),
        "endsAt": (now + datetime.timedelta(hours=1)).isoformat(),
    }
    requests.post(alertmanager + "/api/v2/alerts", json=[alert], timeout=10).raise_for_status()
"""


def resolve(alertmanager: Alertmanager, name: str) -> None:
    """The alert ``name`` of ctl-1 resolved, as Prometheus says so: ended now."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    labels = {"alertname": name, "instance": "ctl-1", "severity": "critical"}
    reply = requests.post(
        f"{alertmanager.api_url}/alerts",
        json=[{"labels": labels, "startsAt": now, "endsAt": now}],
        timeout=10,
    )
    assert reply.status_code == 200, reply.text


def active(alertmanager: Alertmanager, name: str) -> list[dict[str, Any]]:
    found = requests.get(f"{alertmanager.api_url}/alerts", timeout=10).json()
    return [a for a in found if a["labels"]["alertname"] == name]


def upgrade(
    tmp_path: Path, alertmanager: Alertmanager, **alarms: Any
) -> tuple[Ephyra, list[str], Path, str]:
    name = f"UpgradeTest{uuid.uuid4().hex[:8]}"
    fire, log = tmp_path / "fire.py", tmp_path / "upgraded.log"
    fire.write_text(textwrap.dedent(FIRE))
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "hosts": {
                    "ctl-1": {"roles": ["controller"], "services": ["nova-conductor"]},
                    "cmp-1": {"roles": ["compute"], "services": ["nova-compute"]},
                    "cmp-2": {"roles": ["compute"], "services": ["nova-compute"]},
                }
            }
        )
    )
    command = f"{sys.executable} {fire} {{host}} {log} {alertmanager.url} {name}"
    spec = tmp_path / "upgrade.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "release": "2.0",
                "strategies": {"fire": {"type": "command", "upgrade": command}},
                "strategy": "fire",
                "roles": {"compute": {"max_at_once": 1, "drain": False}},
                "gates": {"services_up": False},
                "availability": {"interval": 0},
                "alarms": {"url": alertmanager.url, "ignore": ["Watchdog"], **alarms},
            }
        )
    )
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")  # no cloud: a static inventory, nothing drained
    ephyra = Ephyra(clouds, tmp_path / "state")
    return ephyra, ["--spec", str(spec), "--source", f"static:{inventory}"], log, name


def test_an_alert_pauses_the_run_at_the_next_gate_and_resume_goes_on_once_resolved(
    alertmanager: Alertmanager, tmp_path: Path
) -> None:
    ephyra, args, log, name = upgrade(tmp_path, alertmanager)
    started = ephyra("upgrade", "start", *args)
    assert started.code == 1, started.err
    assert log.read_text().split() == ["ctl-1"]  # no compute touched
    assert [a["status"]["state"] for a in active(alertmanager, name)] == ["active"]
    status = json.loads(ephyra("upgrade", "status", "--format", "json").out)
    assert status["state"] == "paused"
    assert status["reason"] == (
        f"alarms before data plane: compute: {name}{{instance=ctl-1, severity=critical}}"
    )

    held = ephyra("upgrade", "resume")  # still firing: paused again at the same gate
    assert held.code == 1 and log.read_text().split() == ["ctl-1"]
    resolve(alertmanager, name)
    assert active(alertmanager, name) == []
    resumed = ephyra("upgrade", "resume")
    assert resumed.code == 0, resumed.err
    assert log.read_text().split() == ["ctl-1", "cmp-1", "cmp-2"]
    assert json.loads(ephyra("upgrade", "status", "--format", "json").out)["state"] == "succeeded"


def test_a_run_that_waits_at_its_gate_goes_on_by_itself_once_the_alert_resolves(
    alertmanager: Alertmanager, tmp_path: Path
) -> None:
    ephyra, args, log, name = upgrade(tmp_path, alertmanager, wait=300, interval=1)
    run = ephyra.background("upgrade", "start", *args)
    run.wait_for(lambda line: "alarms before data plane: compute: waiting up to 300s" in line)
    assert log.read_text().split() == ["ctl-1"]
    resolve(alertmanager, name)
    done = run.finish()
    assert done.code == 0, done.err
    assert "alarms before data plane: compute: resolved" in done.err
    assert log.read_text().split() == ["ctl-1", "cmp-1", "cmp-2"]


def test_a_run_killed_while_it_waits_at_its_gate_waits_again_once_resumed(
    alertmanager: Alertmanager, tmp_path: Path
) -> None:
    ephyra, args, log, name = upgrade(tmp_path, alertmanager, wait=300, interval=1)
    waiting = "alarms before data plane: compute: waiting up to 300s"
    run = ephyra.background("upgrade", "start", *args)
    run.wait_for(lambda line: waiting in line)
    run.kill()
    again = ephyra.background("upgrade", "resume")
    again.wait_for(lambda line: waiting in line)
    assert log.read_text().split() == ["ctl-1"]  # the controller's not done again, no compute
    resolve(alertmanager, name)
    done = again.finish()
    assert done.code == 0, done.err
    assert log.read_text().split() == ["ctl-1", "cmp-1", "cmp-2"]
    assert json.loads(ephyra("upgrade", "status", "--format", "json").out)["state"] == "succeeded"
