"""Batches that keep to the cloud's topology, against real Nova: compute-1 and compute-2 in
availability zone az1, compute-3 in az2 (host aggregates), the servers of a soft
anti-affinity group on compute-1 and compute-3. The upgrade plans its compute batches from
what Nova lists: at most one host of a zone at once, never the hosts of anti-affine
servers together. While each host's upgrade command runs, Nova's services show it empty
and disabled and no host outside its batch disabled, and the first of a batch to get there
sees the whole batch disabled; Nova's migration records show that no server moved to a
host of its own batch (every compute of a batch is disabled before any server of the batch
moves). An evacuation of two hosts of one zone, at most one
of a zone at once, drains them one after the other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.nova import NovaTestbed
from tests.functional.ephyra_cli import Ephyra
from tests.functional.recording import recording_strategy

pytestmark = pytest.mark.functional

ZONES = {"compute-1": "az1", "compute-2": "az1", "compute-3": "az2"}
#: The upgrade command of each compute: which computes Nova shows disabled as it runs,
#: and how many servers are on its host.
PROBE = """\
import json, os, sys
import openstack

host, log, cloud = sys.argv[1], sys.argv[2], sys.argv[3]
compute = openstack.connect(cloud=cloud).compute
services = compute.get("/os-services?binary=nova-compute").json()["services"]
servers = compute.get("/servers/detail?all_tenants=1", microversion="2.80").json()["servers"]
with open(log, "a") as out:
    out.write(json.dumps({
        "host": host,
        "disabled": sorted(s["host"] for s in services if s["status"] == "disabled"),
        "servers": sum(1 for s in servers if s["OS-EXT-SRV-ATTR:host"] == host),
    }) + "\\n")
"""


def _zones(nova: NovaTestbed) -> None:
    compute = nova.connect().compute
    for zone in sorted(set(ZONES.values())):
        aggregate = compute.create_aggregate(name=f"zone-{zone}", availability_zone=zone)
        for host in sorted(h for h, z in ZONES.items() if z == zone):
            compute.add_host_to_aggregate(aggregate, host)


def _spec(nova: NovaTestbed, tmp_path: Path) -> tuple[Path, Path]:
    probe, log = recording_strategy(PROBE, tmp_path, ZONES, nova.cloud)
    spec = tmp_path / "upgrade.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "release": "1.0.0",
                "strategies": {"probe": probe},
                "strategy": "probe",
                "roles": {
                    "controller": {"apply": "ignore"},  # the computes only
                    "compute": {
                        "apply": "parallel",
                        "max_at_once": 2,
                        "per_domain": {"zone": 1},
                        "drain": True,
                    },
                },
                "gates": {"services_up": False},
                "availability": {"interval": 0},
                "evacuation": {"concurrency": 4, "per_host": 2, "max_per_group": 0},
            }
        )
    )
    return spec, log


def _migrations(nova: NovaTestbed, servers: list[str]) -> list[dict[str, Any]]:
    found = nova.connect().compute.get("/os-migrations", microversion="2.80").json()
    return [m for m in found["migrations"] if m["instance_uuid"] in servers]


def test_compute_batches_keep_zones_and_anti_affinity_apart_and_disable_first(
    clean_nova: NovaTestbed, tmp_path: Path
) -> None:
    nova = clean_nova
    _zones(nova)
    group = nova.server_group("web", policy="soft-anti-affinity")
    web = [nova.boot(host, 1, group=group, zone=None)[0] for host in ("compute-1", "compute-3")]
    other = nova.boot("compute-2", 1, zone=None)
    spec, log = _spec(nova, tmp_path)
    ephyra = Ephyra(nova.clouds_yaml, tmp_path / "state")
    args = ["--spec", str(spec), "--source", "openstack", "--os-cloud", nova.cloud]

    planned = ephyra("--format", "json", "upgrade", "plan", *args)
    assert planned.code == 0, planned.err
    (stage,) = [s for s in json.loads(planned.out)["stages"] if s["role"] == "compute"]
    batches = [[u["host"] for u in b["units"]] for b in stage["batches"]]
    assert batches == [["compute-1"], ["compute-2", "compute-3"]]
    shown = ephyra("upgrade", "plan", *args)
    assert "batches keep at most 1 per zone; anti-affine servers' hosts apart" in shown.out

    started = ephyra("upgrade", "start", *args, timeout=600)
    assert started.code == 0, started.out + started.err

    # as each host's upgrade ran: the host empty, disabled, and no host outside its batch
    # disabled; the first of a batch to get there saw the whole batch disabled (each host
    # leaves maintenance when its own unit ends)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    seen = {e["host"]: e for e in entries}
    batch_of = {h: i for i, hosts in enumerate(batches) for h in hosts}
    assert {h: seen[h]["servers"] for h in ZONES} == dict.fromkeys(ZONES, 0)
    for entry in entries:
        mine = {h for h in ZONES if batch_of[h] == batch_of[entry["host"]]}
        assert entry["host"] in entry["disabled"] and set(entry["disabled"]) <= mine, entry
        zones = [ZONES[h] for h in entry["disabled"]]  # never two hosts of a zone,
        assert len(zones) == len(set(zones)), entry  # nor the anti-affine hosts
        assert not {"compute-1", "compute-3"} <= set(entry["disabled"]), entry
    first = next(e for e in entries if e["host"] in ("compute-2", "compute-3"))
    assert first["disabled"] == ["compute-2", "compute-3"], entries

    # Nova's migration records: no server moved to a host of its own batch
    moved = _migrations(nova, [*web, *other])
    sources = {m["source_compute"] for m in moved}
    assert sources == set(ZONES), moved
    for migration in moved:
        assert migration["status"] in ("completed", "confirmed"), migration
        source, dest = migration["source_compute"], migration["dest_compute"]
        assert batch_of[dest] != batch_of[source], migration
    services = nova.connect().compute.get("/os-services?binary=nova-compute").json()
    assert {s["status"] for s in services["services"]} == {"enabled"}
    nova.wait_servers([*web, *other], status="ACTIVE")


def test_an_evacuation_drains_one_host_of_a_zone_at_a_time(
    clean_nova: NovaTestbed, tmp_path: Path
) -> None:
    """``ephyra host evacuate`` of compute-1 and compute-2 (both of az1) with at most one
    host of a zone at once: both servers go to compute-3, and compute-2's moves only once
    compute-1's move ended (Nova's migration records)."""
    nova = clean_nova
    _zones(nova)
    first = nova.boot("compute-1", 1, zone=None)
    second = nova.boot("compute-2", 1, zone=None)
    ephyra = Ephyra(nova.clouds_yaml, tmp_path / "state")
    args = ["compute-1", "compute-2", "--os-cloud", nova.cloud, "--hosts-per-zone", "1"]

    planned = ephyra("--format", "json", "host", "plan", *args)
    assert planned.code == 0, planned.err
    assert json.loads(planned.out)["batches"] == [["compute-1"], ["compute-2"]]
    done = ephyra("host", "evacuate", *args, "--yes", timeout=600)
    assert done.code == 0, done.out + done.err

    (one,) = _migrations(nova, first)
    (two,) = _migrations(nova, second)
    assert (one["dest_compute"], two["dest_compute"]) == ("compute-3", "compute-3")
    assert one["updated_at"] <= two["created_at"], (one, two)
    services = nova.connect().compute.get("/os-services?binary=nova-compute").json()
    disabled = {s["host"] for s in services["services"] if s["status"] == "disabled"}
    assert disabled == {"compute-1", "compute-2"}  # in maintenance until rollback
