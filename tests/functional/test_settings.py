"""An environment's settings from cloud A to cloud B, against the real clouds of the
testbed (one Keystone, each cloud its own Nova, Placement and Neutron), through the real
command line: settings made on A (a private flavor with extra specs and its access,
quotas, an aggregate with an availability zone and metadata, a custom trait and resource
class, a shared network with a subnet) are exported, applied to B, and B's export equals
A's; a second apply plans nothing; a changed document shows exactly its diff; deletes come
only with --prune; rollback brings B back to its export from before. An apply killed
mid-run (-9) and resumed ends the same, nothing made twice. Identity objects go to a
separate Keystone the same way. The API's routes of the kind answer each role as the
policy says.

The clouds are shared with other tests: every document applied holds only this test's
objects (and the whole identity, which one Keystone shares), every run is rolled back,
and what is made on A is deleted at the end."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from ephyra.settings.cloud import SettingsCloud
from ephyra.settings.export import export
from testbed.keystone import Keystone
from testbed.tenantclouds import TwoClouds
from tests.functional.crash import ok
from tests.functional.ephyra_cli import Background, Ephyra
from tests.functional.holds import HELD, Gate, held_ephyra
from tests.functional.tenants import wait_for
from tests.functional.test_api import ADMIN, MEMBER, READER, Server

pytestmark = pytest.mark.functional
KIND = "settings"
COMPUTE, PLACEMENT = "2.64", "1.7"
#: Where the apply is held for a kill: a change about to be made, and one made but not
#: yet marked done.
CONVERGE = "ephyra.settings.cloud:SettingsCloud.converge"
DONE = "ephyra.settings.runner:SettingsDriver._done"


@dataclass
class World:
    """The two clouds, the command line, and this test's names (all ending in ``tag``)."""

    clouds: TwoClouds
    ephyra: Ephyra
    tmp: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    runs: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"st-{self.tag}"

    @property
    def custom(self) -> str:
        return f"CUSTOM_ST_{self.tag.upper()}"

    def conn(self, cloud: str) -> Any:
        return self.clouds.connect(cloud)

    def export(self, cloud: str, *options: str) -> dict[str, Any]:
        """The cloud's export by the command line (in this process for ``a`` and ``b``
        without options: the same function, without a process's start)."""
        if cloud in ("a", "b") and not options:
            return export(cloud, SettingsCloud(cloud, self.conn(cloud)))
        done = ok(self.ephyra("settings", "export", "--os-cloud", cloud, *options))
        found: dict[str, Any] = yaml.safe_load(done.out)
        return found

    def mine(self, document: dict[str, Any]) -> dict[str, Any]:
        """The document with only this test's compute, placement and network objects
        (the identity whole: one Keystone holds it for both clouds)."""
        doc = copy.deepcopy(document)
        doc.pop("source", None)
        compute, tag = doc["compute"], self.tag
        compute["flavors"] = [f for f in compute["flavors"] if tag in f["name"]]
        compute["quotas"] = {p: q for p, q in compute["quotas"].items() if tag in p}
        compute["aggregates"] = [a for a in compute["aggregates"] if tag in a["name"]]
        compute["server_groups"] = [s for s in compute["server_groups"] if tag in s["name"]]
        placement = doc["placement"]
        for key in ("resource_classes", "traits"):
            placement[key] = [n for n in placement[key] if tag.upper() in n]
        doc["network"]["networks"] = [n for n in doc["network"]["networks"] if tag in n["name"]]
        return doc

    def write(self, document: dict[str, Any], name: str = "env.yaml") -> str:
        path = self.tmp / name
        path.write_text(yaml.safe_dump({"source": "a", **document}))
        return str(path)

    def plan(self, path: str, cloud: str = "b", *more: str) -> list[str]:
        done = ok(self.ephyra("settings", "plan", path, "--os-cloud", cloud, "-f", "json", *more))
        return list(json.loads(done.out)["changes"])

    def apply(self, path: str, cloud: str = "b", *more: str) -> str:
        done = self.ephyra("settings", "apply", path, "--os-cloud", cloud, "--yes", *more)
        run = self.last_run()  # rolled back at the end, even if it failed
        ok(done)
        return run

    def last_run(self) -> str:
        return str(self.last_status()["id"])

    def last_status(self) -> dict[str, Any]:
        """The latest run's status (kept, for the end of the test to roll it back)."""
        shown: dict[str, Any] = json.loads(ok(self.ephyra("settings", "status", "-f", "json")).out)
        self.runs.append(shown["id"])
        return shown

    def status(self, run: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(
            ok(self.ephyra("settings", "status", run, "-f", "json")).out
        )
        return found

    def rollback(self, run: str) -> None:
        ok(self.ephyra("settings", "rollback", run))
        assert self.status(run)["state"] == "rolled-back"

    # -- settings made on A ----------------------------------------------------------------
    def make_on_a(self) -> None:
        conn = self.conn("a")
        project = conn.identity.create_project(name=self.name, domain_id="default")
        flavor = conn.compute.create_flavor(
            name=self.name, vcpus=1, ram=64, disk=1, is_public=False
        )
        conn.compute.create_flavor_extra_specs(
            flavor, {"hw:cpu_policy": "shared", "aggregate_instance_extra_specs:ssd": "true"}
        )
        conn.compute.flavor_add_tenant_access(flavor, project.id)
        call(conn.compute, "put", f"/os-quota-sets/{project.id}", {"quota_set": {"cores": 7}})
        aggregate = conn.compute.create_aggregate(
            name=f"agg-{self.name}", availability_zone=f"az-{self.name}"
        )
        conn.compute.set_aggregate_metadata(aggregate, {"ssd": "true", "rack": "r1"})
        call(conn.placement, "put", f"/traits/{self.custom}", microversion=PLACEMENT)
        call(conn.placement, "put", f"/resource_classes/{self.custom}", microversion=PLACEMENT)
        network = conn.network.create_network(name=f"net-{self.name}", shared=True)
        third = int(self.tag[:2], 16)
        conn.network.create_subnet(
            network_id=network.id,
            name=f"sub-{self.name}",
            ip_version=4,
            cidr=f"10.77.{third}.0/24",
            allocation_pools=[{"start": f"10.77.{third}.10", "end": f"10.77.{third}.99"}],
        )

    def clean(self, cloud: str) -> None:
        """Remove what this test made on ``cloud`` (what exists of it)."""
        conn = self.conn(cloud)
        for net in list(conn.network.networks(name=f"net-{self.name}")):
            for subnet in list(conn.network.subnets(network_id=net.id)):
                conn.network.delete_subnet(subnet)
            conn.network.delete_network(net)
        for path in (f"/traits/{self.custom}", f"/resource_classes/{self.custom}"):
            conn.placement.delete(path, microversion=PLACEMENT, raise_exc=False)
        for aggregate in conn.compute.aggregates():
            if aggregate.name == f"agg-{self.name}":
                conn.compute.delete_aggregate(aggregate)
        for flavor in conn.compute.flavors(is_public=None):
            if flavor.name == self.name:
                conn.compute.delete_flavor(flavor)
        if cloud == "a":
            project = conn.identity.find_project(self.name, domain_id="default")
            if project is not None:
                conn.identity.delete_project(project)


def call(proxy: Any, verb: str, path: str, body: Any = None, microversion: str = COMPUTE) -> Any:
    answer = getattr(proxy, verb)(path, json=body, microversion=microversion, raise_exc=False)
    assert answer.status_code < 300, f"{verb} {path}: {answer.status_code} {answer.text}"
    return answer.json() if answer.content else None


@pytest.fixture
def world(two_clouds: TwoClouds, tmp_path: Path) -> Iterator[World]:
    made = World(two_clouds, Ephyra(two_clouds.clouds_yaml, tmp_path / "state"), tmp_path)
    try:
        yield made
    finally:
        for run in reversed(made.runs):  # a test that failed half-way leaves B as it was
            if made.status(run)["state"] != "rolled-back":
                made.ephyra("settings", "rollback", run)
        made.clean("b")
        made.clean("a")


def test_settings_from_a_to_b_are_applied_once_diffed_pruned_and_rolled_back(
    world: World,
) -> None:
    w = world
    w.make_on_a()
    b_before = w.export("b")  # the project made on A is B's too: one Keystone
    exported = w.export("a", "-f", "json")
    assert exported == w.export("a")  # the command line's JSON is the document itself
    doc = w.mine(exported)
    path = w.write(doc)
    planned = w.plan(path)
    n, c = w.name, w.custom
    assert sorted(planned) == sorted(
        [
            f"create flavor {n}",
            f"create flavor access {n} Default/{n}",
            f"update quota Default/{n}: cores {b_quota(b_before)} -> 7",
            f"create aggregate agg-{n}",
            f"create resource class {c}",
            f"create trait {c}",
            f"create network net-{n}",
            f"create subnet net-{n} {doc['network']['networks'][0]['subnets'][0]['cidr']}",
        ]
    ), planned
    run = w.apply(path)
    assert w.mine(w.export("b")) == doc
    assert w.plan(path) == []  # idempotent: a second apply plans nothing

    changed = copy.deepcopy(doc)
    flavor = changed["compute"]["flavors"][0]
    flavor["extra_specs"]["hw:cpu_policy"] = "dedicated"
    changed["compute"]["aggregates"][0]["metadata"]["rack"] = "r2"
    assert w.plan(w.write(changed, "changed.yaml")) == [
        f"update flavor {n}: extra_specs "
        + json.dumps({**flavor["extra_specs"], "hw:cpu_policy": "shared"}, sort_keys=True)
        + " -> "
        + json.dumps(flavor["extra_specs"], sort_keys=True),
        f"update aggregate agg-{n}: metadata "
        + json.dumps({"rack": "r1", "ssd": "true"}, sort_keys=True)
        + " -> "
        + json.dumps({"rack": "r2", "ssd": "true"}, sort_keys=True),
    ]

    # B's own settings without the trait: deleted only with --prune, and only it
    whole = w.export("b")
    whole["placement"]["traits"].remove(c)
    pruning = w.write(whole, "prune.yaml")
    assert w.plan(pruning) == []
    assert w.plan(pruning, "b", "--prune") == [f"delete trait {c}"]
    pruned = w.apply(pruning, "b", "--prune")
    assert c not in w.export("b")["placement"]["traits"]
    w.rollback(pruned)
    assert c in w.export("b")["placement"]["traits"]

    w.rollback(run)
    assert w.export("b") == {**b_before, "source": "b"}


def b_quota(document: dict[str, Any]) -> int:
    return int(document["compute"]["default_quotas"]["cores"])


def test_an_apply_killed_mid_run_is_resumed_to_the_same_end(world: World) -> None:
    w = world
    w.make_on_a()
    b_before = w.export("b")  # the project made on A is B's too: one Keystone
    doc = w.mine(w.export("a"))
    path = w.write(doc)
    gate = Gate(w.tmp / "gate")
    # killed with the third change begun (what B had recorded), before it is made
    held = Background(
        [
            *held_ephyra(CONVERGE, 3, gate),
            "-v",
            "settings",
            "apply",
            path,
            "--os-cloud",
            "b",
            "--yes",
        ],
        w.ephyra.env,
    )
    held.wait_for(lambda line: HELD in line)
    held.kill()
    shown = w.last_status()
    run, rows = shown["id"], shown["changes"]
    assert [r["forward"] for r in rows[:3]] == ["done", "done", "doing"], rows
    # the resume killed after a change is made, before its record says so
    held = Background(
        [*held_ephyra(DONE, 2, gate), "-v", "settings", "resume", run],
        w.ephyra.env,
    )
    held.wait_for(lambda line: HELD in line)
    held.kill()
    ok(w.ephyra("settings", "resume", run))
    assert w.status(run)["state"] == "succeeded"
    assert w.mine(w.export("b")) == doc
    b = w.conn("b")
    assert len([f for f in b.compute.flavors(is_public=None) if f.name == w.name]) == 1
    nets = list(b.network.networks(name=f"net-{w.name}"))
    assert len(nets) == 1 and len(list(b.network.subnets(network_id=nets[0].id))) == 1
    w.rollback(run)
    assert w.export("b") == {**b_before, "source": "b"}


def test_identity_goes_to_a_separate_keystone_and_back(
    world: World, second_keystone: Keystone
) -> None:
    w = world
    entry = second_keystone.clouds_entry("admin", second_keystone.admin_password, "admin")
    data = yaml.safe_load(w.clouds.clouds_yaml.read_text())
    data["clouds"]["k2"] = entry
    clouds_yaml = w.tmp / "clouds.yaml"
    clouds_yaml.write_text(yaml.safe_dump(data))
    w.ephyra = Ephyra(clouds_yaml, w.tmp / "state")
    before = w.export("k2")
    assert set(before) == {"ephyra_settings", "source", "identity"}  # no other service
    a = w.conn("a").identity
    domain = a.create_domain(name=f"dom-{w.name}", description="copied")
    try:
        project = a.create_project(name=w.name, domain_id=domain.id, tags=["t1"])
        a.create_project(name=f"child-{w.name}", domain_id=domain.id, parent_id=project.id)
        user = a.create_user(name=f"u-{w.name}", domain_id=domain.id, email="u@example.com")
        group = a.create_group(name=f"g-{w.name}", domain_id=domain.id)
        a.add_user_to_group(user, group)
        role = a.create_role(name=f"r-{w.name}")
        a.assign_project_role_to_user(project, user, role)
        a.assign_domain_role_to_group(domain, group, role)
        ident = w.export("a")["identity"]

        def ours(identity: dict[str, Any]) -> dict[str, Any]:
            mine = f"dom-{w.name}"
            return {
                "domains": [d for d in identity["domains"] if d["name"] == mine],
                "projects": [p for p in identity["projects"] if p["domain"] == mine],
                "roles": [r for r in identity["roles"] if w.name in r["name"]],
                "users": [u for u in identity["users"] if u["domain"] == mine],
                "groups": [g for g in identity["groups"] if g["domain"] == mine],
                "assignments": [x for x in identity["assignments"] if w.name in x["role"]],
            }

        doc = {"ephyra_settings": 1, "identity": ours(ident)}
        assert len(doc["identity"]["assignments"]) == 2 and doc["identity"]["groups"][0]["members"]
        path = w.write(doc, "identity.yaml")
        planned = [" ".join(said.split()[:2]) for said in w.plan(path, "k2")]
        kinds = ["domain", "project", "project", "role", "user", "group"]
        assert planned == [f"create {k}" for k in [*kinds, "assignment", "assignment"]]
        run = w.apply(path, "k2")
        assert ours(w.export("k2")["identity"]) == doc["identity"]
        assert w.plan(path, "k2") == []
        w.rollback(run)
        assert w.export("k2") == {**before, "source": "k2"}
    finally:
        for p in a.projects(domain_id=domain.id):
            if p.parent_id != domain.id:
                a.delete_project(p)
        for p in a.projects(domain_id=domain.id):
            a.delete_project(p)
        a.update_domain(domain, enabled=False)
        a.delete_domain(domain)
        for r in a.roles(name=f"r-{w.name}"):
            a.delete_role(r)


def test_the_api_routes_answer_each_role_as_the_policy_says(world: World) -> None:
    w = world
    body = {
        "cloud": "b",
        "document": {
            "ephyra_settings": 1,
            "placement": {"resource_classes": [], "traits": [w.custom]},
        },
    }
    server = Server(w.ephyra, w.tmp, config={})
    try:
        assert server.call("GET", f"/v1/{KIND}/runs", token=READER).status_code == 200
        for route in ("plan", "runs"):
            answer = server.call("POST", f"/v1/{KIND}/{route}", token=READER, json=body)
            assert answer.status_code == 403, answer.text
        plan = server.call("POST", f"/v1/{KIND}/plan", token=MEMBER, json=body)
        assert plan.status_code == 200, plan.text
        assert plan.json()["plan"]["changes"] == [f"create trait {w.custom}"]
        assert server.call("POST", f"/v1/{KIND}/runs", token=MEMBER, json=body).status_code == 403
        started = server.call("POST", f"/v1/{KIND}/runs", token=ADMIN, json=body)
        assert started.status_code == 202, started.text
        run = started.json()["id"]
        w.runs.append(run)

        def state() -> str:
            shown = server.call("GET", f"/v1/{KIND}/runs/{run}", token=READER).json()
            return str(shown["state"])

        wait_for(lambda: state() == "succeeded", "the apply")
        assert w.custom in w.export("b")["placement"]["traits"]
        for action in ("pause", "resume", "abort", "rollback"):  # a reader acts on none
            answer = server.call("POST", f"/v1/{KIND}/runs/{run}/{action}", token=READER)
            assert answer.status_code == 403, f"{action}: {answer.text}"
        # a member may pause and resume (a finished run: 409, the operation's own answer),
        # not abort nor roll back
        for action, code in (("pause", 409), ("resume", 409), ("abort", 403), ("rollback", 403)):
            answer = server.call("POST", f"/v1/{KIND}/runs/{run}/{action}", token=MEMBER)
            assert answer.status_code == code, f"{action}: {answer.text}"
        answer = server.call("POST", f"/v1/{KIND}/runs/{run}/abort", token=ADMIN)
        assert answer.status_code == 409, answer.text
        back = server.call("POST", f"/v1/{KIND}/runs/{run}/rollback", token=ADMIN)
        assert back.status_code == 202, back.text
        wait_for(lambda: state() == "rolled-back", "the rollback")
        assert w.custom not in w.export("b")["placement"]["traits"]
    finally:
        server.stop()
