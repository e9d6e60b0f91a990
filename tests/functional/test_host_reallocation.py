"""A compute host handed over from cloud a to cloud b and back, for real: two Nova
deployments of the testbed (own APIs, databases, cells and Placement), the host's
nova-compute re-pointed by the testbed's hand-over commands.

The run is killed -9 after every step it shows, forward and in its rollback, each time
resumed by a new process. After every kill the host is enabled in at most one cloud and
its resource provider is in at most one Placement; at the end of each direction it is in
exactly one, the servers that lived on it in a (one running with a port, one stopped)
are elsewhere in a as they were, and a new server boots on the host in the cloud it ended
in. The clouds are cleaned first: a server another test left in a hard affinity group
could not move, and the host would rightly not be handed over.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.tenantclouds import TwoClouds
from tests.functional.crash import Chain, KillPoint, Stop, done_line, ok
from tests.functional.ephyra_cli import Background, Ephyra
from tests.functional.tenants import wait_for
from tests.functional.test_api import ADMIN, MEMBER, READER, Server

pytestmark = pytest.mark.functional
KIND = "host-reallocation"

FORWARD = (
    "record",
    "maintenance-on",
    "verify-empty",
    "release",
    "remove",
    "adopt",
    "register",
    "map-cell",
    "check",
)
ROLLBACK = (
    "maintenance-on-b",
    "verify-empty-b",
    "release-b",
    "remove-b",
    "adopt-a",
    "register-a",
    "map-cell-a",
    "check-a",
)


def handovers_file(two: TwoClouds, path: Path) -> Path:
    testbed = {"type": "command", **two.handover_commands(), "timeout": 300}
    path.write_text(yaml.safe_dump({"handovers": {"testbed": testbed}}))
    path.chmod(0o600)
    return path


def service(conn: Any, host: str) -> Any | None:
    found = [s for s in conn.compute.services(binary="nova-compute") if s.host == host]
    return found[0] if found else None


def providers(conn: Any, host: str) -> list[Any]:
    return list(conn.placement.resource_providers(name=host))


def where(two: TwoClouds, host: str) -> dict[str, tuple[bool, bool, int]]:
    """Per cloud: (a service, enabled, its resource providers)."""
    found = {}
    for name in ("a", "b"):
        conn = two.connect(name)
        svc = service(conn, host)
        enabled = bool(svc and svc.status == "enabled")
        found[name] = (svc is not None, enabled, len(providers(conn, host)))
    return found


def never_twice(two: TwoClouds, host: str) -> None:
    seen = where(two, host)
    assert sum(enabled for _, enabled, _ in seen.values()) <= 1, seen
    assert sum(rps for _, _, rps in seen.values()) <= 1, seen


def notices(ephyra: Ephyra, run: str) -> list[tuple[str, str]]:
    """The run's notices (its transitions told to the notifiers), in order, a notice told
    twice in a row once: a step killed after its notice and before its end is recorded
    runs, and tells, again (notifications are at least once)."""
    found = json.loads(ok(ephyra("run", "events", run, "-f", "json")).out)
    told = [(e["event"], e["host"]) for e in found if e["type"] == "notice"]
    return [notice for i, notice in enumerate(told) if i == 0 or told[i - 1] != notice]


def boot_on(
    conn: Any, host: str, image: str, flavor: str, name: str, network: str | None = None
) -> Any:
    server = conn.compute.create_server(
        name=name, flavor_id=flavor, image_id=image,
        networks=[{"uuid": network}] if network else "none",
        availability_zone=f"nova:{host}",
    )  # fmt: skip
    wait_for(
        lambda: conn.compute.get_server(server.id).status == "ACTIVE",
        f"{name} ACTIVE on {host}",
        timeout=300,
    )
    found = conn.compute.get_server(server.id)
    assert found.compute_host == host
    return found


def status_of(conn: Any, server: str) -> str:
    return str(conn.compute.get_server(server).status)


def image_and_flavor(conn: Any) -> tuple[str, str]:
    image = conn.image.find_image("realloc-img")
    if image is None:
        image = conn.image.create_image(
            name="realloc-img", disk_format="raw", container_format="bare",
            data=b"r" * 1024, visibility="public", wait=True,
        )  # fmt: skip
    flavor = conn.compute.find_flavor("realloc.tiny")
    if flavor is None:
        flavor = conn.compute.create_flavor(name="realloc.tiny", vcpus=1, ram=64, disk=1)
    return image.id, flavor.id


def delete(conn: Any, server: Any) -> None:
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.5, wait=300)


def roles_on_the_routes(ephyra: Ephyra, tmp: Path, args: list[str], run: str) -> None:
    """Through ``ephyra serve``: a reader reads, a member plans (here refused: b has the
    host now) but may not start, an admin starts (here refused: no such hand-over); no
    reader acts on the run, nor a member beyond pause and resume."""
    body = {"cloud": "a", "to": "b", "hosts": [args[0]], "handover": "testbed"}
    server = Server(ephyra, tmp, config={})
    try:
        assert server.call("GET", f"/v1/{KIND}/runs", token=READER).status_code == 200
        for route in ("plan", "runs"):
            answer = server.call("POST", f"/v1/{KIND}/{route}", token=READER, json=body)
            assert answer.status_code == 403, answer.text
        plan = server.call("POST", f"/v1/{KIND}/plan", token=MEMBER, json=body)
        assert plan.status_code == 422, plan.text
        assert plan.json()["error"]["code"] == "plan_refused"
        assert "b has a nova-compute on this host already" in plan.json()["error"]["message"]
        assert server.call("POST", f"/v1/{KIND}/runs", token=MEMBER, json=body).status_code == 403
        unknown = {**body, "handover": "nowhere"}
        started = server.call("POST", f"/v1/{KIND}/runs", token=ADMIN, json=unknown)
        assert started.status_code == 400, started.text
        assert "no hand-over named 'nowhere'" in started.json()["error"]["message"]
        for action in ("pause", "resume", "abort", "rollback"):
            answer = server.call("POST", f"/v1/{KIND}/runs/{run}/{action}", token=READER)
            assert answer.status_code == 403, f"{action}: {answer.text}"
        for action, code in (("pause", 409), ("abort", 403), ("rollback", 403)):
            answer = server.call("POST", f"/v1/{KIND}/runs/{run}/{action}", token=MEMBER)
            assert answer.status_code == code, f"{action}: {answer.text}"
    finally:
        server.stop()


def test_host_handed_over_to_b_and_back_survives_kills_at_every_step(
    two_clouds: TwoClouds, tmp_path: Path
) -> None:
    two = two_clouds
    two.clean()
    host = two.a.nova.hosts[0]
    a, b = two.connect("a"), two.connect("b")
    image_a, flavor_a = image_and_flavor(a)
    image_b, flavor_b = image_and_flavor(b)
    network = a.network.find_network("realloc-net") or a.network.create_network(name="realloc-net")
    if not list(a.network.subnets(network_id=network.id)):
        a.network.create_subnet(network_id=network.id, cidr="10.77.0.0/24", ip_version=4)
    resident = boot_on(a, host, image_a, flavor_a, "realloc-resident", network.id)  # a port
    stopped = boot_on(a, host, image_a, flavor_a, "realloc-stopped")
    a.compute.stop_server(stopped)
    wait_for(lambda: status_of(a, stopped.id) == "SHUTOFF", "realloc-stopped SHUTOFF", 300)
    on_host = {s.id: s.status for s in a.compute.servers(all_projects=True, compute_host=host)}
    assert on_host == {resident.id: "ACTIVE", stopped.id: "SHUTOFF"}

    ephyra = Ephyra(two.clouds_yaml, tmp_path / "state")
    ephyra.env["EPHYRA_HANDOVERS"] = str(handovers_file(two, tmp_path / "handovers.yaml"))
    args = [host, "--from", "a", "--to", "b", "--handover", "testbed"]

    planned = json.loads(ok(ephyra("host", "reallocation", "plan", *args, "-f", "json")).out)
    assert [h["host"] for h in planned["hosts"]] == [host]
    assert {s["id"] for s in planned["hosts"][0]["servers"]} == set(on_host)
    before, after = planned["capacity_to"]["before"], planned["capacity_to"]["after"]
    assert after["VCPU"]["capacity"] > before["VCPU"]["capacity"]
    assert after["VCPU"]["used"] == before["VCPU"]["used"]

    def stops(steps: tuple[str, ...], phase: str) -> list[Stop[Background]]:
        return [
            Stop(
                KillPoint(phase, step, "boundary"),
                lambda proc, step=step: proc.wait_for(done_line(host, step), timeout=600),
                lambda: never_twice(two, host),
            )
            for step in steps
        ]

    def forward_done() -> None:
        assert where(two, host) == {"a": (False, False, 0), "b": (True, True, 1)}
        for sid, status in on_host.items():  # each elsewhere in a, as it was
            moved = a.compute.get_server(sid)
            assert (moved.status, moved.compute_host != host) == (status, True), sid

    report: list[str] = []
    chain = Chain(
        start=lambda: ephyra.background("host", "reallocate", *args, "--yes"),
        resume=lambda: ephyra.background("host", "reallocation", "resume"),
        check=forward_done,
    )
    chain.run(stops(FORWARD, "forward"), report, "host-reallocation")
    status = json.loads(ok(ephyra("host", "reallocation", "status", "-f", "json")).out)
    assert [h["forward"] for h in status["hosts"]] == ["handed-over"]
    assert notices(ephyra, status["id"]) == [
        ("ephyra.host.reallocation.start", host),
        ("ephyra.host.maintenance.start", host),
        ("ephyra.host.reallocation.released", host),
        ("ephyra.host.reallocation.removed", host),
        ("ephyra.host.reallocation.registered", host),
        ("ephyra.host.reallocation.end", host),
    ]
    in_b = boot_on(b, host, image_b, flavor_b, "realloc-in-b")
    delete(b, in_b)
    roles_on_the_routes(ephyra, tmp_path, args, status["id"])

    def back_done() -> None:
        wait_for(
            lambda: where(two, host) == {"a": (True, True, 1), "b": (False, False, 0)},
            f"{host} back in a only",
            timeout=60,
        )

    back = Chain(
        start=lambda: ephyra.background("host", "reallocation", "rollback"),
        resume=lambda: ephyra.background("host", "reallocation", "rollback"),
        check=back_done,
    )
    back.run(stops(ROLLBACK, "rollback"), report, "host-reallocation")
    status = json.loads(ok(ephyra("host", "reallocation", "status", "-f", "json")).out)
    assert [h["rollback"] for h in status["hosts"]] == ["handed-back"]
    assert notices(ephyra, status["id"])[6:] == [
        ("ephyra.host.reallocation.rollback.start", host),
        ("ephyra.host.reallocation.released", host),
        ("ephyra.host.reallocation.removed", host),
        ("ephyra.host.reallocation.registered", host),
        ("ephyra.host.reallocation.rollback.end", host),
    ]
    in_a = boot_on(a, host, image_a, flavor_a, "realloc-back-in-a")
    delete(a, in_a)
    for server in (resident, stopped):
        delete(a, a.compute.get_server(server.id))
