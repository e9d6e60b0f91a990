"""What an evacuation records: run metadata as the journal keeps it, its status as
``status -f json`` gives it, and its hosts' outcomes with their table."""

from __future__ import annotations

from typing import Any

from ephyra.compute.kind import EvacuationKind
from ephyra.compute.records import OUTCOMES, EvacuationMeta, Outcome
from ephyra.engine.journal import RunInfo
from ephyra.engine.states import RunState
from tests.unit.outcome_tables import check_documented, check_values

H = Outcome

#: What each outcome of a host in a phase may become, as documented; anything else is refused.
DOCUMENTED: dict[Outcome, set[Outcome]] = {
    H.PENDING: {H.RUNNING},
    H.RUNNING: {
        H.RUNNING,
        H.DRAINED,
        H.RESTORED,
        H.HANDED_OVER,
        H.HANDED_BACK,
        H.HALTED,
        H.FAILED,
        H.INTERRUPTED,
    },
    H.INTERRUPTED: {H.RUNNING},
    H.HALTED: {H.RUNNING},
    H.FAILED: {H.RUNNING},
    H.DRAINED: set(),
    H.RESTORED: set(),
    H.HANDED_OVER: set(),
    H.HANDED_BACK: set(),
}

STORED: dict[str, Any] = {
    "state": "paused",
    "phase": "forward",
    "created": 1700000000.0,
    "locks": ["host c1 cmp-1"],
    "reason": "a control plane is gone",
    "kind": "evacuate",
    "cloud": "c1",
    "hosts": ["cmp-1"],
    "also_down": ["cmp-9"],
    "settings": {"concurrency": 4, "fallback": "cold"},
}
#: A maintenance record, listed with the evacuations: no settings, no also_down.
MAINTENANCE: dict[str, Any] = {
    "state": "succeeded",
    "cloud": "c1",
    "hosts": ["cmp-2"],
    "created": 1.0,
    "kind": "maintenance",
}


class Records:
    def records(self, run_id: str, prefix: str) -> dict[str, dict[str, Any]]:
        assert prefix == "host:"
        return {
            "host:cmp-1": {
                "forward": "interrupted",
                "drain_seconds": 3.5,
                "servers": {
                    "s1": {
                        "name": "vm1",
                        "project": "p",
                        "how": "live",
                        "outcome": "moved",
                        "to": "cmp-3",
                    },
                    "s2": {"name": "vm2", "project": "p", "outcome": "moving"},
                },
            }
        }


def test_the_outcome_table_is_the_documented_one() -> None:
    check_documented(OUTCOMES, DOCUMENTED)
    check_values(
        Outcome,
        {
            "pending",
            "running",
            "drained",
            "restored",
            "handed-over",
            "handed-back",
            "halted",
            "failed",
            "interrupted",
        },
    )


def test_meta_reads_a_stored_record_and_writes_the_same_keys() -> None:
    meta = EvacuationMeta.from_meta(STORED)
    assert meta == EvacuationMeta(
        "c1", ("cmp-1",), ("cmp-9",), {"concurrency": 4, "fallback": "cold"}
    )
    kept = {k: STORED[k] for k in ("cloud", "hosts", "also_down", "settings")}
    assert meta.to_meta() == {**kept, "batches": []}  # a run kept before batches
    assert meta.in_batches() == [["cmp-1"]]  # drains its hosts at once


def test_status_is_todays_json() -> None:
    run = RunInfo("feed0000-1", "evacuate", RunState.PAUSED, STORED)
    status = EvacuationKind().status(Records(), run).to_dict()  # type: ignore[arg-type]
    assert status == {
        "id": "feed0000-1",
        "state": "paused",
        "phase": "forward",
        "cloud": "c1",
        "reason": "a control plane is gone",
        "counts": {"moved": 1, "moving": 1},
        "hosts": [
            {
                "host": "cmp-1",
                "forward": "interrupted",
                "rollback": "",
                "drain_seconds": 3.5,
                "error": "",
            }
        ],
        "servers": [
            {
                "id": "s1",
                "name": "vm1",
                "project": "p",
                "from": "cmp-1",
                "how": "live",
                "outcome": "moved",
                "to": "cmp-3",
                "detail": "",
            },
            {
                "id": "s2",
                "name": "vm2",
                "project": "p",
                "from": "cmp-1",
                "how": "",
                "outcome": "moving",
                "to": "",
                "detail": "",
            },
        ],
    }
    assert list(status) == ["id", "state", "phase", "cloud", "reason", "counts", "hosts", "servers"]


def test_a_maintenance_record_lists_with_the_evacuations() -> None:
    run = RunInfo("beef0000-2", "maintenance", RunState.SUCCEEDED, MAINTENANCE)
    kind = EvacuationKind()
    row = kind.row(run)
    assert (row["kind"], row["cloud"], row["hosts"]) == ("maintenance", "c1", "cmp-2")
    assert kind.title(run) == "cmp-2 on c1"
    assert kind.total(run) == 1


def test_progress_counts_hosts_not_the_servers_they_lost() -> None:
    """A run's progress (``run list``, the dashboard) is its hosts': each moved server has
    its own events, which must not count against the number of hosts."""
    meta = {**STORED, "hosts": ["cmp-1", "cmp-2", "cmp-3"]}
    run = RunInfo("feed0000-1", "evacuate", RunState.RUNNING, meta)
    kind = EvacuationKind()
    servers = {"vm-1 (bcc0b832)": "moved", "vm-2 (9954070d)": "moved", "vm-3 (1e2d)": "failed"}
    assert kind.tally(run, servers) == (0, 0)
    hosts = {**servers, "cmp-1": "drained", "cmp-2": "failed", "cmp-3": "running"}
    assert kind.tally(run, hosts) == (1, 1)
    assert kind.tally(run, {"cmp-1": "restored", "cmp-2": "restored"}) == (2, 0)
