"""Downtime measured: an upgrade probes a real TCP listener, a real HTTP endpoint and an
address pinged while it runs. The controller's upgrade command closes the listener and
takes the address off the host (and waits until the run's report shows both
unreachable), the compute's reopens the one and puts back the other (and waits until the
report shows the outages over): ``ephyra run report`` shows one outage of the listener
and one of the address, each overlapping the controller's stage and ending in the
compute's, and none of the endpoint. Through
``ephyra serve`` a probe target is a name its operator configured: one a caller names is
refused (member planning, admin starting), every role reads a run's report, and the
dashboard draws it."""

from __future__ import annotations

import http.server
import json
import socketserver
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import expect, sync_playwright
from pyroute2 import IPRoute

from testbed.ironic import free_port
from tests.functional.ephyra_cli import EPHYRA, Ephyra
from tests.functional.test_api import ADMIN, MEMBER, READER, Server
from tests.functional.test_dashboard import CHROMIUM, FLAGS, log_in

pytestmark = pytest.mark.functional

HOSTS = {
    "hosts": {
        "ctl-1": {"roles": ["controller"], "services": ["nova-conductor"]},
        "cmp-1": {"roles": ["compute"], "services": ["nova-compute"]},
    }
}
#: The upgrade command: the controller's closes the listener (and takes its address off
#: the host), the compute's reopens it (and puts the address back); each waits until the
#: run's report shows what it did.
TOGGLE = """\
import json, subprocess, sys, time, urllib.request

host, control, *ephyra = sys.argv[1:]
action = {"ctl-1": "close", "cmp-1": "open"}[host]
urllib.request.urlopen(control + "/" + action, timeout=10).read()
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    report = subprocess.run(
        [*ephyra, "run", "report", "latest", "-f", "json"],
        capture_output=True, text=True, check=True,
    ).stdout
    found = {t["target"]: t["outages"] for t in json.loads(report)["targets"]}
    seen = [found.get(name) for name in ("listener", "address")]
    if all(o and (action == "close" or not o[-1]["open"]) for o in seen):
        sys.exit(0)
    time.sleep(0.5)
sys.exit("the report never showed the listener " + action + "d")
"""


#: An address (RFC 5737, for documentation) on the loopback device while the listener is
#: open: pinged by an icmp probe.
ADDRESS = "198.51.100.78"


class Listener:
    """A TCP listener on loopback that accepts (and counts) connections, closed and
    reopened on the same port when asked over HTTP, and ``ADDRESS`` on the loopback device
    while it is open; the HTTP server is the probed endpoint too."""

    def __init__(self) -> None:
        self.port, self.accepted = free_port(), 0
        self.tcp: socketserver.TCPServer | None = None
        self.ip = IPRoute()
        self.lo = self.ip.link_lookup(ifname="lo")[0]
        self.open()
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/close":
                    listener.close()
                elif self.path == "/open":
                    listener.open()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def open(self) -> None:
        listener = self

        class Count(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                listener.accepted += 1

        socketserver.TCPServer.allow_reuse_address = True
        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Count)
        threading.Thread(target=self.tcp.serve_forever, daemon=True).start()
        self.ip.addr("add", index=self.lo, address=ADDRESS, prefixlen=32)

    def close(self) -> None:
        if self.tcp is not None:
            self.tcp.shutdown()
            self.tcp.server_close()
            self.tcp = None
            self.ip.addr("del", index=self.lo, address=ADDRESS, prefixlen=32)

    def stop(self) -> None:
        self.close()
        self.ip.close()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.stop()


def spec(command: str, targets: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "release": "2.0",
        "strategies": {"toggle": {"type": "command", "upgrade": command}},
        "strategy": "toggle",
        "roles": {"compute": {"max_at_once": 1, "drain": False}},
        "gates": {"services_up": False},
        "availability": {"interval": 0},
        "probes": {"interval": 0.2, "timeout": 2, "targets": targets},
    }


def test_the_report_shows_the_outage_of_the_target_a_stage_closed_and_none_of_the_other(
    listener: Listener, tmp_path: Path
) -> None:
    toggle = tmp_path / "toggle.py"
    toggle.write_text(textwrap.dedent(TOGGLE))
    clouds, inventory, spec_file = (tmp_path / n for n in ("clouds.yaml", "h.yaml", "s.yaml"))
    clouds.write_text("clouds: {}\n")
    inventory.write_text(yaml.safe_dump(HOSTS))
    command = f"{sys.executable} {toggle} {{host}} {listener.url} {' '.join(EPHYRA)}"
    targets = [
        {"name": "listener", "type": "tcp", "target": f"127.0.0.1:{listener.port}"},
        {"name": "endpoint", "type": "http", "target": f"{listener.url}/"},
        {"name": "address", "type": "icmp", "target": ADDRESS},
    ]
    spec_file.write_text(yaml.safe_dump(spec(command, targets)))
    ephyra = Ephyra(clouds, tmp_path / "state")
    started = ephyra(
        "upgrade", "start", "--spec", str(spec_file), "--source", f"static:{inventory}"
    )
    assert started.code == 0, started.err

    report = json.loads(ephyra("run", "report", "latest", "-f", "json").out)
    stage = {u["host"]: u["stage"] for u in report["units"]}
    spans = {s["stage"]: (s["start"], s["end"]) for s in report["stages"]}
    control, compute = spans[stage["ctl-1"]], spans[stage["cmp-1"]]
    probed = {t["target"]: t for t in report["targets"]}
    assert probed["endpoint"]["probes"] > 0 and probed["endpoint"]["outages"] == []
    [outage] = probed["listener"]["outages"]
    assert outage["stages"] == [stage["ctl-1"], stage["cmp-1"]]
    assert control[0] <= outage["start"] <= control[1]  # closed in the controller's stage
    assert compute[0] <= outage["end"] <= compute[1]  # reopened in the compute's
    assert not outage["open"] and "connection" in outage["error"].lower()  # refused, reset
    assert probed["listener"]["downtime_seconds"] == outage["seconds"] > 0
    [pinged] = probed["address"]["outages"]  # off the host from one stage to the next
    assert pinged["stages"] == outage["stages"] and pinged["error"] == "no echo reply"
    assert control[0] <= pinged["start"] <= control[1]
    assert compute[0] <= pinged["end"] <= compute[1]

    shown = ephyra("run", "report", "latest")
    assert shown.code == 0, shown.err
    rows = {
        line.split("|")[0].strip(): line.split("|")[1]
        for line in shown.out.splitlines()
        if "|" in line
    }
    assert "X" in rows["target listener"] and "X" not in rows["target endpoint"]
    assert "X" in rows["target address"]
    assert "=" in rows[f"stage {stage['ctl-1']}"] and "=" in rows[f"stage {stage['cmp-1']}"]
    assert [label for label in rows if label.startswith("unit ")] == [
        f"unit {u['unit']}" for u in report["units"]
    ]
    assert "  endpoint: none" in shown.out and "listener: " in shown.out


def test_through_the_api_a_probe_target_is_a_configured_name_and_every_role_reads_reports(
    listener: Listener, tmp_path: Path
) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    ephyra = Ephyra(clouds, tmp_path / "state")
    config = {"probes": {"vip": f"127.0.0.1:{listener.port}"}}
    server = Server(ephyra, tmp_path, config=config)
    try:
        named = [
            {"name": "vip", "type": "tcp", "target": f"127.0.0.1:{listener.port}"},
            {"name": "api", "type": "http", "target": f"{listener.url}/"},
            {"name": "vip", "type": "tcp", "target": "elsewhere"},
        ]
        for token, route in ((MEMBER, "/v1/upgrade/plan"), (ADMIN, "/v1/upgrade/runs")):
            for target in named:
                body = {"spec": spec("true", [target]), "inventory": HOSTS}
                answer = server.call("POST", route, token, json=body)
                assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_request")
                assert "probe target" in answer.json()["error"]["message"]
                assert "name a configured one (vip)" in answer.json()["error"]["message"]
        assert listener.accepted == 0 and server.call("GET", "/v1/runs").json()["runs"] == []

        body = {"spec": spec("true", [{"name": "vip", "type": "tcp", "target": "vip"}])}
        started = server.call("POST", "/v1/upgrade/runs", ADMIN, json={**body, "inventory": HOSTS})
        assert started.status_code in (200, 201, 202), started.text
        run = started.json()["id"]
        deadline = time.monotonic() + 60
        while server.call("GET", f"/v1/runs/{run}").json()["run"]["state"] != "succeeded":
            assert time.monotonic() < deadline, "the run did not succeed"
            time.sleep(0.2)
        for token in (READER, MEMBER, ADMIN):
            answer = server.call("GET", f"/v1/runs/{run}/report", token)
            assert answer.status_code == 200, answer.text
            [vip] = answer.json()["targets"]
            assert (vip["target"], vip["outages"]) == ("vip", []) and vip["probes"] > 0
        assert server.call("GET", f"/v1/runs/{run}/report", None).status_code == 401
        assert listener.accepted > 0  # the configured address was probed
        seen_on_the_dashboard(server, run)
    finally:
        code = server.stop()
    log = (tmp_path / "serve.log").read_text()
    assert code in (0, -15) and "Traceback" not in log, log[-5000:]


def seen_on_the_dashboard(server: Server, run: str) -> None:
    """A reader's dashboard draws the run's downtime: a row for the target, the stages
    and the units, and the target's downtime in words."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            log_in(page, server, READER)
            page.click(f'#runs tr[data-run-id="{run}"]')
            chart = page.locator("#downtime .downtime-chart")
            expect(chart.locator('g[data-row="target"][data-name="vip"]')).to_have_count(1)
            expect(chart.locator('g[data-row="stage"]')).to_have_count(2)
            expect(chart.locator('g[data-row="unit"]')).to_have_count(2)
            expect(chart.locator('rect[data-outage="1"]')).to_have_count(0)
            expect(page.locator('#downtime li[data-target="vip"]')).to_contain_text("no outage")
            assert errors == [], errors
        finally:
            browser.close()
