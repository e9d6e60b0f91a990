"""``ephyra serve --config``: the model refuses what it does not know, and the resolvers
give the server only configured names while the command line keeps local paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ephyra.api.config import Named, ServeConfig
from ephyra.api.middleware import Streams
from ephyra.api.policy import Identity
from ephyra.errors import UsageError
from ephyra.forklift.body import ForkliftBody
from ephyra.inventory.source import discovered
from ephyra.operations.bodies import TriggerBody, VerifyBody
from ephyra.operations.local import AnyLocal, Local
from ephyra.upgrade.body import UpgradeBody

CONFIG = {
    "inventory": {
        "prod": "openstack:prod",
        "racks": "static:/etc/ephyra/hosts.yaml",
        "lab": "ansible:/etc/ephyra/hosts.ini?roles=/etc/ephyra/roles.yaml",
    },
    "credentials": {"dc1": "file:/etc/ephyra/bmc.yaml"},
    "alertmanagers": {"ops": "http://alertmanager.example:9093"},
    "limits": {"body_bytes": 4096, "streams_per_caller": 2},
}


def _load(tmp_path: Path, data: Any) -> ServeConfig:
    path = tmp_path / "serve.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return ServeConfig.load(path)


def test_the_example_loads(tmp_path: Path) -> None:
    config = _load(tmp_path, CONFIG)
    assert config.inventory["lab"] == CONFIG["inventory"]["lab"]
    assert config.credentials == {"dc1": "file:/etc/ephyra/bmc.yaml"}
    assert (config.limits.body_bytes, config.limits.streams_per_caller) == (4096, 2)


def test_defaults_without_a_file_or_with_an_empty_one(tmp_path: Path) -> None:
    for config in (ServeConfig.load(None), _load(tmp_path, "")):
        assert config.inventory == {} and config.credentials == {}
        assert (config.limits.body_bytes, config.limits.streams_per_caller) == (1 << 20, 4)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"inventroy": {}}, "inventroy"),
        ({"limits": {"body_byte": 10}}, "limits.body_byte"),
        ({"limits": {"body_bytes": 10}}, "limits.body_bytes"),
        ({"limits": {"streams_per_caller": 0}}, "limits.streams_per_caller"),
        ({"inventory": {"a:b": "static:/x"}}, "inventory.a:b"),
        ({"inventory": {"openstack": "static:/x"}}, "inventory.openstack"),
        ({"alertmanagers": {"ops": "ftp://x"}}, "alertmanagers.ops"),
        ({"inventory": {"x y": "static:/x"}}, "inventory.x y"),
        ({"inventory": {"ok": ":nokind"}}, "inventory.ok"),
        ({"credentials": {"source": "file:/x"}}, "credentials.source"),
        ({"credentials": {"dc1": ""}}, "credentials.dc1"),
        ({"credentials": ["file:/x"]}, "credentials"),
        ({"inventory": {"ok": "statc:/x"}}, "no source kind 'statc'"),
        ({"credentials": {"dc1": "fiel:/x"}}, "no source kind 'fiel'"),
    ],
)
def test_mistakes_are_refused_naming_the_key(
    tmp_path: Path, data: dict[str, Any], named: str
) -> None:
    with pytest.raises(UsageError, match="serve config") as caught:
        _load(tmp_path, data)
    assert named in str(caught.value)


def test_an_unreadable_or_broken_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the serve config"):
        ServeConfig.load(tmp_path / "absent.yaml")
    with pytest.raises(UsageError, match="not valid YAML"):
        _load(tmp_path, "inventory: [unclosed")


def test_the_server_resolves_names_and_openstack_only() -> None:
    named = Named(ServeConfig.model_validate(CONFIG))
    assert named.inventory("racks") == "static:/etc/ephyra/hosts.yaml"
    assert named.inventory("lab") == CONFIG["inventory"]["lab"]
    assert named.inventory("openstack") == "openstack"
    assert named.inventory("openstack:cp1") == "openstack:cp1"
    assert named.credentials("dc1") == "file:/etc/ephyra/bmc.yaml"
    assert named.credentials("source") == "source"
    assert named.credentials(None) is None
    assert named.alertmanager("ops") == "http://alertmanager.example:9093"


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "https://ops", "ops2", ""])
def test_the_server_refuses_any_alertmanager_but_a_configured_name(url: str) -> None:
    with pytest.raises(UsageError, match=r"refused: name a configured one \(ops\)"):
        Named(ServeConfig.model_validate(CONFIG)).alertmanager(url)


def test_a_specification_names_its_alertmanagers_through_the_resolver() -> None:
    from ephyra.upgrade.spec import with_alertmanagers

    spec = {
        "release": "2",
        "alarms": {"url": "ops", "wait": 60},
        "selfheal": [{"type": "alertmanager", "url": "ops"}, {"type": "command", "url": "x"}],
    }
    named = with_alertmanagers(spec, Named(ServeConfig.model_validate(CONFIG)).alertmanager)
    assert named["alarms"] == {"url": "http://alertmanager.example:9093", "wait": 60}
    assert named["selfheal"][0]["url"] == "http://alertmanager.example:9093"
    assert named["selfheal"][1] == {"type": "command", "url": "x"}  # not an Alertmanager's
    assert spec["alarms"]["url"] == "ops"  # what was given is left as it was
    assert with_alertmanagers(spec, AnyLocal().alertmanager) == spec


@pytest.mark.parametrize(
    "spec",
    [
        "static:/etc/passwd",
        "/etc/passwd",
        "ansible:/tmp/run.sh",
        "ansible:hosts.ini?roles=/etc/shadow",
        "puppetdb:http://127.0.0.1:1/#",
        "openstack:../../etc",
        "openstack:cp1?x=1",
        "openstack:",
        "racks?roles=/etc/shadow",
        "unknown",
        "",
    ],
)
def test_the_server_refuses_anything_else_as_an_inventory(spec: str) -> None:
    with pytest.raises(UsageError, match="refused") as caught:
        Named(ServeConfig.model_validate(CONFIG)).inventory(spec)
    assert "racks" in str(caught.value)  # the names it may use instead


@pytest.mark.parametrize("spec", ["file:/etc/ephyra/bmc.yaml", "file:/etc/shadow", "dc2", ""])
def test_the_server_refuses_anything_else_as_credentials(spec: str) -> None:
    with pytest.raises(UsageError, match="refused"):
        Named(ServeConfig.model_validate(CONFIG)).credentials(spec)


def test_a_refusal_shows_only_a_short_part_of_what_was_given() -> None:
    with pytest.raises(UsageError) as caught:
        Named(ServeConfig()).inventory("static:" + "/x" * 5000)
    assert len(str(caught.value)) < 300


def test_in_process_everything_local_stays_as_given() -> None:
    local = AnyLocal()
    assert local.inventory("static:/tmp/x.yaml?y=1") == "static:/tmp/x.yaml?y=1"
    assert local.credentials("file:/tmp/bmc.yaml") == "file:/tmp/bmc.yaml"
    assert isinstance(Local().resolver, AnyLocal)


def test_the_server_refuses_before_anything_is_read(tmp_path: Path) -> None:
    canary = tmp_path / "canary.yaml"
    canary.write_text("hosts: {secret-canary-host: {}}\n")
    server = Local(str(f"sqlite:///{tmp_path / 'j.db'}"), resolver=Named(ServeConfig()))
    with pytest.raises(UsageError) as caught:
        server.inventory([f"static:{canary}"], None, None)
    assert "secret-canary-host" not in str(caught.value)
    here = Local(str(f"sqlite:///{tmp_path / 'j.db'}"))
    assert [h["name"] for h in here.inventory([f"static:{canary}"], None, None)["hosts"]] == [
        "secret-canary-host"
    ]


def test_an_inline_inventory_is_read_as_a_static_one(tmp_path: Path) -> None:
    found = discovered([], None, {"hosts": {"cmp-1": {"services": ["nova-compute"]}}})
    assert [(h.name, sorted(h.roles)) for h in found.hosts] == [("cmp-1", ["compute"])]
    assert found.sources == ("static:inline",)
    with pytest.raises(UsageError, match="static inventory inline: hosts"):
        discovered([], None, {"hosts": ["not-a-mapping"]})


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (TriggerBody, {"version": "1" * 129}),
        (TriggerBody, {"version": "1.0; rm -rf /"}),
        (VerifyBody, {"version": "1.0", "hosts": ["a b"]}),
        (VerifyBody, {"version": "1.0", "hosts": ["h"] * 10_001}),
        (ForkliftBody, {"from": "a", "to": "b", "workload_options": {"k": "v" * 4097}}),
        (
            ForkliftBody,
            {"from": "a", "to": "b", "workload_options": {f"k{i}": "v" for i in range(65)}},
        ),
        (ForkliftBody, {"from": "a", "to": "b", "nodes": ["n/1"]}),
        (ForkliftBody, {"from": "a", "to": "b", "workload": "../x"}),
        (UpgradeBody, {"spec": {}, "sources": ["openstack"] * 33}),
    ],
)
def test_bodies_are_bounded(body: Any, fields: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        body.build(**fields)


def test_event_streams_are_counted_per_user_and_project() -> None:
    streams = Streams(2)
    ada, ada_elsewhere = Identity("ada", "ops", ("reader",)), Identity("ada", "dev", ("reader",))
    first, second = streams.take(ada), streams.take(ada)
    assert first is not None and second is not None
    assert streams.take(ada) is None
    assert streams.take(ada_elsewhere) is not None  # another project: another caller
    first()
    third = streams.take(ada)
    assert third is not None and streams.take(ada) is None
    second()
    third()
    assert ("ada", "ops") not in streams.open
