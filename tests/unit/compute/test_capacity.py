from __future__ import annotations

from ephyra.compute.capacity import Need, Room, fit
from ephyra.compute.nova import Server


def need(sid: str, ram: int, vcpu: int = 1) -> Need:
    server = Server(sid, sid, "p", "ACTIVE", None, "src", ram, vcpu, 1)
    return Need(server, "src", {"MEMORY_MB": ram, "VCPU": vcpu, "DISK_GB": 1})


def room(host: str, ram: float, vcpu: float = 64, max_unit: float | None = None) -> Room:
    inv = {
        "MEMORY_MB": {
            "total": ram,
            "reserved": 0,
            "allocation_ratio": 1.0,
            "max_unit": max_unit or ram,
        },
        "VCPU": {"total": vcpu, "reserved": 0, "allocation_ratio": 1.0, "max_unit": vcpu},
        "DISK_GB": {"total": 100, "reserved": 0, "allocation_ratio": 1.0, "max_unit": 100},
    }
    return Room.from_placement(host, inv, {})


def test_room_from_placement_counts_reserved_ratio_and_usage() -> None:
    inv = {"VCPU": {"total": 16, "reserved": 2, "allocation_ratio": 4.0, "max_unit": 16}}
    r = Room.from_placement("h", inv, {"VCPU": 10})
    assert r.free["VCPU"] == (16 - 2) * 4.0 - 10
    assert r.holds({"VCPU": 16}) and not r.holds({"VCPU": 17})  # max_unit


def test_everything_fits_spread_by_free_memory() -> None:
    report = fit(
        [need("a", 4096), need("b", 4096), need("c", 2048)], [room("h2", 8192), room("h3", 6144)]
    )
    assert report.fits
    assert report.placed == {"a": "h2", "b": "h3", "c": "h2"}


def test_refusal_names_the_servers_and_the_numbers() -> None:
    report = fit(
        [need("a", 6000), need("b", 6000), need("c", 6000)], [room("h2", 8192), room("h3", 8192)]
    )
    assert not report.fits
    assert [n.server.id for n in report.unplaced] == ["c"]
    text = report.refusal()
    assert "18000/16384 MEMORY_MB" in text
    assert "h2 has free 8192 MEMORY_MB" in text
    assert "c (c) on src needs 6000 MEMORY_MB" in text


def test_no_room_at_all() -> None:
    report = fit([need("a", 1)], [])
    assert not report.fits
    assert "no other host is enabled" in report.refusal()
