"""Each server's fate against real Nova: what the tenant asks (a server's metadata or tag
``ephyra:maintenance``) and what its flavor allows is in the evacuation's plan, and the
drain does it: a server asked ``stop`` is stopped in place and started again by the
rollback, never migrated; one whose flavor forbids live migration, or that has a PCI
device passed through, is cold-migrated, whatever its owner asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testbed import pci
from testbed.nova import NovaTestbed
from testbed.nova_watch import migrations_of, wait_until
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional
MICROVERSION = "2.86"  # strict flavor extra specs (2.86), tags (2.26), embedded flavor (2.47)


@pytest.fixture
def ephyra(clean_nova: NovaTestbed, tmp_path: Path) -> Ephyra:
    return Ephyra(clean_nova.clouds_yaml, tmp_path / "state")


def server(nova: NovaTestbed, sid: str) -> dict[str, Any]:
    raw = nova.connect().compute.get(f"/servers/{sid}", microversion=MICROVERSION)
    found: dict[str, Any] = raw.json()["server"]
    return found


def flavor(nova: NovaTestbed, name: str, specs: dict[str, str]) -> str:
    """A flavor whose extra specs Nova accepted as valid."""
    compute = nova.connect().compute
    fid = nova.flavor(name)
    answer = compute.post(
        f"/flavors/{fid}/os-extra_specs", json={"extra_specs": specs}, microversion=MICROVERSION
    )
    assert answer.status_code == 200, answer.text
    return fid


def planned(ephyra: Ephyra, host: str) -> dict[str, dict[str, Any]]:
    shown = ephyra("--format", "json", "host", "plan", host, "--os-cloud", "nova")
    assert shown.code == 0, shown.err
    (planned_host,) = json.loads(shown.out)["hosts"]
    return {s["name"]: s for s in planned_host["servers"]}


def test_a_server_asked_stop_is_stopped_then_started_again_never_migrated(
    clean_nova: NovaTestbed, ephyra: Ephyra
) -> None:
    (stop,) = clean_nova.boot("compute-1", 1, name_prefix="db")
    (cold,) = clean_nova.boot("compute-1", 1, name_prefix="web")
    compute = clean_nova.connect().compute
    compute.post(
        f"/servers/{stop}/metadata",
        json={"metadata": {"ephyra:maintenance": "stop"}},
        microversion=MICROVERSION,
    )
    tagged = compute.put(f"/servers/{cold}/tags/ephyra:maintenance=cold", microversion="2.26")
    assert tagged.status_code in (201, 204), tagged.text
    plan = planned(ephyra, "compute-1")
    db, web = plan[server(clean_nova, stop)["name"]], plan[server(clean_nova, cold)["name"]]
    assert (db["fate"], db["by"], db["to"]) == ("stop", "metadata", None)
    assert (web["fate"], web["by"]) == ("cold", "tag") and web["to"] in ("compute-2", "compute-3")

    done = ephyra("host", "evacuate", "compute-1", "--os-cloud", "nova", "--yes")
    assert done.code == 0, done.err
    after = server(clean_nova, stop)
    assert (after["status"], after["OS-EXT-SRV-ATTR:host"]) == ("SHUTOFF", "compute-1")
    assert server(clean_nova, cold)["OS-EXT-SRV-ATTR:host"] != "compute-1"
    conn = clean_nova.connect()
    assert migrations_of(conn, cold) == [("migration", "confirmed")]

    back = ephyra("host", "rollback")
    assert back.code == 0, back.err
    wait_until(lambda: server(clean_nova, stop)["status"] == "ACTIVE", what="db ACTIVE again")
    assert server(clean_nova, stop)["OS-EXT-SRV-ATTR:host"] == "compute-1"
    assert migrations_of(conn, stop) == []  # never migrated, live or cold


def test_servers_nova_cannot_live_migrate_are_planned_cold_never_live(
    clean_nova: NovaTestbed, ephyra: Ephyra
) -> None:
    no_live = flavor(clean_nova, "no-live", {"ephyra:live_migration": "false"})
    (pinned,) = clean_nova.boot("compute-2", 1, flavor=no_live, name_prefix="pinned")
    web = server(clean_nova, pinned)
    assert web["flavor"]["extra_specs"] == {"ephyra:live_migration": "false"}  # embedded
    (shown,) = planned(ephyra, "compute-2").values()
    assert (shown["fate"], shown["asked"]) == ("cold", "live")
    assert "forbidden by its flavor (ephyra:live_migration=false)" in shown["why"]

    done = ephyra("host", "evacuate", "compute-2", "--os-cloud", "nova", "--yes")
    assert done.code == 0, done.err
    assert migrations_of(clean_nova.connect(), pinned) == [("migration", "confirmed")]


def test_a_server_with_pci_devices_is_planned_cold_never_live(
    clean_nova: NovaTestbed, ephyra: Ephyra
) -> None:
    """Its owner asks live; the PCI device passed through to it (each testbed compute has
    two) makes it cold, in the plan and in what Nova records."""
    nic = flavor(clean_nova, "pci", {"pci_passthrough:alias": f"{pci.ALIAS}:1"})
    (sid,) = clean_nova.boot("compute-3", 1, flavor=nic, name_prefix="nic")
    compute = clean_nova.connect().compute
    compute.post(
        f"/servers/{sid}/metadata",
        json={"metadata": {"ephyra:maintenance": "live"}},
        microversion=MICROVERSION,
    )
    (shown,) = planned(ephyra, "compute-3").values()
    assert (shown["fate"], shown["asked"], shown["by"]) == ("cold", "live", "metadata")
    assert f"PCI devices (pci_passthrough:alias={pci.ALIAS}:1)" in shown["why"]

    done = ephyra("host", "evacuate", "compute-3", "--os-cloud", "nova", "--yes")
    assert done.code == 0, done.err
    assert migrations_of(clean_nova.connect(), sid) == [("migration", "confirmed")]
    assert server(clean_nova, sid)["OS-EXT-SRV-ATTR:host"] in ("compute-1", "compute-2")
