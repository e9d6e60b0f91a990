"""The testbed's Masakari API and Alertmanager, as an operator drives them around a host's
maintenance: a failover segment and its hosts in Masakari (a host on maintenance and back, a
segment disabled and enabled again), and silences in Alertmanager (made, listed, muting the
matching alerts only, kept across a restart, expired).

Masakari runs behind the session's Keystone and checks each host against a Nova of its own
(region ``SELFHEAL``, compute-1 and compute-2); another Masakari runs standalone (noauth2).
Each service starts once for the module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openstack
import pytest
import requests
from openstack import exceptions

from testbed.alertmanager import Alertmanager
from testbed.keystone import Keystone
from testbed.masakari import MICROVERSION_HEADER, Masakari
from testbed.tenantclouds import Cloud

pytestmark = pytest.mark.functional

REGION = "SELFHEAL"
HOSTS = ("compute-1", "compute-2")
#: ``enabled`` on a segment exists from microversion 1.2 on.
V12 = {MICROVERSION_HEADER: "instance-ha 1.2"}
TIMEOUT = 10.0
OPENSTACK = Path(sys.executable).with_name("openstack")


# --- Masakari ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Masakari]:
    """Masakari without Keystone (noauth2): every request is an admin's."""
    with Masakari(tmp_path_factory.mktemp("masakari-standalone")) as service:
        yield service


@pytest.fixture(scope="module")
def admin(keystone: Keystone) -> dict[str, str]:
    """The headers of the admin of project admin."""
    return {"X-Auth-Token": keystone.token("admin", keystone.admin_password, "admin")}


@pytest.fixture
def clean_masakari(masakari: Masakari, admin: dict[str, str]) -> Iterator[None]:
    """Every segment and host of the module's Masakari deleted after the test: a host is
    in one segment at most, and the Nova has two."""
    yield
    segments = requests.get(f"{masakari.api_url}/segments", headers=admin, timeout=TIMEOUT)
    for segment in segments.json()["segments"]:
        hosts = requests.get(host_url(masakari, segment), headers=admin, timeout=TIMEOUT)
        for host in hosts.json()["hosts"]:
            url = host_url(masakari, segment, host["uuid"])
            assert requests.delete(url, headers=admin, timeout=TIMEOUT).status_code == 204
        url = f"{masakari.api_url}/segments/{segment['uuid']}"
        assert requests.delete(url, headers=admin, timeout=TIMEOUT).status_code == 204


def new_segment(
    masakari: Masakari, headers: dict[str, str], **extra: Any
) -> tuple[requests.Response, dict[str, Any]]:
    body = {
        "name": f"segment-{uuid.uuid4().hex[:8]}",
        "recovery_method": "auto",
        "service_type": "COMPUTE",
        **extra,
    }
    reply = requests.post(
        f"{masakari.api_url}/segments", json={"segment": body}, headers=headers, timeout=TIMEOUT
    )
    return reply, reply.json().get("segment", {})


def host_url(masakari: Masakari, segment: dict[str, Any], host: str = "") -> str:
    url = f"{masakari.api_url}/segments/{segment['uuid']}/hosts"
    return f"{url}/{host}" if host else url


@pytest.mark.usefixtures("clean_masakari")
def test_a_host_goes_on_maintenance_and_back(
    masakari: Masakari, heal_cloud: Cloud, admin: dict[str, str], report: list[str]
) -> None:
    report.append(f"masakari (keystone) start: {masakari.start_seconds:.1f} s")
    report.append(f"nova for masakari (cloud SELFHEAL) start: {heal_cloud.start_seconds:.1f} s")
    made, segment = new_segment(masakari, admin)
    assert made.status_code == 201
    assert segment["recovery_method"] == "auto" and segment["service_type"] == "COMPUTE"

    added = requests.post(
        host_url(masakari, segment),
        json={"host": {"name": "compute-1", "type": "COMPUTE", "control_attributes": "SSH"}},
        headers=admin,
        timeout=TIMEOUT,
    )
    assert added.status_code == 201
    host = added.json()["host"]
    assert (host["name"], host["on_maintenance"], host["reserved"]) == ("compute-1", False, False)
    assert host["failover_segment_id"] == segment["uuid"]

    for state in (True, False):
        put = requests.put(
            host_url(masakari, segment, host["uuid"]),
            json={"host": {"on_maintenance": state}},
            headers=admin,
            timeout=TIMEOUT,
        )
        assert put.status_code == 200 and put.json()["host"]["on_maintenance"] is state
        shown = requests.get(
            host_url(masakari, segment, host["uuid"]), headers=admin, timeout=TIMEOUT
        )
        assert shown.status_code == 200 and shown.json()["host"]["on_maintenance"] is state

    listed = requests.get(host_url(masakari, segment), headers=admin, timeout=TIMEOUT)
    assert listed.status_code == 200
    assert [h["name"] for h in listed.json()["hosts"]] == ["compute-1"]
    # a host is in one segment at most
    _made, other = new_segment(masakari, admin)
    again = requests.post(
        host_url(masakari, other),
        json={"host": {"name": "compute-1", "type": "COMPUTE", "control_attributes": "SSH"}},
        headers=admin,
        timeout=TIMEOUT,
    )
    assert again.status_code == 409


@pytest.mark.usefixtures("clean_masakari")
def test_a_host_nova_does_not_have_is_refused(masakari: Masakari, admin: dict[str, str]) -> None:
    _made, segment = new_segment(masakari, admin)
    refused = requests.post(
        host_url(masakari, segment),
        json={"host": {"name": "compute-9", "type": "COMPUTE", "control_attributes": "SSH"}},
        headers=admin,
        timeout=TIMEOUT,
    )
    assert refused.status_code == 400
    assert "compute-9" in refused.json()["badRequest"]["message"]
    # a host is addressed by its uuid, never by its name
    by_name = requests.put(
        host_url(masakari, segment, "compute-2"),
        json={"host": {"on_maintenance": True}},
        headers=admin,
        timeout=TIMEOUT,
    )
    assert by_name.status_code == 404


@pytest.mark.usefixtures("clean_masakari")
def test_a_segment_is_disabled_and_enabled_with_microversion_1_2(
    masakari: Masakari, admin: dict[str, str]
) -> None:
    made, segment = new_segment(masakari, admin, enabled=True)
    assert made.status_code == 400  # ``enabled`` is unknown before 1.2
    made, segment = new_segment(masakari, {**admin, **V12})
    assert made.status_code == 201 and segment["enabled"] is True
    url = f"{masakari.api_url}/segments/{segment['uuid']}"

    plain = requests.put(url, json={"segment": {"enabled": False}}, headers=admin, timeout=TIMEOUT)
    assert plain.status_code == 400
    for state in (False, True):
        put = requests.put(
            url, json={"segment": {"enabled": state}}, headers={**admin, **V12}, timeout=TIMEOUT
        )
        assert put.status_code == 200 and put.json()["segment"]["enabled"] is state
        shown = requests.get(url, headers={**admin, **V12}, timeout=TIMEOUT)
        assert shown.status_code == 200 and shown.json()["segment"]["enabled"] is state
        assert shown.headers[MICROVERSION_HEADER] == "instance-ha 1.2"
    # shown whatever the microversion asked for
    assert requests.get(url, headers=admin, timeout=TIMEOUT).json()["segment"]["enabled"] is True


@pytest.mark.usefixtures("clean_masakari")
def test_masakari_wants_a_token_of_an_admin(masakari: Masakari, keystone: Keystone) -> None:
    segments = f"{masakari.api_url}/segments"
    assert requests.get(segments, timeout=TIMEOUT).status_code == 401
    user = f"selfheal-{uuid.uuid4().hex[:6]}"
    password = keystone.add_user(user, "selfheal", "member")
    member = {"X-Auth-Token": keystone.token(user, password, "selfheal")}
    assert requests.get(segments, headers=member, timeout=TIMEOUT).status_code == 403


@pytest.mark.usefixtures("clean_masakari")
def test_openstacksdk_instance_ha_finds_and_drives_masakari(
    masakari: Masakari, keystone: Keystone, admin: dict[str, str]
) -> None:
    entry = keystone.clouds_entry("admin", keystone.admin_password, "admin")
    conn = openstack.connect(
        load_yaml_config=False,
        load_envvars=False,
        auth_type="password",
        auth=entry["auth"],
        region_name=REGION,
    )
    ha = conn.instance_ha
    segment = ha.create_segment(
        name=f"sdk-{uuid.uuid4().hex[:8]}", recovery_method="auto", service_type="COMPUTE"
    )
    assert segment.is_enabled is True
    host = ha.create_host(segment.uuid, name="compute-2", type="COMPUTE", control_attributes="SSH")
    ha.update_host(host.uuid, segment.uuid, on_maintenance=True)
    ha.update_segment(segment.uuid, is_enabled=False)

    url = f"{masakari.api_url}/segments/{segment.uuid}"
    shown = requests.get(url, headers={**admin, **V12}, timeout=TIMEOUT).json()["segment"]
    assert shown["enabled"] is False
    host_shown = requests.get(f"{url}/hosts/{host.uuid}", headers=admin, timeout=TIMEOUT)
    assert host_shown.json()["host"]["on_maintenance"] is True
    assert [s.uuid for s in ha.segments() if s.uuid == segment.uuid] == [segment.uuid]
    # openstacksdk addresses a Segment (or Host) object by its ``id``, Masakari's integer
    # row id, where Masakari wants the uuid: pass ``.uuid``, never the object
    assert isinstance(segment.id, int)
    with pytest.raises(exceptions.NotFoundException):
        ha.get_segment(segment)


@pytest.mark.usefixtures("clean_masakari")
def test_the_openstack_cli_drives_masakari(
    masakari: Masakari, keystone: Keystone, admin: dict[str, str], tmp_path: Path
) -> None:
    """python-masakariclient's ``openstack segment`` commands, by names."""
    name = f"cli-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "OS_AUTH_URL": keystone.url,
        "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": "admin",
        "OS_PASSWORD": keystone.admin_password,
        "OS_PROJECT_NAME": "admin",
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": REGION,
        "OS_HA_API_VERSION": "1.2",
    }

    def cli(*args: str) -> Any:
        done = subprocess.run(
            [str(OPENSTACK), *args, "-f", "json"], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    made = cli("segment", "create", name, "auto", "COMPUTE")
    assert made["is_enabled"] is True
    cli("segment", "host", "create", "compute-1", "COMPUTE", "SSH", name)
    shown = cli("segment", "host", "update", name, "compute-1", "--on_maintenance", "True")
    assert shown["on_maintenance"] is True
    assert cli("segment", "update", name, "--is_enabled", "False")["is_enabled"] is False

    url = f"{masakari.api_url}/segments/{made['uuid']}"
    assert requests.get(url, headers=admin, timeout=TIMEOUT).json()["segment"]["enabled"] is False


def test_standalone_masakari_serves_segments_without_keystone(
    standalone: Masakari, report: list[str]
) -> None:
    report.append(f"masakari (noauth2) start: {standalone.start_seconds:.1f} s")
    made, segment = new_segment(standalone, V12, enabled=False)
    assert made.status_code == 201 and segment["enabled"] is False
    url = f"{standalone.api_url}/segments/{segment['uuid']}"
    put = requests.put(url, json={"segment": {"enabled": True}}, headers=V12, timeout=TIMEOUT)
    assert put.status_code == 200 and put.json()["segment"]["enabled"] is True
    # no Keystone, so no Nova to check a host's name against: no host can be added
    refused = requests.post(
        host_url(standalone, segment),
        json={"host": {"name": "compute-1", "type": "COMPUTE", "control_attributes": "SSH"}},
        timeout=TIMEOUT,
    )
    assert refused.status_code == 500


# --- Alertmanager --------------------------------------------------------------------------


def silence_body(regex: str, minutes: int = 60) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "matchers": [{"name": "instance", "value": regex, "isRegex": True, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
        "createdBy": "ephyra",
        "comment": "maintenance of compute-1 and compute-2",
    }


def silences(alertmanager: Alertmanager) -> dict[str, dict[str, Any]]:
    reply = requests.get(f"{alertmanager.api_url}/silences", timeout=TIMEOUT)
    assert reply.status_code == 200
    return {s["id"]: s for s in reply.json()}


def test_a_silence_is_made_listed_and_expired(
    alertmanager: Alertmanager, report: list[str]
) -> None:
    report.append(f"alertmanager start: {alertmanager.start_seconds:.2f} s")
    made = requests.post(
        f"{alertmanager.api_url}/silences",
        json=silence_body("compute-1|compute-2"),
        timeout=TIMEOUT,
    )
    assert made.status_code == 200
    silence_id = made.json()["silenceID"]

    listed = silences(alertmanager)[silence_id]
    assert listed["status"]["state"] == "active"
    assert listed["matchers"] == [
        {"name": "instance", "value": "compute-1|compute-2", "isRegex": True, "isEqual": True}
    ]
    assert listed["createdBy"] == "ephyra"

    expired = requests.delete(f"{alertmanager.api_url}/silence/{silence_id}", timeout=TIMEOUT)
    assert expired.status_code == 200
    assert silences(alertmanager)[silence_id]["status"]["state"] == "expired"
    shown = requests.get(f"{alertmanager.api_url}/silence/{silence_id}", timeout=TIMEOUT)
    assert shown.status_code == 200 and shown.json()["status"]["state"] == "expired"
    # expiring again changes nothing and succeeds; an unknown silence is a 500 (0.25)
    again = requests.delete(f"{alertmanager.api_url}/silence/{silence_id}", timeout=TIMEOUT)
    assert again.status_code == 200
    assert silences(alertmanager)[silence_id]["status"]["state"] == "expired"
    unknown = requests.delete(f"{alertmanager.api_url}/silence/{uuid.uuid4()}", timeout=TIMEOUT)
    assert (unknown.status_code, unknown.json()) == (500, "silence not found")


def test_a_silence_mutes_the_matching_alerts_only(alertmanager: Alertmanager) -> None:
    run = uuid.uuid4().hex[:8]
    made = requests.post(
        f"{alertmanager.api_url}/silences",
        json=silence_body("compute-1|compute-2"),
        timeout=TIMEOUT,
    )
    silence_id = made.json()["silenceID"]
    alerts = [
        {"labels": {"alertname": f"HostDown-{run}", "instance": host}}
        for host in ("compute-1", "compute-3", "compute-10")
    ]
    posted = requests.post(f"{alertmanager.api_url}/alerts", json=alerts, timeout=TIMEOUT)
    assert posted.status_code == 200

    reply = requests.get(
        f"{alertmanager.api_url}/alerts",
        params={"filter": f'alertname="HostDown-{run}"'},
        timeout=TIMEOUT,
    )
    assert reply.status_code == 200
    status = {a["labels"]["instance"]: a["status"] for a in reply.json()}
    assert status["compute-1"] == {
        "state": "suppressed",
        "silencedBy": [silence_id],
        "inhibitedBy": [],
    }
    # the regular expression is anchored: compute-10 is not compute-1
    assert status["compute-3"]["state"] == status["compute-10"]["state"] == "active"
    requests.delete(f"{alertmanager.api_url}/silence/{silence_id}", timeout=TIMEOUT)


def test_silences_outlive_a_restart(alertmanager: Alertmanager) -> None:
    made = requests.post(
        f"{alertmanager.api_url}/silences", json=silence_body("compute-2"), timeout=TIMEOUT
    )
    silence_id = made.json()["silenceID"]
    alertmanager.stop()
    began = time.monotonic()
    alertmanager.start()
    assert time.monotonic() - began < 10
    assert silences(alertmanager)[silence_id]["status"]["state"] == "active"
    assert Path(alertmanager.data_dir, "silences").exists()
