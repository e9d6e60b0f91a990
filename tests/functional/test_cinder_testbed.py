"""The Cinder testbed itself, with the Nova testbed it serves: cinder-api, cinder-scheduler
and two cinder-volumes (storage-1, storage-2) with the testbed's file driver; a volume
attached to a server and Cinder's own migration of it to the other storage host (Nova swaps
it under the server), the migration of a detached volume (Cinder copies its data), a
cinder-volume stopped and started again and the controller's services restarted, as an
upgrade does them, and what Cinder 29's os-services enable/disable do."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from testbed.cinder import API, SCHEDULER, SERVICE_DOWN_TIME, VOLUME, NovaCinderTestbed

pytestmark = pytest.mark.functional

#: Seconds a migration gets to finish (Cinder waits for its new volume with sleeps of 1,
#: 4, 9... s, then Nova swaps the volume and completes the migration).
MIGRATION_TIMEOUT_S = 120.0
#: What the test writes into a volume, and where, to find it after a migration.
MARK = b"ephyra-cinder-testbed"
MARK_OFFSET = 123 * 1024 * 1024 + 7


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NovaCinderTestbed]:
    """Nova (one compute) and Cinder (storage-1, storage-2), started once for the module."""
    with NovaCinderTestbed(tmp_path_factory.mktemp("nova-cinder"), computes=1) as bed:
        yield bed


@pytest.fixture
def clean(cloud: NovaCinderTestbed) -> NovaCinderTestbed:
    """No server (their volumes detached), no volume, every cinder-volume running and
    enabled."""
    cloud.nova.clean()
    for host in cloud.cinder.hosts:
        if not cloud.cinder.daemon(VOLUME, host).is_running:
            cloud.cinder.start_service(VOLUME, host)
        cloud.cinder.set_service_enabled(host, True)
    cloud.cinder.delete_volumes()
    return cloud


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"not {what} after {timeout:.0f} s"
        time.sleep(0.1)


def nova_attachments(cloud: NovaCinderTestbed, server_id: str) -> list[str]:
    """Volume ids Nova lists as attached to the server."""
    reply = cloud.nova.connect("demo").compute.get(f"/servers/{server_id}/os-volume_attachments")
    assert reply.status_code == 200, reply.text
    return [a["volumeId"] for a in reply.json()["volumeAttachments"]]


def cinder_attachments(volume: dict[str, Any]) -> list[str]:
    """Server ids Cinder lists as the volume's attachments."""
    return [a["server_id"] for a in volume["attachments"]]


def attach(cloud: NovaCinderTestbed, server_id: str, volume_id: str) -> None:
    """Attach through Nova as the project's member, and wait until Cinder shows it in use."""
    body = {"volumeAttachment": {"volumeId": volume_id}}
    compute = cloud.nova.connect("demo").compute
    reply = compute.post(f"/servers/{server_id}/os-volume_attachments", json=body)
    assert reply.status_code == 200, reply.text
    cloud.cinder.wait_volume(volume_id, "in-use")


def test_services_up_and_pools_scheduled(clean: NovaCinderTestbed, report: list[str]) -> None:
    cinder = clean.cinder
    states = cinder.service_states()
    assert states == {
        (SCHEDULER, "controller"): "up",
        (VOLUME, "storage-1@fake"): "up",
        (VOLUME, "storage-2@fake"): "up",
    }
    assert cinder.pools() == ["storage-1@fake#fake", "storage-2@fake#fake"]
    # openstacksdk through the testbed's endpoint, and Nova's connection sees the same Cinder
    sdk = cinder.connect()
    assert sorted(s.host for s in sdk.block_storage.services(binary=VOLUME)) == [
        "storage-1@fake",
        "storage-2@fake",
    ]
    volume_id = cinder.create_volume(host="storage-1")
    mine = clean.nova.connect("demo").block_storage.get_volume(volume_id)
    assert (mine.status, mine.size) == ("available", 1)
    report.append(
        f"cinder testbed: Nova + Cinder started in {clean.start_seconds:.1f} s "
        f"(Cinder alone {cinder.start_seconds:.1f} s after Nova), "
        f"{clean.memory_mb_used():.0f} MiB PSS"
    )


def volume_service_status(cloud: NovaCinderTestbed, host: str) -> str:
    """``enabled``/``disabled`` of the cinder-volume of ``host`` in ``GET /os-services``."""
    backend = cloud.cinder.backend(host)
    (found,) = [s["status"] for s in cloud.cinder.services() if s["host"] == backend]
    return str(found)


def test_os_services_enable_and_disable_of_cinder_29(clean: NovaCinderTestbed) -> None:
    """Cinder 29.0.0's ``PUT /os-services/disable`` and ``/enable`` answer 200 and change
    nothing (their handlers save the service without setting ``disabled``); only
    ``disable-log-reason`` disables. Pinned here: an upgrade that takes a storage host out
    of scheduling through this API would not."""
    cinder = clean.cinder
    body = {"host": "storage-2@fake", "binary": VOLUME}
    reply = cinder.request("PUT", "/os-services/disable", json=body)
    assert (reply.status_code, reply.json()["disabled"]) == (200, True)
    assert volume_service_status(clean, "storage-2") == "enabled"
    reason = {**body, "disabled_reason": "upgrade"}
    reply = cinder.request("PUT", "/os-services/disable-log-reason", json=reason)
    assert reply.status_code == 200, reply.text
    assert volume_service_status(clean, "storage-2") == "disabled"
    reply = cinder.request("PUT", "/os-services/enable", json=body)
    assert (reply.status_code, reply.json()["disabled"]) == (200, False)
    assert volume_service_status(clean, "storage-2") == "disabled"
    cinder.set_service_enabled("storage-2", True)  # the testbed's way: the database
    assert volume_service_status(clean, "storage-2") == "enabled"


def test_attached_volume_migrates_to_the_other_storage_host(
    clean: NovaCinderTestbed, report: list[str]
) -> None:
    cinder = clean.cinder
    (server_id,) = clean.nova.boot("compute-1", 1)
    volume_id = cinder.create_volume(host="storage-1")
    attach(clean, server_id, volume_id)
    volume = cinder.volume(volume_id)
    assert volume["os-vol-host-attr:host"] == "storage-1@fake#fake"
    assert cinder_attachments(volume) == [server_id]
    assert nova_attachments(clean, server_id) == [volume_id]

    started = time.monotonic()
    reply = cinder.migrate(volume_id, "storage-2")
    assert reply.status_code == 202, reply.text
    # Cinder makes the new volume on storage-2, asks Nova to swap it under the server, and
    # Nova completes the migration: the volume keeps its id and its server
    moved = cinder.wait_volume(
        volume_id,
        "in-use",
        migration_status="success",
        host="storage-2",
        timeout=MIGRATION_TIMEOUT_S,
    )
    seconds = time.monotonic() - started
    assert moved["os-vol-host-attr:host"] == "storage-2@fake#fake"
    assert moved["os-vol-mig-status-attr:migstat"] == "success"
    # Cinder marks the migration done a moment before it moves the attachment of the
    # temporary volume (the one Nova made) to the volume
    wait_for(
        lambda: cinder_attachments(cinder.volume(volume_id)) == [server_id],
        f"volume attached to {server_id} again",
    )
    assert nova_attachments(clean, server_id) == [volume_id]
    server = clean.nova.connect().compute.get_server(server_id)
    assert (server.status, server.task_state) == ("ACTIVE", None)
    # Cinder deletes the temporary volume (now the record of the source) in the background
    wait_for(
        lambda: (
            [(v["id"], cinder.volume_host(v)) for v in cinder.volumes()]
            == [(volume_id, "storage-2")]
        ),
        "one volume left, on storage-2",
    )
    report.append(
        f"cinder testbed: in-use volume migrated storage-1 -> storage-2 in {seconds:.1f} s"
    )


def test_available_volume_migration_copies_the_data(
    clean: NovaCinderTestbed, report: list[str]
) -> None:
    """Cinder's generic migration of a detached volume: the source host attaches both
    volumes and copies the data (the testbed's file driver: the volume's file)."""
    cinder = clean.cinder
    volume_id = cinder.create_volume(host="storage-1")
    source = cinder.volume_file(volume_id)
    with source.open("r+b") as data:
        data.seek(MARK_OFFSET)
        data.write(MARK)

    started = time.monotonic()
    reply = cinder.migrate(volume_id, "storage-2")
    assert reply.status_code == 202, reply.text
    moved = cinder.wait_volume(
        volume_id,
        "available",
        migration_status="success",
        host="storage-2",
        timeout=MIGRATION_TIMEOUT_S,
    )
    seconds = time.monotonic() - started
    assert moved["os-vol-host-attr:host"] == "storage-2@fake#fake"
    target = cinder.volume_file(volume_id)
    assert target.parent.parent.name == "storage-2"
    with target.open("rb") as data:
        data.seek(MARK_OFFSET)
        assert data.read(len(MARK)) == MARK
    assert target.stat().st_size == 1024**3
    # the source's copy goes with the temporary volume
    wait_for(lambda: not source.exists(), f"{source} deleted")
    wait_for(lambda: [v["id"] for v in cinder.volumes()] == [volume_id], "one volume left")
    report.append(
        f"cinder testbed: available volume migrated storage-1 -> storage-2 (data copied) "
        f"in {seconds:.1f} s"
    )


def test_volume_service_stops_and_starts_again(clean: NovaCinderTestbed, report: list[str]) -> None:
    cinder = clean.cinder
    (server_id,) = clean.nova.boot("compute-1", 1)
    volume_id = cinder.create_volume(host="storage-2")
    attach(clean, server_id, volume_id)

    started = time.monotonic()
    cinder.stop_service(VOLUME, "storage-2")
    assert not cinder.daemon(VOLUME, "storage-2").is_running
    cinder.wait_service_state(VOLUME, "storage-2", "down", timeout=3 * SERVICE_DOWN_TIME)
    down_after = time.monotonic() - started
    states = cinder.service_states()
    assert states[(VOLUME, "storage-2@fake")] == "down"
    assert states[(VOLUME, "storage-1@fake")] == "up"
    # a volume asked for meanwhile lands on the host that is up
    elsewhere = cinder.create_volume()
    assert cinder.volume_host(cinder.volume(elsewhere)) == "storage-1"

    cinder.start_service(VOLUME, "storage-2")
    assert cinder.service_states()[(VOLUME, "storage-2@fake")] == "up"
    # the attached volume kept its state, and storage-2 serves new volumes again
    volume = cinder.volume(volume_id)
    assert (volume["status"], cinder_attachments(volume)) == ("in-use", [server_id])
    again = cinder.create_volume(host="storage-2")
    assert cinder.volume(again)["status"] == "available"

    # a restart (stop, start, serving again) as an upgrade of the host does it
    old, new = cinder.restart(VOLUME, "storage-1")
    assert old != new
    assert cinder.service_states()[(VOLUME, "storage-1@fake")] == "up"
    assert nova_attachments(clean, server_id) == [volume_id]
    report.append(
        f"cinder testbed: a stopped cinder-volume shows down after {down_after:.1f} s "
        f"(service_down_time {SERVICE_DOWN_TIME} s)"
    )


def test_controller_services_restart(clean: NovaCinderTestbed, report: list[str]) -> None:
    """cinder-api and cinder-scheduler restarted (as an upgrade of the controller does):
    each serves again, and the scheduler learns the storage hosts' pools again."""
    cinder = clean.cinder
    for service in (API, SCHEDULER):
        started = time.monotonic()
        old, new = cinder.restart(service, "controller")
        assert old != new
        report.append(
            f"cinder testbed: {service} restarted and serving in {time.monotonic() - started:.1f} s"
        )
    assert cinder.pools() == ["storage-1@fake#fake", "storage-2@fake#fake"]
    volume_id = cinder.create_volume(host="storage-2")
    assert cinder.volume_host(cinder.volume(volume_id)) == "storage-2"
