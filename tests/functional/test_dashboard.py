"""The web dashboard in headless Chromium against a real server and real Ironic: an admin
logs in, starts a forklift from the form, sees its progress move, pauses it and sees it
paused; a reader sees no button that changes anything. A screenshot of the paused run is
kept in artifacts/dashboard.png."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from testbed.ironic import Testbed
from testbed.nova import NovaTestbed
from testbed.seed import seed_nodes, snapshot, write_credentials
from tests.functional.ephyra_cli import Ephyra
from tests.functional.invariants import assert_exactly_one
from tests.functional.test_api import ADMIN, READER, SEEDED, Server
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


@pytest.fixture
def served(clean_testbed: Testbed, tmp_path: Path) -> Iterator[Server]:
    server = Server(Ephyra(clean_testbed.clouds_yaml, tmp_path / "state"), tmp_path)
    yield server
    server.stop()


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
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    log_in(page, served, ADMIN)
    expect(page.locator("#who")).to_contain_text("ada (ops): admin")
    page.select_option("#start-from", "cp1")
    page.select_option("#start-to", "cp2")
    page.fill("#start-concurrency", "1")
    page.fill("#start-credentials", SEEDED)
    began = time.monotonic()
    page.click("#start")
    expect(page.locator("#run-state")).to_have_attribute("data-state", "running", timeout=20_000)
    progress = page.locator("#run-progress")
    expect(progress).not_to_have_attribute("aria-valuenow", "0", timeout=120_000)
    moved_at = time.monotonic() - began
    assert progress.get_attribute("aria-valuemax") == "8"
    page.click('#actions button[data-action="pause"]')
    expect(page.locator("#message")).to_contain_text("pause of run")
    expect(page.locator("#run-state")).to_have_attribute("data-state", "paused", timeout=60_000)
    paused_at = time.monotonic() - began
    expect(page.locator('#actions button[data-action="resume"]')).to_be_visible()
    expect(page.locator('#actions button[data-action="pause"]')).to_be_hidden()
    (ROOT / "artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "artifacts" / "dashboard.png"), full_page=True)
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
    print(f"first node moved {moved_at:.1f} s after start, paused {paused_at:.1f} s after")


def test_a_reader_sees_nothing_to_press(browser: Browser, served: Server) -> None:
    page = browser.new_page()
    page.goto(served.url + "/")
    page.fill("#token", "a-token-nobody-has-0123")
    page.click("#enter")
    expect(page.locator("#refused")).to_have_text("token refused")
    log_in(page, served, READER)
    expect(page.locator("#who")).to_contain_text("reader")
    expect(page.locator("#start-form")).to_be_hidden()
    for action in ("pause", "resume", "abort", "rollback"):
        expect(page.locator(f'#actions button[data-action="{action}"]')).to_be_hidden()
    panel = page.locator("#audit-panel")
    expect(panel).to_have_attribute("data-allowed", "false")  # the page decided...
    expect(panel).to_be_hidden()  # ...to show no audit trail
    assert page.locator("#audit tbody tr").count() == 0


def test_hosts_maintenance_from_the_dashboard(
    browser: Browser, clean_nova: NovaTestbed, tmp_path: Path
) -> None:
    server = Server(Ephyra(clean_nova.clouds_yaml, tmp_path / "state"), tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
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
        page.close()
    finally:
        server.stop()
