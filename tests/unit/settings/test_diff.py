"""The document's objects and their diff against a cloud's: stable text, keys by name,
every change in dependency order, deletes only when pruning, a section the document
lacks left alone."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ephyra.errors import UsageError
from ephyra.settings.diff import CREATE, DELETE, UPDATE, Change, diff
from ephyra.settings.document import (
    ORDER,
    document_of,
    dumps,
    loads,
    objects_of,
    sections_of,
)

DOC: dict[str, Any] = {
    "ephyra_settings": 1,
    "source": "a",
    "identity": {
        "domains": [{"name": "Default", "description": "", "enabled": True}],
        "projects": [
            {
                "domain": "Default",
                "name": "p1",
                "description": "",
                "enabled": True,
                "parent": "",
                "tags": ["t"],
            }
        ],
        "roles": [{"name": "member", "description": ""}],
        "users": [
            {"domain": "Default", "name": "u1", "enabled": True, "email": "", "description": ""}
        ],
        "groups": [
            {"domain": "Default", "name": "g1", "description": "", "members": ["Default/u1"]}
        ],
        "assignments": [
            {"role": "member", "group": "Default/g1", "domain": "Default", "inherited": True},
            {"role": "member", "user": "Default/u1", "project": "Default/p1", "inherited": False},
        ],
    },
    "compute": {
        "flavors": [
            {
                "name": "f1",
                "vcpus": 2,
                "ram": 512,
                "disk": 1,
                "ephemeral": 0,
                "swap": 0,
                "is_public": False,
                "extra_specs": {"hw:cpu_policy": "dedicated"},
                "access": ["Default/p1"],
            }
        ],
        "default_quotas": {"cores": 20, "instances": 10},
        "quotas": {"Default/p1": {"cores": 7, "instances": 3}},
        "aggregates": [{"name": "ag", "availability_zone": "az1", "metadata": {"ssd": "true"}}],
        "server_groups": [],
    },
    "placement": {"resource_classes": ["CUSTOM_GPU"], "traits": ["CUSTOM_FAST"]},
    "network": {
        "network_types": ["vxlan"],
        "networks": [
            {
                "name": "shared",
                "project": "Default/p1",
                "shared": True,
                "external": False,
                "mtu": 1450,
                "network_type": "vxlan",
                "physical_network": "",
                "segmentation_id": None,
                "subnets": [
                    {
                        "cidr": "10.0.0.0/24",
                        "name": "s",
                        "ip_version": 4,
                        "gateway": "10.0.0.1",
                        "dhcp": True,
                        "pools": ["10.0.0.2-10.0.0.254"],
                    }
                ],
            }
        ],
    },
}
SECTIONS = {"identity", "compute", "placement", "network"}


def test_a_document_read_back_from_its_objects_is_the_same_text() -> None:
    objects, kinds = objects_of(DOC)
    assert sections_of(kinds) == SECTIONS and kinds == set(ORDER)
    again = document_of(objects, SECTIONS, "a", ["vxlan"])
    assert dumps(again) == dumps(DOC)
    assert loads(dumps(DOC, "json")) == loads(dumps(DOC))


def test_objects_are_keyed_by_names() -> None:
    objects, _ = objects_of(DOC)
    assert set(objects["project"]) == {"Default p1"}
    assert set(objects["flavor_access"]) == {"f1 Default/p1"}
    assert set(objects["subnet"]) == {"shared 10.0.0.0/24"}
    assert set(objects["assignment"]) == {
        "member user Default/u1 project Default/p1 direct",
        "member group Default/g1 domain Default inherited",
    }


def test_everything_missing_is_created_in_dependency_order() -> None:
    wanted, kinds = objects_of(DOC)
    changes = diff(wanted, {k: {} for k in ORDER}, kinds)
    assert {c.action for c in changes} == {CREATE}
    kinds = [c.kind for c in changes]
    assert kinds == sorted(kinds, key=ORDER.index)
    assert kinds.index("domain") < kinds.index("project") < kinds.index("assignment")
    assert kinds.index("flavor") < kinds.index("flavor_access") < kinds.index("quota")
    assert kinds.index("network") < kinds.index("subnet")


def test_the_same_objects_make_no_change() -> None:
    wanted, kinds = objects_of(DOC)
    assert diff(wanted, copy.deepcopy(wanted), kinds, prune=True) == []


def test_an_update_names_each_field_with_its_old_and_new_value() -> None:
    wanted, kinds = objects_of(DOC)
    have = copy.deepcopy(wanted)
    have["flavor"]["f1"]["extra_specs"] = {}
    have["aggregate"]["ag"]["availability_zone"] = "az0"
    changes = diff(wanted, have, kinds)
    assert [c.said() for c in changes] == [
        'update flavor f1: extra_specs {} -> {"hw:cpu_policy": "dedicated"}',
        "update aggregate ag: availability_zone az0 -> az1",
    ]
    assert changes[0].fields == ("extra_specs",) and changes[0].action == UPDATE


def test_deletes_come_only_with_prune_last_and_in_reverse_order() -> None:
    wanted, kinds = objects_of(DOC)
    have = copy.deepcopy(wanted)
    extra = {
        "name": "old",
        "project": "",
        "shared": True,
        "external": False,
        "mtu": None,
        "network_type": "",
        "physical_network": "",
        "segmentation_id": None,
    }
    have["network"]["old"] = extra
    have["subnet"]["old 10.9.0.0/24"] = {"network": "old", "cidr": "10.9.0.0/24"}
    have["trait"]["CUSTOM_GONE"] = {"name": "CUSTOM_GONE"}
    have["quota"]["Default/other"] = {"project": "Default/other", "cores": 1}
    have["flavor"]["f1"]["ram"] = 256
    assert [c.action for c in diff(wanted, have, kinds)] == [UPDATE]
    pruned = diff(wanted, have, kinds, prune=True)
    assert [(c.action, c.kind) for c in pruned] == [
        (UPDATE, "flavor"),
        (DELETE, "subnet"),
        (DELETE, "network"),
        (DELETE, "trait"),
    ]  # quotas are never deleted
    assert pruned[1].before == have["subnet"]["old 10.9.0.0/24"] and pruned[1].after is None


def test_a_section_the_document_lacks_is_left_alone() -> None:
    doc = {k: v for k, v in DOC.items() if k != "network"}
    wanted, kinds = objects_of(doc)
    have, _ = objects_of(DOC)
    have["network"]["more"] = {**have["network"]["shared"], "name": "more"}
    assert diff(wanted, have, kinds, prune=True) == []


def test_a_change_survives_the_journal() -> None:
    wanted, kinds = objects_of(DOC)
    change = diff(wanted, {k: {} for k in ORDER}, kinds)[0]
    assert Change.from_dict(change.to_dict()) == change


@pytest.mark.parametrize(
    "bad",
    [
        {"ephyra_settings": 2},
        {"ephyra_settings": 1, "flavors": []},
        {"ephyra_settings": 1, "compute": []},
        "just text",
    ],
)
def test_what_is_not_a_document_of_this_version_is_refused(bad: Any) -> None:
    with pytest.raises(UsageError):
        loads(dumps(bad) if isinstance(bad, dict) else bad)


def test_a_project_is_made_after_its_parent_and_deleted_before_it() -> None:
    def project(name: str, parent: str = "") -> dict[str, Any]:
        return {
            "domain": "D",
            "name": name,
            "description": "",
            "enabled": True,
            "parent": parent,
            "tags": [],
        }

    tree = {
        "D a-child": project("a-child", "z-top"),
        "D z-top": project("z-top"),
        "D b-grandchild": project("b-grandchild", "a-child"),
    }
    made = diff({"project": tree}, {}, {"project"})
    assert [c.key for c in made] == ["D z-top", "D a-child", "D b-grandchild"]
    gone = diff({}, {"project": tree}, {"project"}, prune=True)
    assert [c.key for c in gone] == ["D b-grandchild", "D a-child", "D z-top"]


def test_a_list_the_document_leaves_out_is_neither_compared_nor_pruned() -> None:
    doc = copy.deepcopy(DOC)
    del doc["compute"]["aggregates"]
    wanted, kinds = objects_of(doc)
    assert "aggregate" not in kinds and "flavor" in kinds
    have, _ = objects_of(DOC)
    have["aggregate"]["more"] = {**have["aggregate"]["ag"], "name": "more"}
    assert diff(wanted, have, kinds, prune=True) == []


@pytest.mark.parametrize(
    "section",
    [
        {"compute": {"flavors": ["m1.small"]}},
        {"compute": {"quotas": {"Default/p": {"cores": "many"}}}},
        {"network": {"networks": [{"name": "n", "subnets": "10.0.0.0/24"}]}},
        {"identity": {"assignments": [{"role": "member", "project": "Default/p"}]}},
    ],
)
def test_a_document_of_the_wrong_shape_is_bad_input(section: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match="settings document"):
        objects_of({"ephyra_settings": 1, **section})
