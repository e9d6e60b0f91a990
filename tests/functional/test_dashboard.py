"""The web dashboard in headless Chromium against a real server, real Ironic and real Nova:
an admin plans a forklift from the form (the plan's tree and estimate), starts it, sees
its progress, timeline and events move, pauses it and sees it paused; plans an upgrade
with a configured inventory; evacuates a compute host from the form; a reader sees no
button that changes anything, and the hosts panel of a cloud without Nova says why in a
notice. Screenshots of each view are kept in artifacts/dashboard-*.png."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from testbed.ironic import Testbed
from testbed.nova import NovaTestbed
from testbed.seed import seed_nodes, snapshot, write_credentials
from tests.functional.ephyra_cli import Ephyra
from tests.functional.invariants import assert_exactly_one
from tests.functional.test_api import ADMIN, MEMBER, READER, SEEDED, Server
from tests.functional.test_api_boundary import RACKS
from tests.functional.test_host import service

pytestmark = pytest.mark.functional
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


#: An upgrade specification whose commands do nothing (a plan runs none anyway).
SPEC: dict[str, Any] = {
    "release": "2.0.0",
    "strategies": {"cmd": {"type": "command", "upgrade": "true", "version": "true"}},
    "strategy": "cmd",
    "roles": {"controller": {"max_at_once": 1}, "compute": {"max_at_once": 1, "drain": False}},
    "host_upgrade": {"roles": ["compute"], "strategy": "cmd", "reboot": "true"},
    "gates": {"services_up": False},
}


@pytest.fixture
def served(clean_testbed: Testbed, tmp_path: Path) -> Iterator[Server]:
    """``ephyra serve`` with the seeded credentials and an inventory named ``racks``."""
    (tmp_path / "racks.yaml").write_text(yaml.safe_dump(RACKS))
    config = {
        "credentials": {SEEDED: f"file:{tmp_path / 'c.yaml'}"},
        "inventory": {"racks": f"static:{tmp_path / 'racks.yaml'}"},
    }
    server = Server(Ephyra(clean_testbed.clouds_yaml, tmp_path / "state"), tmp_path, config=config)
    yield server
    server.stop()


#: The errors each page's scripts raised (none is expected).
SCRIPT_ERRORS: dict[Page, list[str]] = {}


def open_page(browser: Browser, height: int = 1000) -> Page:
    """A page whose script errors are kept, for :func:`shot` to check."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    errors = SCRIPT_ERRORS.setdefault(page, [])
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def shot(page: Page, view: str) -> None:
    """A screenshot of the whole page, kept as artifacts/dashboard-VIEW.png; the page's
    scripts raised no error so far."""
    assert SCRIPT_ERRORS.get(page) == [], SCRIPT_ERRORS.get(page)
    (ROOT / "artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "artifacts" / f"dashboard-{view}.png"), full_page=True)


def estimate(page: Page, name: str) -> str:
    return page.locator(f'#plan-estimate dd[data-estimate="{name}"]').inner_text()


def log_in(page: Page, server: Server, token: str) -> None:
    page.goto(server.url + "/")
    page.fill("#token", token)
    page.click("#enter")
    expect(page.locator("#who")).not_to_be_empty(timeout=10_000)


def test_start_watch_and_pause_a_forklift(
    browser: Browser, served: Server, clean_testbed: Testbed, tmp_path: Path
) -> None:
    specs = seed_nodes(clean_testbed.connect("cp1"), 8)
    write_credentials(tmp_path / "c.yaml", specs)  # the server's SEEDED credentials
    original = snapshot(clean_testbed.connect("cp1"))
    page = open_page(browser)
    log_in(page, served, ADMIN)
    expect(page.locator("#who")).to_contain_text("ada (ops): admin")
    expect(page.locator("#forklift-form")).to_be_visible()  # the first kind of the form
    page.select_option("#start-from", "cp1")
    page.select_option("#start-to", "cp2")
    page.fill("#start-concurrency", "1")
    page.fill("#start-credentials", SEEDED)
    page.click("#forklift-form .plan-button")
    tree = page.locator("#plan-tree")
    expect(page.locator("#plan-title")).to_have_text("forklift cp1 → cp2", timeout=30_000)
    for name in sorted(n["name"] for n in original.values()):
        expect(tree.locator("details.item > summary", has_text=name)).to_be_visible()
    assert (estimate(page, "nodes"), estimate(page, "batches")) == ("8", "8")
    assert (estimate(page, "at once"), estimate(page, "workload")) == ("1", "noop")
    first = tree.locator("details.item").first
    expect(first.locator(".leaf.step").first).to_be_hidden()  # a node's steps: collapsed...
    first.locator("summary").click()
    expect(first.locator(".leaf.step").first).to_be_visible()  # ...until it is opened
    shot(page, "forklift-plan")
    assert served.call("GET", "/v1/runs").json()["runs"] == []  # a plan starts nothing
    began = time.monotonic()
    page.click("#start")
    expect(page.locator("#run-state")).to_have_attribute("data-state", "running", timeout=20_000)
    expect(page.locator("#plan")).to_be_hidden()
    progress = page.locator("#run-progress")
    expect(progress).not_to_have_attribute("aria-valuenow", "0", timeout=120_000)
    moved_at = time.monotonic() - began
    assert progress.get_attribute("aria-valuemax") == "8"
    # the timeline: the first node's row holds its finished steps, the list its events
    row = page.locator('#timeline .row[data-item="node-0000"]')
    expect(row).to_have_attribute("data-outcome", "moved", timeout=30_000)
    expect(row.locator('.span[data-status="finished"]').first).to_be_visible()
    events = page.locator("#events tbody tr")
    expect(events.first).to_be_visible()
    seen = events.count()
    page.wait_for_function(
        "seen => document.querySelectorAll('#events tbody tr').length > seen", arg=seen
    )
    assert page.locator("#timeline .row").count() >= 2  # the next node's row came
    newest, oldest = (int(events.nth(i).get_attribute("data-seq") or 0) for i in (0, -1))
    assert newest > oldest
    shot(page, "run-live")
    page.click('#actions button[data-action="pause"]')
    expect(page.locator("#message")).to_contain_text("pause of run")
    expect(page.locator("#run-state")).to_have_attribute("data-state", "paused", timeout=60_000)
    paused_at = time.monotonic() - began
    expect(page.locator('#actions button[data-action="resume"]')).to_be_visible()
    expect(page.locator('#actions button[data-action="pause"]')).to_be_hidden()
    shot(page, "paused")
    run_id = page.locator("tr.run.selected").get_attribute("data-run-id")
    audit = page.locator("#audit-panel")  # an admin sees who did what
    expect(audit).to_have_attribute("data-allowed", "true")
    expect(audit).to_be_visible()
    expect(audit.locator("tbody tr").first).to_contain_text("run:pause", timeout=20_000)
    expect(audit).to_contain_text(f"forklift/{run_id}")
    expect(audit).to_contain_text("run:start")
    expect(audit).to_contain_text("ada (ops)")
    shown = served.call("GET", f"/v1/runs/{run_id}").json()["run"]
    assert shown["state"] == "paused" and 1 <= shown["done"] < 8
    assert_exactly_one(clean_testbed, list(original))  # nothing left between the two
    timeline = page.locator("#timeline .row")  # the timeline shows what the journal holds:
    journaled = served.call("GET", f"/v1/runs/{run_id}/events").json()["events"]
    items = {e["node"] for e in journaled if e.get("node")}  # a row per node an event names
    expect(timeline).to_have_count(len(items))  # (one stopped before its first step, too)
    print(f"first node moved {moved_at:.1f} s after start, paused {paused_at:.1f} s after")


def test_plan_an_upgrade_from_the_form(browser: Browser, served: Server) -> None:
    page = open_page(browser)
    log_in(page, served, ADMIN)
    page.click('#kinds button[data-kind="upgrade"]')
    expect(page.locator("#forklift-form")).to_be_hidden()
    page.fill("#upgrade-spec", "{not json")
    page.click("#upgrade-form .plan-button")
    notice = page.locator("#plan-notice")
    expect(notice).to_contain_text("the specification is not JSON")
    page.fill("#upgrade-spec", json.dumps(SPEC, indent=1))
    page.fill("#upgrade-sources", "/etc/passwd")  # a path: the server refuses it
    page.click("#upgrade-form .plan-button")
    expect(notice).to_have_attribute("data-code", "bad_request")
    expect(notice).to_contain_text("refused: name a configured source (racks)")
    expect(page.locator("#plan")).to_be_hidden()
    page.fill("#upgrade-sources", "racks")
    page.click("#upgrade-form .plan-button")
    expect(notice).to_be_hidden()
    expect(page.locator("#plan-title")).to_contain_text("upgrade to 2.0.0")
    planned = served.call("POST", "/v1/upgrade/plan", json={"spec": SPEC, "sources": ["racks"]})
    plan = planned.json()["plan"]
    units = [u["host"] for s in plan["stages"] for b in s["batches"] for u in b["units"]]
    assert sorted(units) == ["cmp-1", "ctl-1"]
    assert estimate(page, "units") == "2"
    assert estimate(page, "stages") == str(len(plan["stages"]))
    assert estimate(page, "duration").endswith(("s", "min", "h"))
    tree = page.locator("#plan-tree")
    for stage in plan["stages"]:
        expect(tree.locator("details.stage > summary", has_text=stage["name"])).to_be_visible()
    for host in units:
        expect(tree.locator("details.item > summary", has_text=host)).to_be_visible()
    expect(page.locator("#start")).to_be_visible()
    shot(page, "upgrade-plan")
    assert served.call("GET", "/v1/runs").json()["runs"] == []
    page.close()
    member = open_page(browser)  # a member plans, and has nothing to start with
    log_in(member, served, MEMBER)
    member.click('#kinds button[data-kind="upgrade"]')
    member.fill("#upgrade-spec", json.dumps(SPEC))
    member.fill("#upgrade-sources", "racks")
    member.click("#upgrade-form .plan-button")
    expect(member.locator("#plan-title")).to_contain_text("upgrade to 2.0.0")
    expect(member.locator("#start")).to_be_hidden()
    member.close()


def test_login_page_a_reader_and_a_cloud_without_nova(browser: Browser, served: Server) -> None:
    page = open_page(browser, 900)
    page.goto(served.url + "/")
    where = page.locator("#where")
    expect(where).to_contain_text("api-tokens.yaml")
    expect(where).to_contain_text("openstack token issue -f value -c id")
    shot(page, "login")
    page.fill("#token", "a-token-nobody-has-0123")
    page.click("#enter")
    expect(page.locator("#refused")).to_have_text("token refused")
    log_in(page, served, READER)
    expect(page.locator("#who")).to_contain_text("reader")
    expect(page.locator("#new-panel")).to_be_hidden()  # a reader plans nothing
    for action in ("pause", "resume", "abort", "rollback"):
        expect(page.locator(f'#actions button[data-action="{action}"]')).to_be_hidden()
    panel = page.locator("#audit-panel")
    expect(panel).to_have_attribute("data-allowed", "false")  # the page decided...
    expect(panel).to_be_hidden()  # ...to show no audit trail
    assert page.locator("#audit tbody tr").count() == 0
    # compute hosts of an Ironic-only cloud: the API's error, as a notice in the panel
    answer = served.call("GET", "/v1/hosts?cloud=cp1", READER)
    assert answer.status_code >= 400
    error = answer.json()["error"]
    page.select_option("#hosts-cloud", "cp1")
    page.click("#hosts-load")
    notice = page.locator("#hosts-notice")
    expect(notice).to_have_attribute("data-code", error["code"])
    expect(notice).to_contain_text(error["message"].partition(", request id")[0])  # (its own id)
    expect(page.locator("#hosts tbody tr")).to_have_count(0)
    expect(page.locator("#message")).to_be_hidden()  # the notice is the panel's, not the page's
    shot(page, "hosts-notice")


def test_hosts_maintenance_from_the_dashboard(
    browser: Browser, clean_nova: NovaTestbed, tmp_path: Path
) -> None:
    server = Server(Ephyra(clean_nova.clouds_yaml, tmp_path / "state"), tmp_path)
    try:
        page = open_page(browser)
        log_in(page, server, ADMIN)
        page.select_option("#hosts-cloud", "nova")
        page.click("#hosts-load")
        row = page.locator('#hosts tr[data-host="compute-1"]')
        expect(row).to_contain_text("enabled")
        row.locator('button[data-action="maintenance-on"]').click()
        expect(page.locator("#message")).to_contain_text("nova-compute disabled")
        expect(row).to_contain_text("yes (Ephyra)")
        assert service(clean_nova, "compute-1")["status"] == "disabled"
        row.locator('button[data-action="maintenance-off"]').click()
        expect(row).to_contain_text("enabled")
        expect(row.locator('button[data-action="evacuate"]')).to_be_visible()
        assert service(clean_nova, "compute-1")["status"] == "enabled"
        evacuate_from_the_form(page, server, clean_nova)
        page.close()
    finally:
        server.stop()


def evacuate_from_the_form(page: Page, server: Server, nova: NovaTestbed) -> None:
    """Plan the evacuation of compute-1 from the form (its servers in the tree), start it,
    and see it succeed with the host empty."""
    names = {s.id: s.name for s in nova.wait_servers(nova.boot("compute-1", 2), "ACTIVE")}
    page.locator('#hosts tr[data-host="compute-2"] button[data-action="evacuate"]').click()
    expect(page.locator("#plan-title")).to_have_text("evacuate 1 host(s) of nova")  # planned...
    expect(page.locator("#evacuate-hosts")).to_have_value("compute-2")  # ...from the form
    assert estimate(page, "servers") == "0"
    assert server.call("GET", "/v1/runs").json()["runs"] == []  # and nothing started
    page.click('#kinds button[data-kind="evacuate"]')
    page.select_option("#evacuate-cloud", "nova")
    page.fill("#evacuate-hosts", "compute-1")
    page.click("#evacuate-form .plan-button")
    expect(page.locator("#plan-title")).to_have_text("evacuate 1 host(s) of nova", timeout=30_000)
    host = page.locator("#plan-tree details.item").first
    expect(host.locator("summary").first).to_contain_text("compute-1")
    for name in names.values():
        expect(host.locator(".leaf.server", has_text=name)).to_be_visible()
    assert (estimate(page, "hosts"), estimate(page, "servers")) == ("1", "2")
    shot(page, "evacuate-plan")
    page.click("#start")
    state = page.locator("#run-state")
    expect(state).to_have_attribute("data-state", "succeeded", timeout=300_000)
    expect(page.locator('#timeline .row[data-item="compute-1"]')).to_be_visible()
    moves = page.locator('#timeline .row[data-outcome^="moved"]')  # a row per server
    expect(moves).to_have_count(2)
    expect(moves.locator('.span[data-status="finished"]')).to_have_count(2)
    expect(page.locator('#hosts tr[data-host="compute-1"]')).to_contain_text("yes (Ephyra)")
    expect(page.locator("#events tbody tr").first).to_be_visible()
    expect(page.locator("#run-counts")).to_have_text("1 of 1 done, 0 failed")  # the host's
    listed = page.locator("tr.run.selected .bar")  # the list catches up within its refresh
    expect(listed).to_have_attribute("data-done", "1")
    expect(listed).to_have_attribute("data-total", "1")
    shot(page, "evacuated")
    assert nova.servers_on("compute-1") == []
    run_id = page.locator("tr.run.selected").get_attribute("data-run-id")
    assert server.call("GET", f"/v1/runs/{run_id}").json()["run"]["state"] == "succeeded"
