"""What a forklift run records: run metadata as the journal keeps it, its status as
``status -f json`` gives it, and its nodes' outcomes with their table."""

from __future__ import annotations

from typing import Any

from ephyra.engine.journal import RunInfo
from ephyra.engine.states import RunState
from ephyra.forklift.kind import ForkliftKind
from ephyra.forklift.records import OUTCOMES, ForkliftMeta, Outcome
from tests.unit.outcome_tables import check_documented, check_values

N = Outcome

#: What each outcome of a node in a phase may become, as documented; anything else is refused.
DOCUMENTED: dict[Outcome, set[Outcome]] = {
    N.PENDING: {N.MOVING},
    N.MOVING: {N.MOVING, N.MOVED, N.FAILED, N.DEFERRED, N.INTERRUPTED, N.RETURNED},
    N.INTERRUPTED: {N.MOVING, N.RETURNED},
    N.FAILED: {N.MOVING},
    N.DEFERRED: {N.MOVING, N.FAILED},
    N.MOVED: set(),
    N.RETURNED: set(),
}

#: A forklift run's record as journals written before these types hold it.
STORED: dict[str, Any] = {
    "state": "rolling-back",
    "phase": "rollback",
    "created": 1700000000.5,
    "locks": ["forklift cp1<->cp2"],
    "reason": "",
    "kind": "forklift",
    "from": "cp1",
    "to": "cp2",
    "settings": {"concurrency": 2, "workload": "noop"},
    "order": ["u1", "u2"],
    "rollback_order": ["u2"],
}


class Records:
    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self._records = records

    def records(self, run_id: str, prefix: str) -> dict[str, dict[str, Any]]:
        assert prefix == "node:"
        return self._records


def test_the_outcome_table_is_the_documented_one() -> None:
    check_documented(OUTCOMES, DOCUMENTED)
    check_values(
        Outcome, {"pending", "moving", "moved", "failed", "deferred", "interrupted", "returned"}
    )


def test_meta_reads_a_stored_record_and_writes_the_same_keys() -> None:
    meta = ForkliftMeta.from_meta(STORED)
    assert meta == ForkliftMeta(
        "cp1", "cp2", {"concurrency": 2, "workload": "noop"}, ("u1", "u2"), ("u2",)
    )
    kinds = {
        k: v
        for k, v in STORED.items()
        if k in ("from", "to", "settings", "order", "rollback_order")
    }
    assert meta.to_meta() == kinds
    fresh = ForkliftMeta("cp1", "cp2", {}, ("u1",))
    assert "rollback_order" not in fresh.to_meta()  # decided at the first rollback only
    assert fresh.going_back(["u1"]).to_meta()["rollback_order"] == ["u1"]


def test_status_is_todays_json() -> None:
    run = RunInfo("0123abcd-0000", "forklift", RunState.ROLLING_BACK, STORED)
    journal = Records(
        {
            "node:u1": {"name": "n1", "forward": "moved", "rollback": "moving"},
            "node:u2": {"name": "n2", "forward": "failed", "error": "deploy failed"},
        }
    )
    status = ForkliftKind().status(journal, run).to_dict()  # type: ignore[arg-type]
    assert status == {
        "id": "0123abcd-0000",
        "state": "rolling-back",
        "phase": "rollback",
        "from": "cp1",
        "to": "cp2",
        "reason": "",
        "counts": {"moved": 1, "failed": 1},
        "nodes": [
            {"uuid": "u1", "name": "n1", "forward": "moved", "rollback": "moving", "error": ""},
            {
                "uuid": "u2",
                "name": "n2",
                "forward": "failed",
                "rollback": "",
                "error": "deploy failed",
            },
        ],
    }
    assert list(status) == ["id", "state", "phase", "from", "to", "reason", "counts", "nodes"]


def test_a_node_with_no_record_yet_is_pending_and_rows_read_the_meta() -> None:
    run = RunInfo("0123abcd-0000", "forklift", RunState.RUNNING, {**STORED, "phase": "forward"})
    status = ForkliftKind().status(Records({}), run).to_dict()  # type: ignore[arg-type]
    assert [n["forward"] for n in status["nodes"]] == ["pending", "pending"]
    kind = ForkliftKind()
    assert kind.title(run) == "cp1 -> cp2"
    back = RunInfo(run.id, "forklift", RunState.ROLLED_BACK, {**run.meta, "phase": "rollback"})
    assert kind.title(back) == "cp1 -> cp2, back to cp1"  # not "cp1 -> cp2" alone
    assert kind.total(run) == 2
    row = kind.row(run)
    assert (row["from"], row["to"], row["nodes"]) == ("cp1", "cp2", 2)
