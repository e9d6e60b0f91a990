"""The dashboard's tenants view in headless Chromium, against one ``ephyra serve`` on the
testbed's real Keystone: a project frozen by a real tenant maintenance run shows frozen,
since its freeze, then not frozen once the run is rolled back (its writers back in
Keystone); ``GET /v1/tenants`` answers each role as the policy says. A tenant migration
run (seeded in the journal through the kind's own functions: the two-cloud testbed is not
started here) shows its resources by kind, done / under way / failed / pending / staying,
and each resource's state, updated as its mapping changes. Screenshots are kept in
artifacts/dashboard-tenants.png and -migrations.png."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from ephyra.engine.journal import Journal
from ephyra.engine.service import RunService
from ephyra.engine.states import Phase, RunState
from ephyra.tenants.freeze import make_freeze
from ephyra.tenants.mapping import Mapping
from ephyra.tenants.migrate_kind import TenantMigrationKind
from ephyra.tenants.migrate_plan import CREATE, REUSE, STAY, MigrationPlan, Row
from ephyra.tenants.migrate_records import OUTCOMES, MigrationMeta
from ephyra.tenants.records import Outcome
from ephyra.tenants.resources import Resource
from ephyra.tenants.steps import Record
from testbed.keystone import Keystone
from tests.functional.ephyra_cli import Ephyra
from tests.functional.tenants import CLOUD, Tenant, clouds, make_tenant, wait_for
from tests.functional.test_api import ADMIN, MEMBER, READER, Server
from tests.functional.test_dashboard import ROOT, browser, log_in
from tests.functional.test_dashboard_views import script_error

pytestmark = pytest.mark.functional
__all__ = ["browser"]  # Chromium
KIND = "tenant-maintenance"
WAIT = 30_000  # ms: the view refreshes every 2.5 s
WRITERS = {"alice", "bob", "tess"}


@dataclass
class Site:
    tenant: Tenant
    ephyra: Ephyra
    server: Server

    def page(self, browser: Browser, token: str = READER) -> tuple[Page, list[str]]:
        """A logged-in page, and the errors its scripts meet (none expected)."""
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if script_error(m) else None)
        log_in(page, self.server, token)
        return page, problems

    def tenants(self, token: str | None = READER) -> Any:
        return self.server.call("GET", "/v1/tenants", token=token)

    def run_state(self, run: str) -> str:
        answer = self.server.call("GET", f"/v1/{KIND}/runs/{run}", token=READER)
        return str(answer.json()["state"])


@pytest.fixture(scope="module")
def site(keystone: Keystone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("tenants-view")
    tenant = make_tenant(keystone, inherited=False)
    ephyra = clouds(keystone, tmp)
    server = Server(ephyra, tmp, config={})
    yield Site(tenant, ephyra, server)
    code = server.stop()
    log = (tmp / "serve.log").read_text()
    assert code in (0, -15) and "Traceback" not in log, log


def shot(page: Page, name: str) -> None:
    (ROOT / "artifacts").mkdir(exist_ok=True)
    page.locator("#tenants-panel").screenshot(path=str(ROOT / "artifacts" / name))


def writers(tenant: Tenant) -> set[str]:
    return {w.removesuffix(f"-{tenant.name}") for w in tenant.writers()}


def test_a_frozen_project_shows_frozen_then_not_frozen_after_off(
    browser: Browser, site: Site
) -> None:
    tenant, server = site.tenant, site.server
    assert writers(tenant) == WRITERS
    page, problems = site.page(browser)
    row = page.locator(f'#tenants tr.tenant[data-project-id="{tenant.project}"]')
    expect(page.locator("#migrations")).not_to_be_empty(timeout=WAIT)  # the view has loaded
    expect(row).to_have_count(0)  # never frozen: not listed

    body = {"cloud": CLOUD, "project": tenant.name}
    before = time.time()
    started = server.call("POST", f"/v1/{KIND}/runs", token=ADMIN, json=body)
    assert started.status_code == 202, started.text
    run = started.json()["id"]
    wait_for(lambda: site.run_state(run) == "succeeded", "the freeze")
    assert writers(tenant) == set()

    expect(row).to_have_attribute("data-state", "frozen", timeout=WAIT)
    expect(row).to_have_attribute("data-frozen", "true")
    expect(row).to_have_attribute("data-cloud", CLOUD)
    expect(row).to_have_attribute("data-run", run)
    expect(row.locator("td").nth(0)).to_contain_text(tenant.name)
    expect(row.locator("td").nth(2)).to_have_text("frozen")
    expect(row.locator("td.since")).not_to_be_empty()
    [frozen] = [t for t in site.tenants().json()["tenants"] if t["project_id"] == tenant.project]
    assert (frozen["state"], frozen["frozen"], frozen["run"]) == ("frozen", True, run)
    assert frozen["project"] == tenant.name and frozen["runs"] == [run]
    assert before <= frozen["since"] <= time.time()  # when the freeze was done
    shot(page, "dashboard-tenants.png")

    back = server.call("POST", f"/v1/{KIND}/runs/{run}/rollback", token=ADMIN)
    assert back.status_code == 202, back.text
    wait_for(lambda: site.run_state(run) == "rolled-back", "the unfreeze")
    assert writers(tenant) == WRITERS

    expect(row).to_have_attribute("data-state", "not frozen", timeout=WAIT)
    expect(row).to_have_attribute("data-frozen", "false")
    expect(row.locator("td").nth(2)).to_have_text("not frozen")
    [thawed] = [t for t in site.tenants().json()["tenants"] if t["project_id"] == tenant.project]
    assert (thawed["state"], thawed["frozen"], thawed["run"]) == ("not frozen", False, run)
    assert thawed["since"] > frozen["since"]  # when it was given back
    assert problems == []
    page.close()


@pytest.mark.parametrize(
    ("token", "status"),
    [(ADMIN, 200), (MEMBER, 200), (READER, 200), (None, 401)],
    ids=["admin", "member", "reader", "no-token"],
)
def test_the_tenants_read_answers_each_role(site: Site, token: str | None, status: int) -> None:
    answer = site.tenants(token)
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.json() == site.tenants(ADMIN).json()  # one view for every reader
        assert isinstance(answer.json()["tenants"], list)
    else:
        assert answer.json()["error"]["code"] == "unauthorized"


#: A tenant's resources as a migration plan lists them: (kind, name, id on A, action).
RESOURCES = [
    ("flavor", "m1.tenant", "flavor-a", CREATE),
    ("keypair", "alice-key", "key-a", REUSE),
    ("keypair", "bob-key", "key-b", CREATE),
    ("image", "cirros", "image-a", CREATE),
    ("server", "web-1", "srv-1", CREATE),
    ("server", "web-2", "srv-2", CREATE),
    ("server", "db-1", "srv-3", CREATE),
    ("server", "legacy", "srv-4", STAY),
]


def seeded_migration(site: Site, target: str) -> tuple[str, Journal, Record]:
    """A migration run in the server's journal, as the kind creates it from its plan, its
    project's forward outcome running: the run, the journal and the project's record."""
    tenant = site.tenant
    identity = tenant.identity
    freeze = make_freeze(identity, identity.project(tenant.project))
    rows = tuple(
        Row(
            Resource(
                kind,
                name,
                a_id,
                1024 if kind in ("image", "server") else 0,
                "boots from a volume" if action == STAY else "",
            ),
            action,
        )
        for kind, name, a_id, action in RESOURCES
    )
    plan = MigrationPlan(CLOUD, target, freeze, rows, {"concurrency": 2})
    kind = TenantMigrationKind()
    journal = Journal(f"sqlite:///{site.ephyra.journal_file}")
    run = RunService(kind, journal)._create(kind.new_run(plan))
    name = MigrationMeta.from_meta(run.meta).record
    record = Record(
        lambda: journal.record(run.id, name), lambda data: journal.save_record(run.id, name, data)
    )
    OUTCOMES.save(record, Phase.FORWARD, Outcome.RUNNING)
    return run.id, journal, record


def counts(page: Page, run: str, kind: str) -> dict[str, str]:
    row = page.locator(f'.migration[data-run="{run}"] tr.resource-kind[data-kind="{kind}"]')
    names = ("done", "moving", "failed", "pending", "stays", "takenback", "total")
    return {n: str(row.get_attribute(f"data-{n}")) for n in names}


def test_a_migration_shows_its_progress_by_resource(browser: Browser, site: Site) -> None:
    run, journal, record = seeded_migration(site, "ks-b")
    mapping = Mapping(record.data.setdefault("mapping", {}), record.save)
    mapping.intend("flavor", "flavor-a", "m1.tenant")
    mapping.created("flavor", "flavor-a", "flavor-b")
    mapping.reused("keypair", "key-a", "alice-key", "key-on-b")
    mapping.intend("image", "image-a", "cirros")
    mapping.created("image", "image-a", "image-b")
    mapping.intend("server", "srv-1", "web-1")
    mapping.created("server", "srv-1", "web-1-on-b")
    mapping.intend("server", "srv-2", "web-2")  # under way

    def decided_by_run() -> list[dict[str, Any]]:  # the read is cached a moment: until it is
        return [t for t in site.tenants().json()["tenants"] if t["run"] == run]

    [moving] = wait_for(decided_by_run, "the migration's project in GET /v1/tenants")
    assert (moving["project_id"], moving["cloud"]) == (site.tenant.project, CLOUD)
    assert (moving["state"], moving["frozen"]) == ("changing", True)  # frozen on A meanwhile

    page, problems = site.page(browser)
    row = page.locator(f'#tenants tr.tenant[data-project-id="{site.tenant.project}"]')
    expect(row).to_have_attribute("data-state", "changing", timeout=WAIT)
    block = page.locator(f'.migration[data-run="{run}"]')
    expect(block).to_have_attribute("data-state", "running", timeout=WAIT)
    expect(block).to_have_attribute("data-source", CLOUD)
    expect(block).to_have_attribute("data-target", "ks-b")
    expect(block.locator("h4")).to_contain_text(f"{site.tenant.name}: {CLOUD} \u2192 ks-b")
    server_row = block.locator('tr.resource-kind[data-kind="server"]')
    expect(server_row).to_have_attribute("data-moving", "1", timeout=WAIT)
    assert counts(page, run, "server") == {
        "done": "1",
        "moving": "1",
        "failed": "0",
        "pending": "1",
        "stays": "1",
        "takenback": "0",
        "total": "4",
    }
    assert counts(page, run, "keypair")["done"] == "1"
    assert counts(page, run, "keypair")["pending"] == "1"
    assert counts(page, run, "flavor")["done"] == "1"
    expect(server_row.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "1")
    expect(server_row.locator('[role="progressbar"]')).to_have_attribute("aria-valuemax", "3")
    kinds = block.locator("tr.resource-kind").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds == ["flavor", "keypair", "image", "server"]  # in the order of the plan
    block.locator("details summary").click()
    resource = block.locator('tr.resource[data-name="web-1"]')
    expect(resource).to_have_attribute("data-state", "created")
    expect(resource.locator("td").nth(4)).to_have_text("web-1-on-b")
    for name, state in (("legacy", "stays"), ("db-1", "pending")):
        expect(block.locator(f'tr.resource[data-name="{name}"]')).to_have_attribute(
            "data-state", state
        )

    # the run fails on web-2: its resource is a failure, the run's error shown
    OUTCOMES.save(record, Phase.FORWARD, Outcome.FAILED, error="server web-2: boot refused (409)")
    journal.save_run(journal.run(run), state=RunState.FAILED.value, reason="a step failed")
    expect(block).to_have_attribute("data-state", "failed", timeout=WAIT)
    expect(server_row).to_have_attribute("data-failed", "1", timeout=WAIT)
    expect(server_row).to_have_attribute("data-moving", "0")
    web2 = block.locator('tr.resource[data-name="web-2"]')
    expect(web2).to_have_attribute("data-column", "failed")  # the list stayed open
    expect(block.locator(".migration-outcome")).to_contain_text(
        "project failed: server web-2: boot refused (409)"
    )
    shot(page, "dashboard-migrations.png")
    block.locator("button.run-link").click()  # the run, in the run panel
    expect(page.locator("#run-title")).to_contain_text(f"tenant-migration {site.tenant.name}")
    expect(page.locator("#run-state")).to_have_attribute("data-state", "failed")
    journal.close()
    assert problems == []
    page.close()
