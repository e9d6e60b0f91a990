"""What a caller of ``ephyra serve`` may not make it do: read a path, run a program or
fetch a URL it names (an inventory's, an Alertmanager's in an upgrade specification:
only what the operator configured, by name), send a body larger
than the limit (before or after its token is checked), hold more event streams open
than the limit; and what it still may: configured sources and credentials by name, a
static inventory inline, a plan that runs nothing."""

from __future__ import annotations

import http.server
import json
import select
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from testbed.ironic import Testbed, free_port
from testbed.seed import seed_nodes, write_credentials
from tests.functional.ephyra_cli import Ephyra
from tests.functional.test_api import ADMIN, MEMBER, READER, SEEDED, Server

pytestmark = pytest.mark.functional

CANARY = "canary-host-7f3e91"  # the only host of the canary file: it must never come back
RACKS = {"hosts": {"cmp-1": {"services": ["nova-compute"]}, "ctl-1": {"services": ["nova-api"]}}}
MB = 1 << 20


class Listener:
    """An HTTP server on loopback that records every request it gets (it must get none)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                self.send_response(500)
                self.end_headers()
                self.wfile.write(CANARY.encode())

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Bed:
    server: Server
    ephyra: Ephyra
    tmp: Path
    canary: Path
    script: Path
    markers: Path
    listener: Listener
    refusals: list[str] = field(default_factory=list)

    def assert_nothing_read_run_or_fetched(self, text: str) -> None:
        assert CANARY not in text and ADMIN not in text, text
        assert not list(self.markers.iterdir()), "a program ran"
        assert self.listener.seen == [], "a URL was fetched"


def _bed(tmp: Path, ephyra: Ephyra, streams: int = 4) -> Bed:
    canary = tmp / "canary.yaml"
    canary.write_text(yaml.safe_dump({"hosts": {CANARY: {"roles": ["compute"]}}}))
    markers = tmp / "markers"
    markers.mkdir()
    script = tmp / "inventory.sh"  # what ansible-core's script plugin would run
    script.write_text(f"#!/bin/sh\ntouch {markers / 'ran'}\necho '{{}}'\n")
    script.chmod(0o755)
    (tmp / "racks.yaml").write_text(yaml.safe_dump(RACKS))
    listener = Listener()
    config = {
        "inventory": {"racks": f"static:{tmp / 'racks.yaml'}"},
        "credentials": {SEEDED: f"file:{tmp / 'c.yaml'}"},
        "alertmanagers": {"ops": listener.url},
        "limits": {"streams_per_caller": streams},
    }
    server = Server(ephyra, tmp, config=config)
    return Bed(server, ephyra, tmp, canary, script, markers, listener)


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    made = _bed(tmp_path, Ephyra(clouds, tmp_path / "state"), streams=2)
    yield made
    code = made.server.stop()
    made.listener.close()
    log = (tmp_path / "serve.log").read_text()
    assert code in (0, -15) and "Traceback" not in log, log[-5000:]


def _spec(markers: Path) -> dict[str, Any]:
    """An upgrade whose every command would leave a marker file behind if it ran."""
    return {
        "release": "2.0.0",
        "strategies": {
            "cmd": {
                "type": "command",
                "upgrade": f"touch {markers / 'upgrade'}",
                "version": f"touch {markers / 'version'}",
            }
        },
        "strategy": "cmd",
        "roles": {"controller": {"max_at_once": 1}, "compute": {"max_at_once": 1, "drain": False}},
        "host_upgrade": {"roles": ["compute"], "strategy": "cmd", "reboot": f"touch {markers}/r"},
        "gates": {
            "services_up": False,
            "checks": [{"name": "check", "command": f"touch {markers / 'gate'}"}],
        },
    }


def test_paths_urls_and_commands_named_by_a_caller_are_refused(bed: Bed) -> None:
    server, tmp = bed.server, bed.tmp
    puppetdb = f"puppetdb:{bed.listener.url}/#"
    named = [
        f"static:{bed.canary}",
        f"static:{tmp / 'tokens.yaml'}",  # the admin token is in it
        str(bed.canary),
        f"ansible:{bed.script}",
        f"ansible:{bed.script}?roles={bed.canary}",
        f"racks?roles={bed.canary}",
        puppetdb,
        f"openstack:{bed.canary}",
    ]
    for source in named:
        for sources in ([source], ["racks", source]):  # refused before any is read
            answer = server.call("GET", "/v1/inventory", READER, params={"source": sources})
            assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_request")
            assert "refused" in answer.json()["error"]["message"]
            bed.assert_nothing_read_run_or_fetched(answer.text)
    spec = _spec(bed.markers)
    for token, route in ((MEMBER, "/v1/upgrade/plan"), (ADMIN, "/v1/upgrade/runs")):
        for source in named:
            body = {"spec": spec, "sources": [source]}
            answer = server.call("POST", route, token, json=body)
            assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_request")
            bed.assert_nothing_read_run_or_fetched(answer.text)
    # an Alertmanager's URL in the specification: its alarm gates, its silences
    url = bed.listener.url
    silences = [{"type": "alertmanager", "url": url}, {"type": "alertmanager", "url": "ops2"}]
    for token, route in ((MEMBER, "/v1/upgrade/plan"), (ADMIN, "/v1/upgrade/runs")):
        for extra in (
            {"alarms": {"url": url}},
            {"alarms": {"url": "nowhere"}},
            {"selfheal": silences},
        ):
            body = {"spec": {**spec, **extra}, "sources": ["racks"]}
            answer = server.call("POST", route, token, json=body)
            assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_request")
            assert "name a configured one (ops)" in answer.json()["error"]["message"]
            bed.assert_nothing_read_run_or_fetched(answer.text)
    for token, route in ((MEMBER, "/v1/forklift/plan"), (ADMIN, "/v1/forklift/runs")):
        for credentials in (f"file:{bed.canary}", f"file:{tmp / 'tokens.yaml'}", "nowhere"):
            body = {"from": "cp1", "to": "cp2", "credentials": credentials}
            answer = server.call("POST", route, token, json=body)
            assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_request")
            bed.assert_nothing_read_run_or_fetched(answer.text)
    remote = ["--url", server.url, "inventory", "show"]
    for source in (f"static:{bed.canary}", f"ansible:{bed.script}", puppetdb):
        shown = bed.ephyra(*remote, "--source", source, env={"EPHYRA_TOKEN": READER})
        assert shown.code == 2 and "refused" in shown.err, shown.err
        bed.assert_nothing_read_run_or_fetched(shown.out + shown.err)
    assert server.call("GET", "/v1/runs").json()["runs"] == []


def test_configured_names_and_inline_inventories_work_and_planning_runs_nothing(
    bed: Bed,
) -> None:
    server = bed.server
    answer = server.call("GET", "/v1/inventory", READER, params={"source": "racks"})
    assert answer.status_code == 200, answer.text
    assert sorted(h["name"] for h in answer.json()["hosts"]) == ["cmp-1", "ctl-1"]
    shown = bed.ephyra(
        "--url", server.url, "--format", "json", "inventory", "show", "--source", "racks",
        env={"EPHYRA_TOKEN": READER},
    )  # fmt: skip
    assert shown.code == 0, shown.err
    assert json.loads(shown.out) == answer.json()
    spec = _spec(bed.markers)
    by_name = server.call(
        "POST", "/v1/upgrade/plan", MEMBER, json={"spec": spec, "sources": ["racks"]}
    )
    assert by_name.status_code == 200, by_name.text
    inline = server.call(
        "POST", "/v1/upgrade/plan", MEMBER, json={"spec": spec, "inventory": RACKS}
    )
    assert inline.status_code == 200, inline.text
    for plan in (by_name.json(), inline.json()):
        assert "cmp-1" in plan["text"] and "ctl-1" in plan["text"]
    assert by_name.json()["plan"]["stages"] == inline.json()["plan"]["stages"]
    alarmed = {
        **spec,
        "alarms": {"url": "ops"},
        "selfheal": [{"type": "alertmanager", "url": "ops"}],
    }
    named = server.call(
        "POST", "/v1/upgrade/plan", MEMBER, json={"spec": alarmed, "sources": ["racks"]}
    )
    assert named.status_code == 200, named.text  # a configured name; planning fetches nothing
    bad = server.call(
        "POST", "/v1/upgrade/plan", MEMBER, json={"spec": spec, "inventory": {"x": 1}}
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "bad_request")
    assert "static inventory inline: x: unknown key" in bad.json()["error"]["message"]
    bed.assert_nothing_read_run_or_fetched(by_name.text + inline.text + bad.text + named.text)
    # the command line sends its own static file inline, and plans as it does in-process
    (bed.tmp / "spec.yaml").write_text(yaml.safe_dump(spec))
    (bed.tmp / "mine.yaml").write_text(yaml.safe_dump(RACKS))
    plan = ["upgrade", "plan", "--spec", str(bed.tmp / "spec.yaml")]
    plan += ["--source", f"static:{bed.tmp / 'mine.yaml'}"]
    here = bed.ephyra(*plan)
    there = bed.ephyra("--url", server.url, *plan, env={"EPHYRA_TOKEN": MEMBER})
    assert here.code == there.code == 0, there.err
    assert here.out == there.out
    assert not list(bed.markers.iterdir()), "a program ran"


def _post(port: int, token: str | None, total: int, chunked: bool) -> tuple[int, str, int]:
    """POST ``total`` bytes to /v1/versions/verify as fast as the server takes them,
    stopping when it answers: its status, its error code and the bytes sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = [
        "POST /v1/versions/verify HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
    ]
    head += [f"X-Auth-Token: {token}"] if token else []
    head += ["Transfer-Encoding: chunked"] if chunked else [f"Content-Length: {total}"]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    block, sent = b" " * (64 * 1024), 0
    frame = f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block
    try:
        while sent < total and not select.select([sock], [], [], 0)[0]:
            sock.sendall(frame)
            sent += len(block)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed; the answer is read below
    answer = b""
    try:
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1])
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    return status, body["error"]["code"], sent


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_large_bodies_are_refused_unread(bed: Bed) -> None:
    server = bed.server
    port = server.port
    small = {"version": "1.0", "hosts": ["h1"]}
    assert server.call("POST", "/v1/versions/verify", READER, json=small).status_code == 200
    assert server.call("POST", "/v1/versions/verify", None, json=small).status_code == 401
    before = _rss_kib(server.proc.pid)
    for token, chunked, expected in (
        (None, False, (401, "unauthorized")),
        ("not-a-token-at-all", True, (401, "unauthorized")),
        (READER, False, (413, "body_too_large")),
        (READER, True, (413, "body_too_large")),
    ):
        status, code, sent = _post(port, token, 100 * MB, chunked)
        assert (status, code) == expected, (token, chunked)
        assert sent < 100 * MB  # answered before the body was all sent
    grown = (_rss_kib(server.proc.pid) - before) / 1024
    assert grown < 8, f"the server grew by {grown:.1f} MB"
    huge = {"version": "1" * (2 * MB), "hosts": ["h1"]}
    answer = server.call("POST", "/v1/versions/verify", READER, json=huge)
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "body_too_large")
    long = server.call("POST", "/v1/versions/verify", READER, json={**small, "version": "1" * 200})
    assert (long.status_code, long.json()["error"]["code"]) == (422, "invalid_request")
    assert server.call("POST", "/v1/versions/verify", READER, json=small).status_code == 200


def _open(server: Server, token: str) -> requests.Response:
    return requests.get(
        f"{server.url}/v1/events/stream",
        headers={"X-Auth-Token": token},
        stream=True,
        timeout=(10, 60),
    )


def test_event_streams_are_limited_per_caller(bed: Bed) -> None:
    server = bed.server
    held = [_open(server, READER), _open(server, READER)]
    try:
        assert [s.status_code for s in held] == [200, 200]
        over = _open(server, READER)
        assert over.status_code == 429
        assert over.json()["error"]["code"] == "too_many_streams"
        other = _open(server, MEMBER)  # another caller has its own streams
        assert other.status_code == 200
        other.close()
        held.pop().close()
        again = _open(server, READER)
        for _ in range(600):  # the server sees the closed stream within a poll or two
            if again.status_code == 200:
                break
            assert again.status_code == 429
            again = _open(server, READER)
            select.select([], [], [], 0.05)
        assert again.status_code == 200
        held.append(again)
    finally:
        for stream in held:
            stream.close()


def test_forklift_credentials_by_name_and_a_member_plan_runs_no_workload(
    clean_testbed: Testbed, tmp_path: Path
) -> None:
    ephyra = Ephyra(clean_testbed.clouds_yaml, tmp_path / "state")
    made = _bed(tmp_path, ephyra)
    try:
        write_credentials(tmp_path / "c.yaml", seed_nodes(clean_testbed.connect("cp1"), 2))
        remote = ["--url", made.server.url, "forklift", "plan", "--from", "cp1", "--to", "cp2"]
        as_member = {"EPHYRA_TOKEN": MEMBER}
        planned = ephyra(*remote, "--credentials", SEEDED, env=as_member)
        assert planned.code == 0, planned.err
        assert "node-0000" in planned.out and "node-0001" in planned.out
        refused = ephyra(*remote, "--credentials", f"file:{tmp_path / 'c.yaml'}", env=as_member)
        assert refused.code == 2 and "refused" in refused.err
        options = {f: f"touch {made.markers / f}" for f in ("prepare", "return", "app_health")}
        body = {"from": "cp1", "to": "cp2", "credentials": SEEDED, "workload": "command"}
        answer = made.server.call(
            "POST", "/v1/forklift/plan", MEMBER, json={**body, "workload_options": options}
        )
        assert answer.status_code == 200, answer.text
        # the plan names the credentials as the caller did: the server's file stays its own
        assert answer.json()["plan"]["credentials"] == f"configured credentials {SEEDED!r}"
        assert str(tmp_path / "c.yaml") not in answer.text + planned.out
        made.assert_nothing_read_run_or_fetched(answer.text + planned.out + refused.err)
    finally:
        made.server.stop()
        made.listener.close()
