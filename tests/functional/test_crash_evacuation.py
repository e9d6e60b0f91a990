"""The evacuation's crash matrix against real Nova (harness: ``tests.functional.crash``):
an evacuation killed -9 mid-drain (a live migration under way), aborted in a new process,
then rolled back in another: the host the run put in maintenance is enabled again, the
servers stay where they are, and no server was migrated twice.

Kills at the evacuation's other step boundaries and mid-drain, resumed, are in
``test_host.py`` (test_kill_9_mid_migration_then_resume_finishes_the_drain_within_budget)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ephyra.compute.steps import DrainHost
from testbed.nova import NovaTestbed
from testbed.nova_watch import migrations_of, wait_until
from tests.functional.crash import MID, Crash, KillPoint, ok, reported, said
from tests.functional.ephyra_cli import Ephyra, Result
from tests.functional.test_host import evacuate, service

pytestmark = pytest.mark.functional
SERVERS = 3
#: Where a migration's status stops changing.
ENDED = {"completed", "error", "failed", "cancelled", "done", "confirmed"}


def test_killed_mid_drain_then_aborted_then_rolled_back_in_new_processes(
    clean_nova: NovaTestbed, tmp_path: Path, report: list[str]
) -> None:
    ephyra = Ephyra(clean_nova.clouds_yaml, tmp_path / "state")
    conn = clean_nova.connect()
    ids = clean_nova.boot("compute-1", SERVERS, project="alpha")
    point = KillPoint("abort", DrainHost.title, MID)
    one_at_a_time = ("--concurrency", "1", "--per-host", "1")
    proc = ephyra.background(*evacuate("compute-1", *one_at_a_time))

    def landed() -> None:
        """The host in maintenance by this run, the drain unfinished, nobody driving it."""
        svc = service(clean_nova, "compute-1")
        assert svc["status"] == "disabled"
        assert svc["disabled_reason"].startswith("ephyra evacuate run ")
        assert len(clean_nova.servers_on("compute-1")) >= SERVERS - 1, "the drain was done"
        shown = ok(ephyra("--format", "json", "host", "status")).out
        assert '"state": "running"' in shown, shown

    def recover() -> Result:
        aborted = ok(ephyra("host", "abort"))
        assert "aborted; its hosts stay in maintenance until rollback" in aborted.out
        assert service(clean_nova, "compute-1")["status"] == "disabled"
        return ephyra("host", "rollback")

    def check() -> None:
        svc = service(clean_nova, "compute-1")
        assert svc["status"] == "enabled", svc  # maintenance off: this run had put it on
        for sid in ids:  # the migration under way at the kill ends in Nova, once
            wait_until(
                lambda sid=sid: all(s in ENDED for _, s in migrations_of(conn, sid)),
                what=f"the migrations of {sid} ended",
            )
        moved = {sid: migrations_of(conn, sid) for sid in ids}
        assert all(len(m) <= 1 for m in moved.values()), moved  # nobody migrated twice
        assert sum(m == [("live-migration", "completed")] for m in moved.values()) >= 1, moved
        shown = ok(ephyra("--format", "json", "host", "status")).out
        assert '"state": "rolled-back"' in shown, shown

    with reported(report, "evacuation", point):
        Crash(
            held=lambda: proc.wait_for(said("live from compute-1 started")),
            landed=landed,
            recover=recover,
            check=check,
        ).run(proc)
