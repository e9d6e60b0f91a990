"""The dashboard's versions, environments and metrics views in headless Chromium, against
one ``ephyra serve`` on a real etcd with real ``ephyra agent`` processes announcing
themselves: hosts by role coloured by their lifecycle state, the desired version and each
role's progress as a version rolls out (one host failing it); an environment imported,
put under upgrade and its primary reinstalled, its nodes' modes and the cutover shown;
the metrics charts drawn from ``/metrics``. Screenshots of each view are kept in
artifacts/dashboard-versions.png, -environments.png and -metrics.png."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from testbed.etcd import Etcd
from testbed.netns import environment
from tests.functional.ephyra_cli import Ephyra
from tests.functional.test_api import ADMIN, READER, Server
from tests.functional.test_dashboard import ROOT, browser, log_in
from tests.functional.test_kind_files import kinds_path, waiting
from tests.functional.versions.test_agent import Fleet, converged, eventually

pytestmark = pytest.mark.functional
__all__ = ["browser", "kinds_path"]  # Chromium; the test-only files kind, for a real run

AT_LEAST_1, AT_LEAST_4 = re.compile(r"^[1-9]\d*$"), re.compile(r"^([4-9]|\d{2,})$")
POINT = r"-?[\d.]+,-?[\d.]+"
THREE_POINTS = re.compile(rf"^{POINT}( {POINT}){{2,}}$")  # a polyline of 3 points or more
WAIT = 30_000  # ms: the views refresh every 2-3 s, the agents poll every 0.5 s


class Site:
    """One server on the store the agents announce themselves in."""

    def __init__(self, root: Path, etcd: Etcd, kinds: Path) -> None:
        prefix = f"/views-{uuid.uuid4().hex[:12]}"
        self.fleet = Fleet(root / "fleet", etcd.url, prefix)
        (root / "fleet").mkdir()
        clouds = root / "clouds.yaml"
        clouds.write_text("clouds: {}\n")
        self.ephyra = Ephyra(clouds, root / "state")
        self.ephyra.env.update({"EPHYRA_STORE": etcd.url, "EPHYRA_PREFIX": prefix})
        paths = [str(kinds), str(ROOT), self.ephyra.env.get("PYTHONPATH", "")]
        self.ephyra.env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)  # + files kind
        self.server = Server(self.ephyra, root)

    def page(self, browser: Browser, token: str = ADMIN) -> tuple[Page, list[str]]:
        """A logged-in page, and the errors its scripts meet (none expected): exceptions,
        refusals by the content security policy; not the answers 4xx the test asks for."""
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if script_error(m) else None)
        log_in(page, self.server, token)
        return page, problems


def script_error(message: ConsoleMessage) -> bool:
    return message.type == "error" and not message.text.startswith("Failed to load resource")


@pytest.fixture(scope="module")
def site(etcd: Etcd, kinds_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    made = Site(tmp_path_factory.mktemp("views"), etcd, kinds_path)
    yield made
    made.fleet.stop()
    made.server.stop()


def shot(page: Page, section: str, name: str) -> None:
    (ROOT / "artifacts").mkdir(exist_ok=True)
    page.locator(section).screenshot(path=str(ROOT / "artifacts" / name))


def test_versions_by_role_with_a_rollout(browser: Browser, site: Site) -> None:
    fleet = site.fleet
    fleet.start("ctl-1", "controller", "db")
    fleet.start("cmp-1", "compute")
    fleet.start("cmp-2", "compute", fail="cmp-2-2.0")  # its update to 2.0 fails
    assert fleet("version", "trigger", "1.0")[0] == 0
    fleet.up()
    eventually(converged(fleet, "1.0", ["ctl-1", "cmp-1", "cmp-2"]), 30)

    page, problems = site.page(browser)
    view = page.locator("#versions-panel")
    expect(view.locator("#versions-current")).to_have_attribute("data-version", "1.0")
    compute = view.locator('.role[data-role="compute"]')
    expect(compute).to_have_attribute("data-done", "2", timeout=WAIT)
    expect(compute).to_have_attribute("data-total", "2")
    expect(compute.locator(".role-progress")).to_have_text("2 of 2 on 1.0")
    for role, host in (("controller", "ctl-1"), ("db", "ctl-1"), ("compute", "cmp-2")):
        chip = view.locator(f'.role[data-role="{role}"] li.host[data-host="{host}"]')
        # they ran 1.0 before their agents started: nothing to configure, no service state
        expect(chip).to_have_class("host lc-none converged")
        expect(chip).to_have_attribute("data-state", "-")
    expect(view.locator("#versions-summary")).to_contain_text("3 of 3 hosts converged")

    page.fill("#versions-version", "2.0")  # an admin triggers from the view
    page.fill("#versions-max", "compute=2")
    page.click("#versions-go")
    expect(page.locator("#versions-said")).to_have_text("current version 2.0 (was 1.0)")
    expect(view.locator("#versions-current")).to_have_attribute("data-version", "2.0")
    failed = compute.locator('li.host[data-host="cmp-2"]')
    expect(failed).to_have_attribute("data-state", "configured/failure", timeout=WAIT)
    expect(failed).to_have_class("host lc-configured-failure")
    expect(failed).to_contain_text("configured/failure 2.0")
    reason = compute.locator('ul.failures li[data-host="cmp-2"]')
    expect(reason).to_contain_text("dpkg: error processing cmp-2")
    expect(reason).to_contain_text("(log: ")
    expect(compute).to_have_attribute("data-done", "1", timeout=WAIT)
    expect(compute.locator(".role-progress")).to_have_text("1 of 2 on 2.0, 1 failed")
    expect(compute.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "1")
    good = compute.locator('li.host[data-host="cmp-1"]')
    expect(good).to_have_attribute("data-running", "2.0")
    expect(good).to_have_class("host lc-validated-success converged")
    controller = view.locator('.role[data-role="controller"]')
    expect(controller.locator(".role-progress")).to_have_text("1 of 1 on 2.0", timeout=WAIT)
    expect(controller.locator("li.host")).to_have_class("host lc-validated-success converged")
    expect(view.locator("#versions-summary")).to_contain_text("2 of 3 hosts converged")
    status = site.server.call("GET", "/v1/versions/status", token=READER).json()
    assert (status["current_version"], status["converged"]) == ("2.0", 2)

    page.fill("#versions-version", "3.0")  # refused while cmp-2 lags, as on the command line
    page.fill("#versions-max", "")
    page.click("#versions-go")
    expect(page.locator("#versions-said")).to_contain_text("have not converged on 2.0")
    expect(page.locator("#versions-said")).to_contain_text("(bad_request)")
    expect(view.locator("#versions-current")).to_have_attribute("data-version", "2.0")
    shot(page, "#versions-panel", "dashboard-versions.png")
    assert problems == []
    page.close()

    reader, problems = site.page(browser, READER)  # a reader sees the view, no trigger form
    expect(reader.locator('li.host[data-host="cmp-1"]').first).to_be_visible(timeout=WAIT)
    expect(reader.locator("#versions-trigger")).to_be_hidden()
    assert problems == []
    reader.close()


def nodes_of(page: Page, env: str) -> dict[str, tuple[str | None, str | None]]:
    """node -> (mode, status) as the view shows them."""
    rows = page.locator(f'.env[data-env="{env}"] tbody tr')
    found: dict[str, tuple[str | None, str | None]] = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        found[row.get_attribute("data-node") or ""] = (
            row.get_attribute("data-mode"),
            row.get_attribute("data-status"),
        )
    return found


def imported(name: str, ident: int, **changes: Any) -> dict[str, Any]:
    env = environment(
        ident,
        name,
        [
            ("ctl-a", "primary-controller", 11, None),
            ("ctl-b", "controller", 12, None),
            ("cmp-a", "compute", 21, None),
        ],
    )
    env.update(changes)
    return env


def test_environments_with_modes_and_cutover(browser: Browser, site: Site) -> None:
    server = site.server
    assert server.call("POST", "/v1/clusters", json=imported("site-a", 1)).status_code == 200
    page, problems = site.page(browser)
    env = page.locator('.env[data-env="site-a"]')
    cut = env.locator(".cutover")
    expect(env).to_have_attribute("data-status", "operational", timeout=WAIT)
    expect(cut).to_have_attribute("data-cutover", "none")
    expect(env.locator('tr[data-node="ctl-a"]')).to_have_attribute("data-mode", "default")

    assert server.call("PUT", "/v1/clusters/site-a/upgrade", json={"release_id": 2}).ok
    expect(cut).to_have_attribute("data-cutover", "waiting", timeout=WAIT)
    expect(cut).to_contain_text("reinstalling ctl-a")
    expect(env.locator('tr[data-node="ctl-a"]')).to_contain_text("1 \u2192 2")
    assert nodes_of(page, "site-a") == {
        "ctl-a": ("isolated", "ready"),  # reinstalled beside the old plane, off the VIPs
        "ctl-b": ("default", "ready"),
        "cmp-a": ("default", "ready"),
    }

    assert server.call("PUT", "/v1/clusters/site-a/nodes/ctl-a/installed").ok
    expect(cut).to_have_attribute("data-cutover", "ready", timeout=WAIT)
    expect(cut).to_contain_text("ready, 0 of 1 old nodes detached")
    expect(cut).to_contain_text("(to leave the VIP networks: ctl-b)")
    expect(env.locator(".env-release")).to_have_text("1 of 3 nodes on release 2")
    expect(env.locator('tr[data-node="ctl-b"]')).to_have_attribute("data-mode", "cutover")
    expect(env.locator('tr[data-node="ctl-b"]')).to_contain_text("ready to take the VIPs on ctl-a")

    after = imported("site-b", 2, status="upgrade", release_id=2)  # as a cutover leaves one
    after["nodes"][0]["release_id"] = 2
    after["nodes"][1]["status"] = "detached"
    assert server.call("POST", "/v1/clusters", json=after).status_code == 200
    done = page.locator('.env[data-env="site-b"] .cutover')
    expect(done).to_have_attribute("data-cutover", "done", timeout=WAIT)
    expect(done).to_have_attribute("data-done", "1")
    expect(done).to_contain_text("done, 1 of 1 old nodes off the VIP networks")
    assert nodes_of(page, "site-b")["ctl-b"] == ("cutover", "detached")
    shot(page, "#environments-panel", "dashboard-environments.png")
    assert problems == []
    page.close()


def test_metrics_charts(browser: Browser, site: Site, tmp_path: Path) -> None:
    page, problems = site.page(browser, READER)
    requests = page.locator("#metric-requests")
    expect(requests).to_have_attribute("data-samples", AT_LEAST_1, timeout=WAIT)  # 2 scrapes
    before = int(page.locator("#metric-requests small").inner_text().split()[0])
    for _ in range(40):
        assert site.server.call("GET", "/v1/clouds", token=READER).status_code == 200
    for _ in range(5):
        assert site.server.call("GET", "/v1/clusters/nowhere", token=READER).status_code == 404
    expect(requests).to_have_attribute("data-samples", AT_LEAST_4, timeout=WAIT)
    after = int(page.locator("#metric-requests small").inner_text().split()[0])
    assert after >= before + 45
    assert float(page.locator("#metric-latency").get_attribute("data-value") or "-1") > 0
    assert int(page.locator("#metric-errors small").inner_text().split()[0]) >= 5  # the 404s
    runs, items = page.locator("#metric-runs"), page.locator("#metric-items")
    expect(runs.locator("small")).to_have_text("no run")

    files = tmp_path / "files"  # a real run (3 steps, each waiting for its gate files)
    files.mkdir()
    held = site.ephyra.background(
        "files", "start", "--yes", "--dir", str(files), "--steps", "3", "--hold"
    )
    waiting(held, "begin-0")
    expect(runs).to_have_attribute("data-value", "1", timeout=WAIT)
    expect(runs.locator("small")).to_have_text("1 running")
    expect(items).to_have_attribute("data-value", "0")
    for i in range(3):
        for gate in (f"begin-{i}", f"end-{i}"):
            (files / gate).touch()
    assert held.finish(60).code == 0
    expect(runs.locator("small")).to_have_text("1 succeeded", timeout=WAIT)
    expect(runs).to_have_attribute("data-value", "0")
    expect(items).to_have_attribute("data-value", "3")
    expect(page.locator("#metric-events small")).not_to_have_text("0 since start")
    for chart in ("runs", "items", "requests", "latency", "errors", "events"):
        line = page.locator(f"#metric-{chart} svg polyline")
        expect(line).to_have_attribute("points", THREE_POINTS)
    shot(page, "#metrics-panel", "dashboard-metrics.png")
    assert problems == []
    page.close()
