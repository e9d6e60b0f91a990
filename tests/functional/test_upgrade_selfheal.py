"""An upgrade tells self-healing and alerting about each batch's maintenance, against a
real Masakari API (behind the session's Keystone, checking hosts against a real Nova) and
a real Alertmanager: while a compute's unit runs, Masakari has it on maintenance and
Alertmanager silences exactly that host; after, neither; a host on maintenance before
the run stays so."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from testbed.alertmanager import Alertmanager
from testbed.keystone import Keystone
from testbed.masakari import Masakari
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional

REGION = "SELFHEAL"
HOSTS = ("compute-1", "compute-2")
CLOUD = "heal"
TIMEOUT = 10.0
#: What the upgrade command of each host records of Masakari and Alertmanager, as it runs.
PROBE = """\
import json, sys
import openstack, requests

host, log, alertmanager = sys.argv[1], sys.argv[2], sys.argv[3]
conn = openstack.connect(cloud="heal")
maintenance, enabled = {}, {}
for segment in conn.instance_ha.segments():
    enabled[segment.uuid] = segment.is_enabled
    for entry in conn.instance_ha.hosts(segment.uuid):
        maintenance[entry.name] = entry.on_maintenance
silences = [
    s["matchers"]
    for s in requests.get(alertmanager + "/api/v2/silences", timeout=10).json()
    if s["status"]["state"] == "active" and s["comment"].startswith("ephyra run ")
]
with open(log, "a") as out:
    seen = {"host": host, "maintenance": maintenance, "enabled": enabled, "silences": silences}
    out.write(json.dumps(seen))
    out.write("\\n")
"""


def _admin(keystone: Keystone) -> dict[str, str]:
    return {
        "X-Auth-Token": keystone.token("admin", keystone.admin_password, "admin"),
        "OpenStack-API-Version": "instance-ha 1.2",
    }


@pytest.fixture
def segment(masakari: Masakari, keystone: Keystone) -> Iterator[dict[str, Any]]:
    """A segment with both computes (:func:`_segment`), gone after the test."""
    headers = _admin(keystone)
    made = _segment(masakari, headers)
    yield made
    url = f"{masakari.api_url}/segments/{made['uuid']}"
    for host in requests.get(f"{url}/hosts", headers=headers, timeout=TIMEOUT).json()["hosts"]:
        gone = requests.delete(f"{url}/hosts/{host['uuid']}", headers=headers, timeout=TIMEOUT)
        assert gone.status_code == 204
    assert requests.delete(url, headers=headers, timeout=TIMEOUT).status_code == 204


def _segment(masakari: Masakari, headers: dict[str, str]) -> dict[str, Any]:
    """A segment with both computes; compute-2 on maintenance already (an operator's)."""
    body = {"name": f"heal-{uuid.uuid4().hex[:8]}", "recovery_method": "auto"}
    body["service_type"] = "COMPUTE"
    made = requests.post(
        f"{masakari.api_url}/segments", json={"segment": body}, headers=headers, timeout=TIMEOUT
    )
    assert made.status_code == 201, made.text
    segment: dict[str, Any] = made.json()["segment"]
    for host in HOSTS:
        added = requests.post(
            f"{masakari.api_url}/segments/{segment['uuid']}/hosts",
            json={"host": {"name": host, "type": "COMPUTE", "control_attributes": "SSH"}},
            headers=headers,
            timeout=TIMEOUT,
        )
        assert added.status_code == 201, added.text
        if host == "compute-2":
            uuid_ = added.json()["host"]["uuid"]
            put = requests.put(
                f"{masakari.api_url}/segments/{segment['uuid']}/hosts/{uuid_}",
                json={"host": {"on_maintenance": True}},
                headers=headers,
                timeout=TIMEOUT,
            )
            assert put.status_code == 200, put.text
    return segment


def _maintenance(masakari: Masakari, headers: dict[str, str], segment: str) -> dict[str, bool]:
    found = requests.get(
        f"{masakari.api_url}/segments/{segment}/hosts", headers=headers, timeout=TIMEOUT
    )
    assert found.status_code == 200
    return {h["name"]: h["on_maintenance"] for h in found.json()["hosts"]}


def _upgrade(
    keystone: Keystone,
    alertmanager: Alertmanager,
    tmp_path: Path,
    hosts: tuple[str, ...],
    masakari: dict[str, Any],
) -> tuple[Ephyra, Path]:
    """``ephyra upgrade start`` of ``hosts``, one at a time, each drained, its upgrade
    command the probe; Masakari (``masakari``'s options) and Alertmanager told."""
    clouds_yaml = tmp_path / "clouds.yaml"
    entry = keystone.clouds_entry("admin", keystone.admin_password, "admin")
    clouds_yaml.write_text(yaml.safe_dump({"clouds": {CLOUD: {**entry, "region_name": REGION}}}))
    probe, log = tmp_path / "probe.py", tmp_path / "probe.log"
    probe.write_text(textwrap.dedent(PROBE))
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {"hosts": {h: {"roles": ["compute"], "services": ["nova-compute"]} for h in hosts}}
        )
    )
    spec = tmp_path / "upgrade.yaml"
    command = f"{sys.executable} {probe} {{host}} {log} {alertmanager.url}"
    spec.write_text(
        yaml.safe_dump(
            {
                "release": "1.0.0",
                "strategies": {"probe": {"type": "command", "upgrade": command}},
                "strategy": "probe",
                "roles": {"compute": {"max_at_once": 1, "drain": True}},
                "gates": {"services_up": True, "timeout": 60, "interval": 0.5},
                "availability": {"interval": 0},
                "selfheal": [
                    masakari,
                    {"type": "alertmanager", "url": alertmanager.url, "label": "instance"},
                ],
            }
        )
    )
    ephyra = Ephyra(clouds_yaml, tmp_path / "state")
    args = ["--spec", str(spec), "--source", f"static:{inventory}", "--os-cloud", CLOUD]
    started = ephyra("upgrade", "start", *args, timeout=600)
    assert started.code == 0, started.out + started.err
    return ephyra, log


def test_masakari_and_alertmanager_hold_each_batch_in_maintenance_while_it_runs(
    masakari: Masakari,
    alertmanager: Alertmanager,
    keystone: Keystone,
    segment: dict[str, Any],
    tmp_path: Path,
) -> None:
    headers = _admin(keystone)
    ephyra, log = _upgrade(keystone, alertmanager, tmp_path, HOSTS, {"type": "masakari"})

    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert [s["host"] for s in seen] == list(HOSTS)  # one at a time, in order
    for record in seen:
        host = record["host"]
        assert record["maintenance"][host] is True  # Masakari: on maintenance meanwhile
        # Alertmanager: one silence, of exactly this batch's host
        assert record["silences"] == [
            [{"name": "instance", "value": host, "isRegex": True, "isEqual": True}]
        ]
    assert seen[0]["maintenance"]["compute-2"] is True  # the operator's, before the run

    # after the run: compute-1 off maintenance, compute-2 as the operator left it
    assert _maintenance(masakari, headers, segment["uuid"]) == {
        "compute-1": False,
        "compute-2": True,
    }
    status = json.loads(ephyra("upgrade", "status", "--format", "json").out)
    assert status["state"] == "succeeded"
    silences = requests.get(f"{alertmanager.api_url}/silences", timeout=TIMEOUT).json()
    ours = [s for s in silences if s["comment"].startswith(f"ephyra run {status['id']} ")]
    assert len(ours) == 2 and {s["status"]["state"] for s in ours} == {"expired"}


def test_masakari_segment_disabled_during_the_batch_then_enabled_again(
    masakari: Masakari,
    alertmanager: Alertmanager,
    keystone: Keystone,
    segment: dict[str, Any],
    tmp_path: Path,
) -> None:
    headers = _admin(keystone)
    _upgrade(
        keystone, alertmanager, tmp_path, ("compute-1",), {"type": "masakari", "mode": "segment"}
    )
    (seen,) = [json.loads(line) for line in (tmp_path / "probe.log").read_text().splitlines()]
    assert seen["host"] == "compute-1"
    assert seen["enabled"][segment["uuid"]] is False  # disabled while the batch ran
    assert seen["maintenance"]["compute-1"] is False
    shown = requests.get(
        f"{masakari.api_url}/segments/{segment['uuid']}", headers=headers, timeout=TIMEOUT
    ).json()["segment"]
    assert shown["enabled"] is True  # enabled again after the batch
    assert _maintenance(masakari, headers, segment["uuid"]) == {
        "compute-1": False,
        "compute-2": True,
    }  # hosts untouched in segment mode
