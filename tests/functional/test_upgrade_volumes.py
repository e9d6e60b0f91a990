"""An upgrade of storage hosts against a real Cinder (two cinder-volumes, storage-1 and
storage-2) and the Nova its volumes are attached to, planned from what their APIs list:
each host's volumes are moved to the other by Cinder's own migration before its upgrade
command runs (the empty host first), and again before its downgrade on rollback, within
the budget, and the
volumes attached to a server stay attached to it and in use. A run killed -9 while the
volumes move is resumed by a new process, and no volume's move is asked for twice."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.cinder import NovaCinderTestbed
from tests.functional.ephyra_cli import Ephyra
from tests.functional.recording import recording_strategy

pytestmark = pytest.mark.functional

HOSTS = ("storage-1", "storage-2")
#: The upgrade and downgrade command of each storage host: what Cinder has on the host as
#: it runs.
PROBE = """\
import json, os, sys
import openstack

host, log, cloud = sys.argv[1], sys.argv[2], sys.argv[3]
conn = openstack.connect(cloud=cloud)
found = conn.block_storage.get(
    "/volumes/detail?all_tenants=1", microversion="3.60"
).json()["volumes"]
here = [v["id"] for v in found if v["os-vol-host-attr:host"].split("@")[0] == host]
with open(log, "a") as out:
    out.write(json.dumps({"host": host, "volumes": here}) + "\\n")
"""


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NovaCinderTestbed]:
    with NovaCinderTestbed(tmp_path_factory.mktemp("nova-cinder"), computes=1) as bed:
        yield bed


@dataclass(frozen=True)
class Storage:
    """An upgrade of the storage hosts whose upgrade and downgrade command logs what Cinder
    has on the host as it runs."""

    ephyra: Ephyra
    args: list[str]
    log: Path

    def seen(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def versions(self) -> dict[str, str]:
        return {host: Path(f"{self.log}.{host}").read_text() for host in HOSTS}


def storage_upgrade(cloud: NovaCinderTestbed, tmp_path: Path) -> Storage:
    probe, log = recording_strategy(PROBE, tmp_path, HOSTS, cloud.nova.cloud)
    spec = tmp_path / "upgrade.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "release": "1.0.0",
                "strategies": {"probe": probe},
                "strategy": "probe",
                # the storage hosts only: the controller and the compute stay as they are
                "roles": {
                    "storage": {"max_at_once": 1},
                    "controller": {"max_at_once": 0},
                    "compute": {"max_at_once": 0},
                },
                "gates": {"services_up": False},
                "availability": {"interval": 0},
                "volume_evacuation": {"concurrency": 2, "per_pool": 2, "timeout": 300},
            }
        )
    )
    ephyra = Ephyra(cloud.nova.clouds_yaml, tmp_path / "state")
    args = ["--spec", str(spec), "--source", "openstack", "--os-cloud", cloud.nova.cloud]
    return Storage(ephyra, args, log)


EMPTY = [{"host": "storage-1", "volumes": []}, {"host": "storage-2", "volumes": []}]


def test_each_storage_hosts_volumes_move_off_before_its_upgrade_and_stay_attached(
    cloud: NovaCinderTestbed, tmp_path: Path
) -> None:
    cinder = cloud.cinder
    (server,) = cloud.nova.boot("compute-1", 1)
    volumes = [cinder.create_volume(host="storage-1", name=f"data-{i}") for i in range(3)]
    for volume in volumes[:2]:
        reply = cloud.nova.connect("demo").compute.post(
            f"/servers/{server}/os-volume_attachments",
            json={"volumeAttachment": {"volumeId": volume}},
        )
        assert reply.status_code == 200, reply.text
        cinder.wait_volume(volume, "in-use")

    up = storage_upgrade(cloud, tmp_path)
    ephyra, args = up.ephyra, up.args
    planned = ephyra("--format", "json", "upgrade", "plan", *args)
    assert planned.code == 0, planned.err
    units = [u for s in json.loads(planned.out)["stages"] for b in s["batches"] for u in b["units"]]
    moving = {u["host"]: u["volumes"] for u in units if u.get("move_volumes")}
    assert moving == {"storage-1": 3, "storage-2": 0}
    shown = ephyra("upgrade", "plan", *args)
    assert "storage-1 [move 3 volume(s);" in shown.out, shown.out
    started = ephyra("upgrade", "start", *args, timeout=900)
    assert started.code == 0, started.out + started.err

    # the empty storage-2 first; storage-1 emptied (to storage-2) when its upgrade ran
    assert up.seen() == EMPTY[::-1]
    for volume in volumes:
        shown = cinder.volume(volume)
        assert cinder.volume_host(shown) == "storage-2"
        migrated = shown.get("migration_status") or shown["os-vol-mig-status-attr:migstat"]
        assert migrated == "success"
    for volume in volumes[:2]:
        shown = cinder.volume(volume)
        assert shown["status"] == "in-use"
        assert [a["server_id"] for a in shown["attachments"]] == [server]
    assert cinder.volume(volumes[2])["status"] == "available"
    status = json.loads(ephyra("upgrade", "status", "--format", "json").out)
    assert status["state"] == "succeeded"

    back = ephyra("upgrade", "rollback", timeout=900)
    assert back.code == 0, back.out + back.err
    # newest first: storage-1 (empty), then storage-2 emptied (to storage-1) before its
    # downgrade
    assert up.seen()[2:] == EMPTY
    assert up.versions() == dict.fromkeys(HOSTS, "0.9.0")
    for volume in volumes:
        assert cinder.volume_host(cinder.volume(volume)) == "storage-1"
    for volume in volumes[:2]:
        shown = cinder.volume(volume)
        assert shown["status"] == "in-use"
        assert [a["server_id"] for a in shown["attachments"]] == [server]


def test_a_run_killed_while_volumes_move_resumes_without_asking_twice(
    cloud: NovaCinderTestbed, tmp_path: Path
) -> None:
    cinder = cloud.cinder
    volumes = [cinder.create_volume(host="storage-1", name=f"kill-{i}") for i in range(3)]
    up = storage_upgrade(cloud, tmp_path)
    run = up.ephyra.background("upgrade", "start", *up.args)
    run.wait_for(lambda line: bool(re.search(r"storage-1: volume kill-\d .* to storage-2", line)))
    run.kill()  # a move asked for, recorded, and under way in Cinder

    resumed = up.ephyra("upgrade", "resume", timeout=900)
    assert resumed.code == 0, resumed.out + resumed.err
    assert up.seen() == EMPTY[::-1]
    asked = (cinder.logs / "cinder-api.log").read_text()
    # each volume moved off storage-1 (the empty storage-2 went first): asked once
    posts = {v: len(re.findall(f"POST \\S+/volumes/{v}/action", asked)) for v in volumes}
    assert posts == dict.fromkeys(volumes, 1)
    for volume in volumes:
        shown = cinder.volume(volume)
        assert (cinder.volume_host(shown), shown["status"]) == ("storage-2", "available")
