"""Each server's fate from what Nova says of it (its embedded flavor, its image's
properties, its metadata and tags), and the drain carrying it out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ephyra.compute import fate
from ephyra.compute.budget import Fallback, Settings
from ephyra.compute.drain import HostRecord
from ephyra.compute.fate import Fate
from ephyra.compute.nova import Server
from ephyra.compute.steps import BackInService, HostContext
from ephyra.engine.control import Control
from ephyra.errors import UsageError
from tests.unit.compute.fake_nova import FakeCloud
from tests.unit.compute.test_drain import FAST, drain


def server(status: str = "ACTIVE", **kw: Any) -> Server:
    return Server("s1", "vm", "p", status, None, "h1", 512, 1, 1, **kw)


def decided(s: Server, image: dict[str, Any] | None = None, **settings: Any) -> fate.Decision:
    return fate.decide(s, image or {}, Settings(**settings))


def test_nova_fields_are_read_from_the_servers_api() -> None:
    raw = {
        "id": "s1",
        "status": "ACTIVE",
        "flavor": {"ram": 512, "extra_specs": {"hw:cpu_policy": "dedicated"}},
        "image": {"id": "img", "links": []},
        "tags": ["ephyra:maintenance=stop"],
        "metadata": {"role": "db"},
    }
    s = Server.from_api(raw)
    assert s.extra_specs == {"hw:cpu_policy": "dedicated"}
    assert (s.image, s.tags, s.metadata) == ("img", ("ephyra:maintenance=stop",), {"role": "db"})
    assert Server.from_api({**raw, "image": ""}).image == ""  # booted from a volume


@pytest.mark.parametrize(
    ("specs", "image", "reason"),
    [
        ({"pci_passthrough:alias": "nic:1"}, {}, "PCI devices"),
        ({"resources:VGPU": "1"}, {}, "vGPU"),
        ({"resources1:VGPU": "1"}, {}, "vGPU"),
        ({"hw:cpu_policy": "dedicated"}, {}, "pinned CPUs"),
        ({}, {"hw_cpu_policy": "dedicated"}, "pinned CPUs (image"),
        ({"ephyra:live_migration": "false"}, {}, "forbidden by its flavor"),
        ({}, {"ephyra:live_migration": "No"}, "forbidden by its image"),
    ],
)
def test_what_nova_cannot_live_migrate_is_planned_by_the_fallback(
    specs: dict[str, str], image: dict[str, Any], reason: str
) -> None:
    d = decided(server(extra_specs=specs), image)
    assert d.fate == "cold" and d.asked is Fate.LIVE
    assert reason in d.why and "fallback cold" in d.why
    assert decided(server(extra_specs=specs), image, fallback=Fallback.SKIP).fate == "skip"
    assert decided(server(extra_specs=specs), image, fallback=Fallback.STOP).fate == "stop"


def test_a_plain_server_is_live_migrated_and_shared_or_local_disks_do_not_matter() -> None:
    d = decided(server(extra_specs={"hw:cpu_policy": "shared", "ephyra:live_migration": "yes"}))
    assert (d.fate, d.why, d.blockers, d.by) == ("live", "", (), "default")


def test_the_owner_asks_by_metadata_or_tag_the_metadata_first() -> None:
    d = decided(server(metadata={"ephyra:maintenance": "stop"}, tags=("ephyra:maintenance=cold",)))
    assert (d.fate, d.by) == ("stop", "metadata")
    d = decided(server(tags=("web", "ephyra:maintenance=notify")))
    assert (d.fate, d.by) == ("notify", "tag")
    assert decided(server(tags=("ephyra:maintenance=leave",))).fate == "notify"
    assert decided(server(metadata={"ephyra:maintenance": "Cold"})).fate == "cold"


def test_a_value_not_understood_keeps_the_operators_default_and_says_so() -> None:
    d = decided(server(metadata={"ephyra:maintenance": "later"}), fate=Fate.COLD)
    assert (d.fate, d.by) == ("cold", "default")
    assert "ephyra:maintenance='later' not understood" in d.why


def test_the_operators_default_applies_to_servers_that_ask_nothing() -> None:
    assert decided(server(), fate=Fate.STOP).fate == "stop"
    assert decided(server(tags=("ephyra:maintenance=live",)), fate=Fate.STOP).fate == "live"


def test_a_pci_server_asked_live_is_never_planned_live() -> None:
    pci = server(extra_specs={"pci_passthrough:alias": "nic:1"}, tags=("ephyra:maintenance=live",))
    d = decided(pci)
    assert (d.fate, d.asked, d.by) == ("cold", Fate.LIVE, "tag")
    assert d.blockers == ("PCI devices (pci_passthrough:alias=nic:1)",)


def test_stopped_servers_and_servers_in_error() -> None:
    assert decided(server("SHUTOFF")).fate == "cold"  # Nova live-migrates running ones only
    d = decided(server("SHUTOFF", metadata={"ephyra:maintenance": "stop"}))
    assert (d.fate, d.why) == ("stop", "stopped already: stays stopped")
    assert decided(server("ERROR"), fate=Fate.COLD).fate == "error"


def test_a_host_down_and_fenced_is_evacuated_whatever_was_asked() -> None:
    asked_stop = server(metadata={"ephyra:maintenance": "stop"})
    d = fate.decide(asked_stop, {}, Settings(), evacuating=True)
    assert d.fate == "evacuate" and "down and fenced" in d.why
    assert fate.decide(server(), {}, Settings(), evacuating=True).why == ""


def test_a_host_that_keeps_no_server_cold_migrates_those_asking_to_stay() -> None:
    d = decided(server(metadata={"ephyra:maintenance": "stop"}), keep=False)
    assert d.fate == "cold" and "no server stays" in d.why


def test_the_migration_timeout_is_the_flavors_then_the_images() -> None:
    both = server(extra_specs={"ephyra:migration_timeout": "90"})
    assert decided(both, {"ephyra:migration_timeout": "30"}).timeout == 90.0
    assert decided(server(), {"ephyra:migration_timeout": 30}).timeout == 30.0
    bad = server(extra_specs={"ephyra:migration_timeout": "soon"})
    assert decided(bad, {"ephyra:migration_timeout": "-1"}).timeout is None


def test_an_unknown_default_fate_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'later' is none of live, cold, stop, notify"):
        Fate.parse("later")


# -- the drain carries the fates out -------------------------------------------------------
def test_a_server_asked_stop_is_stopped_in_place_never_migrated() -> None:
    cloud = FakeCloud(["h1", "h2"])
    cloud.add("db", "h1")
    cloud.servers["db"] = replace(cloud.servers["db"], metadata={"ephyra:maintenance": "stop"})
    cloud.add("web", "h1")
    result, _, record = drain(cloud, Settings(**FAST))
    assert ("stop", "db") in cloud.calls and ("live", "db") not in cloud.calls
    assert cloud.servers["db"].host == "h1" and cloud.servers["db"].status == "SHUTOFF"
    entry = record["servers"]["db"]
    assert (entry["outcome"], entry["fate"], entry["stopped_by_run"]) == ("stopped", "stop", True)
    assert result.moved == 1 and not result.stuck


def test_a_server_asked_notify_is_left_running_and_reported() -> None:
    cloud = FakeCloud(["h1", "h2"])
    cloud.add("lab", "h1")
    cloud.servers["lab"] = replace(cloud.servers["lab"], tags=("ephyra:maintenance=notify",))
    result, _, record = drain(cloud, Settings(**FAST))
    assert cloud.calls == [] and cloud.servers["lab"].status == "ACTIVE"
    assert record["servers"]["lab"]["outcome"] == "left" and not result.stuck
    assert "left running on h1" in result.left["lab (lab)"]


def test_a_pci_server_is_cold_migrated_without_trying_live_first() -> None:
    cloud = FakeCloud(["h1", "h2"])
    cloud.add("nic", "h1")
    specs = {"pci_passthrough:alias": "nic:1"}
    cloud.servers["nic"] = replace(cloud.servers["nic"], extra_specs=specs)
    result, _, record = drain(cloud, Settings(**FAST))
    assert [c for c, _ in cloud.calls] == ["cold", "confirm"]
    assert record["servers"]["nic"]["fate"] == "cold" and result.moved == 1


def test_a_servers_own_timeout_bounds_its_move() -> None:
    cloud = FakeCloud(["h1", "h2"])
    cloud.add("slow", "h1")
    cloud.stuck.add("slow")
    cloud.images["img"] = {"ephyra:migration_timeout": "0.02"}
    cloud.servers["slow"] = replace(cloud.servers["slow"], image="img")
    result, _, _ = drain(cloud, Settings(**{**FAST, "migration_timeout": 600.0}))
    assert [c for c, _ in cloud.calls] == ["live", "abort", "cold", "confirm"]
    assert result.moved == 1


def test_the_host_back_in_service_starts_what_either_drain_stopped_once() -> None:
    cloud = FakeCloud(["h1", "h2"])
    for sid in ("a", "b", "off"):
        cloud.add(sid, "h1", status="SHUTOFF")
    own: dict[str, Any] = {"servers": {"a": {"stopped_by_run": True}, "off": {}}}
    earlier: dict[str, Any] = {"servers": {"b": {"stopped_by_run": True}}}
    records = [HostRecord(lambda d=d: d, lambda saved: None) for d in (own, earlier)]
    ctx = HostContext("r1", cloud, "h1", records[0], Control(), drain=lambda: None)  # type: ignore[arg-type,return-value]
    step = BackInService(ctx, also=(records[1],))
    step.apply()
    step.apply()  # again after a crash: nothing started twice
    assert sorted(c for c in cloud.calls if c[0] == "start") == [("start", "a"), ("start", "b")]
    assert cloud.servers["off"].status == "SHUTOFF"
