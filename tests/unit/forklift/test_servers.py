"""The server a node carries: what the forklift keeps of it and the request that boots it
again on the same node, from answers shaped as Nova's (2.95)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ephyra.errors import EphyraError, StepFailed
from ephyra.forklift.servers import MICROVERSION, BootIds, ServerRecord, Servers, custom_class

NODE = "5dfdc7b2-28eb-49f4-b09c-2082587e4e95"
SERVER: dict[str, Any] = {
    "id": "84e22e29-3c1f-429c-94f2-0826d3120ae9",
    "name": "web-0",
    "tenant_id": "p-acme",
    "status": "ACTIVE",
    "flavor": {"original_name": "bm.small", "vcpus": 1, "ram": 1024, "disk": 1},
    "image": {"id": "img-1"},
    "key_name": "ops",
    "metadata": {"role": "web"},
    "addresses": {"provisioning": [], "tenant": []},
    "config_drive": "True",
    "OS-EXT-SRV-ATTR:hypervisor_hostname": NODE,
    "OS-EXT-SRV-ATTR:host": "ironic-a",
}


class Answer:
    def __init__(self, status: int, body: Any = None) -> None:
        self.status_code = status
        self.content = b"" if body is None else json.dumps(body).encode()
        self.headers: dict[str, str] = {}
        self.reason = ""
        self.url = "http://nova"
        self.text = self.content.decode()

    def json(self) -> Any:
        return json.loads(self.content)


class Proxy:
    """Answers by (verb, path); records each call with its microversion."""

    def __init__(self, answers: dict[tuple[str, str], Answer]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, str | None]] = []

    def __getattr__(self, verb: str) -> Any:
        def call(path: str, json: Any = None, raise_exc: bool = True, **extra: Any) -> Answer:
            self.calls.append((verb, path, extra.get("microversion")))
            return self.answers.get((verb, path), Answer(404, {"itemNotFound": {}}))

        return call


class Conn:
    def __init__(
        self,
        compute: Proxy,
        image: Proxy | None = None,
        placement: Proxy | None = None,
        network: Proxy | None = None,
    ) -> None:
        self.compute = compute
        self.image = image or Proxy({})
        self.placement = placement or Proxy({})
        self.network = network or Proxy({})


def test_the_record_keeps_what_a_new_server_needs_and_round_trips() -> None:
    record = ServerRecord.of(SERVER, "ubuntu", ("web", "anti-affinity"))
    assert record == ServerRecord(
        id=SERVER["id"],
        name="web-0",
        project_id="p-acme",
        flavor="bm.small",
        image_id="img-1",
        image_name="ubuntu",
        status="ACTIVE",
        key_name="ops",
        metadata={"role": "web"},
        group="web",
        group_policy="anti-affinity",
        networks=("provisioning", "tenant"),
        config_drive=True,
    )
    assert ServerRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_a_server_booted_from_a_volume_has_no_image_and_names_its_volumes() -> None:
    attached = {"os-extended-volumes:volumes_attached": [{"id": "v-1"}, {"id": "v-2"}]}
    record = ServerRecord.of({**SERVER, "image": "", "key_name": None, **attached}, "")
    assert (record.image_id, record.key_name, record.group) == ("", None, None)
    assert record.volumes == ("v-1", "v-2")  # the plan refuses it: they do not move
    assert ServerRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_the_boot_request_pins_the_node_and_names_the_targets_ids() -> None:
    record = ServerRecord.of(SERVER, "ubuntu", ("web", "anti-affinity"))
    body = record.boot_body("ironic-b", NODE, "f-2", "i-2", ["n-1"], "g-2")
    assert body == {
        "server": {
            "name": "web-0",
            "flavorRef": "f-2",
            "imageRef": "i-2",
            "networks": [{"uuid": "n-1"}],
            "host": "ironic-b",
            "hypervisor_hostname": NODE,
            "metadata": {"role": "web"},
            "key_name": "ops",
            "config_drive": True,
        },
        "os:scheduler_hints": {"group": "g-2"},
    }
    plain = {**SERVER, "key_name": None, "config_drive": ""}
    bare = ServerRecord.of(plain, "ubuntu").boot_body("h", NODE, "f", "i")
    assert bare["server"]["networks"] == "none"
    assert "key_name" not in bare["server"] and "config_drive" not in bare["server"]
    assert "os:scheduler_hints" not in bare


def test_servers_on_nodes_image_and_group_are_read_from_nova_and_glance() -> None:
    other = {**SERVER, "id": "s-2", "OS-EXT-SRV-ATTR:hypervisor_hostname": "elsewhere"}
    compute = Proxy(
        {
            ("get", "/servers/detail?all_tenants=1"): Answer(200, {"servers": [SERVER, other]}),
            ("get", "/os-server-groups?all_projects=True"): Answer(
                200,
                {
                    "server_groups": [
                        {"name": "web", "policy": "anti-affinity", "members": [SERVER["id"]]},
                        {"name": "db", "policy": "affinity", "members": ["s-9"]},
                    ]
                },
            ),
        }
    )
    image = Proxy({("get", "/images/img-1"): Answer(200, {"name": "ubuntu"})})
    servers = Servers("a", Conn(compute, image))
    found = servers.on_nodes([NODE, "no-server-here"])
    assert list(found) == [NODE]
    record = servers.record(found[NODE])
    assert (record.image_name, record.group, record.group_policy) == (
        "ubuntu",
        "web",
        "anti-affinity",
    )
    assert {v for _, _, v in compute.calls} == {MICROVERSION}


def test_a_server_gone_is_none_and_its_delete_does_nothing() -> None:
    compute = Proxy({})
    servers = Servers("a", Conn(compute))
    assert servers.get("gone") is None
    servers.delete("gone")
    assert [(verb, path) for verb, path, _ in compute.calls] == [
        ("get", "/servers/gone"),
        ("delete", "/servers/gone"),
    ]


def test_an_error_of_nova_names_the_cloud_and_the_action() -> None:
    compute = Proxy({("get", "/servers/detail?all_tenants=1"): Answer(503, {"error": "down"})})
    with pytest.raises(EphyraError, match="a: cannot list servers: HTTP 503"):
        Servers("a", Conn(compute)).on_nodes([NODE])


def test_a_node_is_offered_once_listed_with_a_free_unit_of_its_class() -> None:
    listing = f"/os-hypervisors/detail?hypervisor_hostname_pattern={NODE}"
    hypervisor = {"hypervisor_hostname": NODE, "service": {"host": "ironic-b"}}
    inventory = f"/resource_providers/{NODE}/inventories"
    unit = {"total": 1, "reserved": 0}
    compute = Proxy({("get", listing): Answer(200, {"hypervisors": [hypervisor]})})
    placement = Proxy(
        {("get", inventory): Answer(200, {"inventories": {"CUSTOM_BAREMETAL_SMALL": unit}})}
    )
    servers = Servers("b", Conn(compute, placement=placement))
    assert servers.node_host(NODE) == "ironic-b"
    assert servers.offers(NODE, "baremetal-small")
    assert not servers.offers(NODE, "baremetal-large")  # not its class
    placement.answers[("get", inventory)] = Answer(
        200, {"inventories": {"CUSTOM_BAREMETAL_SMALL": {**unit, "reserved": 1}}}
    )
    assert not servers.offers(NODE, "baremetal-small")  # held back (maintenance, no power)
    compute.answers[("get", listing)] = Answer(404, {"itemNotFound": {}})
    assert servers.node_host(NODE) is None and not servers.offers(NODE, "baremetal-small")


def test_what_the_target_lacks_is_named_with_its_server() -> None:
    """Flavors, images, networks and key pairs by name: the plan stops on any of them."""
    compute = Proxy(
        {
            ("get", "/flavors/detail?is_public=None"): Answer(
                200, {"flavors": [{"id": "f-1", "name": "bm.small"}]}
            ),
            ("get", "/os-keypairs"): Answer(200, {"keypairs": [{"keypair": {"name": "ops"}}]}),
        }
    )
    image = Proxy(
        {("get", "/images?limit=1000"): Answer(200, {"images": [{"id": "i-1", "name": "ubuntu"}]})}
    )
    nets = [{"id": "n-1", "name": "provisioning"}, {"id": "n-2", "name": "tenant"}]
    network = Proxy({("get", "/networks"): Answer(200, {"networks": nets})})
    servers = Servers("b", Conn(compute, image, network=network))
    web = ServerRecord.of(SERVER, "ubuntu")
    db = ServerRecord.of(
        {**SERVER, "name": "db-0", "flavor": {"original_name": "bm.large"}, "key_name": "dba"},
        "rhel",
    )
    db2 = ServerRecord.of(
        {
            **SERVER,
            "name": "db-1",
            "flavor": {"original_name": "bm.large"},
            "addresses": {"san": []},
        },
        "",
    )
    assert servers.missing([web]) == []
    assert servers.ids_for(web) == BootIds("f-1", "i-1", ("n-1", "n-2"), None)
    assert servers.missing([web, db, db2]) == [
        "flavor 'bm.large' (server db-0)",
        "flavor 'bm.large' (server db-1)",
        "image 'rhel' (server db-0)",
        "key pair 'dba' (server db-0)",
        "network 'san' (server db-1)",
    ]
    with pytest.raises(
        StepFailed, match=r"b has no flavor 'bm\.large', network 'san' for server db-1"
    ):
        servers.ids_for(db2)


@pytest.mark.parametrize(
    ("ironic", "placement"),
    [("baremetal-small", "CUSTOM_BAREMETAL_SMALL"), ("gpu.large", "CUSTOM_GPU_LARGE")],
)
def test_custom_class_is_nova_s_name(ironic: str, placement: str) -> None:
    assert custom_class(ironic) == placement
