"""Merging what several discovery sources say: later sources win, unknown never beats known."""

from __future__ import annotations

from typing import Any

from ephyra.inventory import catalog
from ephyra.inventory.model import (
    DOWN,
    UNKNOWN,
    UP,
    Endpoint,
    Inventory,
    Service,
    inventory,
    make_host,
    merge,
)


def _one(name: str, **kw: Any) -> Inventory:
    kw.setdefault("sources", ["a"])
    return inventory([make_host(name, **kw)], sources=kw["sources"])


def test_roles_services_and_sources_add_up() -> None:
    first = _one(
        "cmp-1",
        roles=["compute"],
        services=[Service("nova-compute", "compute", source="ansible:x")],
        sources=["ansible:x"],
    )
    second = _one(
        "cmp-1",
        roles=["gpu"],
        services=[Service("neutron-openvswitch-agent", "network", source="openstack:c")],
        sources=["openstack:c"],
    )
    host = merge([first, second]).host("cmp-1")
    assert host.roles == {"compute", "gpu"}
    assert [s.name for s in host.services] == ["neutron-openvswitch-agent", "nova-compute"]
    assert host.sources == {"ansible:x", "openstack:c"}
    assert merge([first, second]).sources == ("ansible:x", "openstack:c")


def test_the_later_source_wins_a_conflict() -> None:
    first = _one(
        "cmp-1",
        services=[Service("nova-compute", "compute", status=UP, version="1.0.0", source="a")],
        facts={"rack": "r1", "os": "debian"},
        servers=3,
    )
    second = _one(
        "cmp-1",
        services=[Service("nova-compute", "compute", status=DOWN, version="2.0.0", source="b")],
        facts={"rack": "r2"},
        servers=5,
    )
    host = merge([first, second]).host("cmp-1")
    (service,) = host.services
    assert (service.status, service.version, service.source) == (DOWN, "2.0.0", "a,b")
    assert host.fact == {"rack": "r2", "os": "debian"}
    assert host.servers == 5
    # and the other way round, the other one wins
    host = merge([second, first]).host("cmp-1")
    assert (host.services[0].status, host.services[0].version) == (UP, "1.0.0")
    assert host.fact["rack"] == "r1"
    assert host.servers == 3


def test_an_unknown_value_never_replaces_a_known_one() -> None:
    known = _one(
        "cmp-1",
        services=[Service("nova-compute", "compute", status=UP, version="1.0.0")],
        facts={"rack": "r1"},
        servers=4,
    )
    unknown = _one(
        "cmp-1",
        services=[Service("nova-compute", "", status=UNKNOWN, version="")],
        facts={"rack": None},
        servers=0,
    )
    host = merge([known, unknown]).host("cmp-1")
    (service,) = host.services
    assert (service.project, service.status, service.version) == ("compute", UP, "1.0.0")
    assert host.fact == {"rack": "r1"}
    assert host.servers == 4


def test_services_of_different_regions_stay_apart() -> None:
    one = _one("ctl-1", services=[Service("nova-api", "compute", region="r1", status=UP)])
    two = _one("ctl-1", services=[Service("nova-api", "compute", region="r2", status=DOWN)])
    host = merge([one, two]).host("ctl-1")
    assert [(s.region, s.status) for s in host.services] == [("r1", UP), ("r2", DOWN)]


def test_hosts_only_one_source_knows_are_kept_sorted() -> None:
    merged = merge([_one("b"), _one("c"), _one("a")])
    assert [h.name for h in merged.hosts] == ["a", "b", "c"]


def test_endpoints_merge_by_place_keeping_a_known_version() -> None:
    first = inventory(
        [], endpoints=[Endpoint("compute", "public", "R1", "http://old/v2.1", "2.90")]
    )
    second = inventory(
        [],
        endpoints=[
            Endpoint("compute", "public", "R1", "http://new/v2.1"),
            Endpoint("compute", "internal", "R1", "http://int/v2.1", "2.95"),
        ],
    )
    merged = merge([first, second])
    assert [(e.interface, e.url, e.version) for e in merged.endpoints] == [
        ("internal", "http://int/v2.1", "2.95"),
        ("public", "http://new/v2.1", "2.90"),
    ]


def test_inventory_facts_merge_key_by_key() -> None:
    nova = inventory([], facts={"absent": {"nova/R1": {"network": "no endpoint"}}})
    cp1 = inventory([], facts={"absent": {"cp1": {"compute": "no endpoint"}}, "x": 1})
    later = inventory([], facts={"x": None})
    merged = merge([nova, cp1, later])
    assert merged.fact == {
        "absent": {"nova/R1": {"network": "no endpoint"}, "cp1": {"compute": "no endpoint"}},
        "x": 1,
    }


def test_the_dict_form_round_trips() -> None:
    inv = inventory(
        [
            make_host(
                "cmp-1",
                roles=["compute"],
                services=[Service("nova-compute", "compute", "R1", UP, "1.0.0", "s")],
                facts={"os": {"name": "Debian"}},
                sources=["s"],
                servers=2,
            )
        ],
        endpoints=[Endpoint("compute", "public", "R1", "http://x", "2.95")],
        regions=["R1"],
        sources=["s"],
        facts={"absent": {"c": {"network": "none"}}},
    )
    assert Inventory.from_dict(inv.to_dict()) == inv


def test_roles_follow_from_well_known_services() -> None:
    assert catalog.roles_of(["nova-compute"]) == {"compute"}
    assert catalog.roles_of(["nova-conductor", "cinder-scheduler", "ironic-conductor"]) == {
        "controller"
    }
    assert catalog.roles_of(["neutron-l3-agent", "neutron-dhcp-agent"]) == {"network"}
    assert catalog.roles_of(["cinder-volume"]) == {"storage"}
    assert catalog.roles_of(["neutron-openvswitch-agent", "rabbitmq-server"]) == set()
    assert catalog.project_of("ironic-conductor") == "bare-metal"
    assert catalog.project_of("cinder-volume") == "block-storage"
    assert catalog.project_of("keystone") == "identity"
    assert catalog.project_of("rabbitmq-server") == ""


def test_facts_named_like_secrets_are_dropped_at_any_depth() -> None:
    facts = {
        "db_password": "x",
        "ansible_ssh_private_key_file": "/k",
        "apiToken": "t",
        "keystone_url": "http://k",
        "nested": {"admin_secret": "s", "rack": "r1"},
        "list": [{"vault_pass": "v", "ok": 1}],
    }
    assert catalog.public_facts(facts) == {
        "keystone_url": "http://k",
        "nested": {"rack": "r1"},
        "list": [{"ok": 1}],
    }
