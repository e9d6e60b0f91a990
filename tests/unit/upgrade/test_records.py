"""What an upgrade run records: run metadata as the journal keeps it, its status as
``status -f json`` gives it, and its units' outcomes with their table."""

from __future__ import annotations

from typing import Any

from ephyra.engine.journal import RunInfo
from ephyra.engine.states import RunState
from ephyra.upgrade.kind import UpgradeKind
from ephyra.upgrade.plan import Action, Batch, Plan, Stage, Unit
from ephyra.upgrade.records import OUTCOMES, Outcome, UpgradeMeta
from tests.unit.outcome_tables import check_documented, check_values

U = Outcome

#: What each outcome of a unit in a phase may become, as documented; anything else is refused.
DOCUMENTED: dict[Outcome, set[Outcome]] = {
    U.PENDING: {U.RUNNING},
    U.RUNNING: {U.RUNNING, U.UPGRADED, U.RESTORED, U.FAILED, U.INTERRUPTED},
    U.INTERRUPTED: {U.RUNNING},
    U.UPGRADED: {U.FAILED},  # a canary whose gate fails after its soak
    U.FAILED: {U.RETRY, U.RUNNING},
    U.RETRY: {U.RUNNING},
    U.RESTORED: set(),
}

UNITS = (
    Unit("data@cmp-1", "cmp-1", "compute", "data", (Action("pkg", ("nova-compute",)),)),
    Unit("data@cmp-2", "cmp-2", "compute", "data", (Action("pkg", ("nova-compute",)),)),
)
PLAN = Plan(
    "2026.2",
    "service",
    (
        Stage(
            "data plane: compute",
            "data",
            "compute",
            (Batch(UNITS[:1], canary=True), Batch(UNITS[1:])),
            ("cmp-9",),
        ),
    ),
)
STORED: dict[str, Any] = {
    "state": "failed",
    "phase": "forward",
    "created": 1700000000.0,
    "locks": ["upgrade c1"],
    "reason": "1 unit(s) failed: data@cmp-2",
    "kind": "upgrade",
    "cloud": "c1",
    "release": "2026.2",
    "spec": {"release": "2026.2"},
    "plan": PLAN.to_dict(),
}


PROBED = {
    "started": 1700000000.0,
    "bins": [[0, 10, 0, 120], [1, 10, 4, 3000], [3, 5, 5, 2000]],
    "outages": [
        {"start": 1700000012.0, "end": 1700000016.5, "error": "c1: list servers: HTTP 503"},
        {"start": 1700000030.0, "end": 1700000035.0, "error": "ConnectionError", "open": True},
    ],
}


VERDICTS = [
    {"check": "nova-services", "level": "ok", "subject": "Nova", "message": "4 up", "todo": ""},
    {
        "check": "placement",
        "level": "warn",
        "subject": "allocation c-1",
        "message": "consumer c-1 holds VCPU 1 on cmp-1: no server",
        "todo": "--heal",
    },
]


class Records:
    def records(self, run_id: str, prefix: str) -> dict[str, dict[str, Any]]:
        if prefix == "availability":
            return {"availability": PROBED}
        if prefix == "preflight":
            return {"preflight": {"at": 1700000000.0, "verdicts": VERDICTS}}
        if prefix == "approvals":  # none kept: a run made before approvals were
            return {}
        assert prefix == "unit:"
        return {
            "unit:data@cmp-1": {
                "forward": "upgraded",
                "actions": {"0": {"before": "30.0", "after": "31.0"}},
                "output": [f"line {i}" for i in range(7)],
                "healed": [
                    {
                        "consumer": "c-9",
                        "provider": "rp-1",
                        "host": "cmp-1",
                        "resources": {"VCPU": 1},
                        "why": "no server or migration under way has this id",
                        "at": 1700000001.0,
                    }
                ],
            },
            "unit:data@cmp-2": {
                "forward": "failed",
                "error": "apt-get exited with 100",
                "actions": {"0": {"before": "30.0", "kept": "pkg has no downgrade"}},
            },
        }


def test_the_outcome_table_is_the_documented_one() -> None:
    check_documented(OUTCOMES, DOCUMENTED)
    check_values(
        Outcome, {"pending", "running", "upgraded", "restored", "failed", "interrupted", "retry"}
    )


def test_meta_reads_a_stored_record_and_writes_the_same_keys() -> None:
    meta = UpgradeMeta.from_meta(STORED)
    assert (meta.cloud, meta.release, meta.units) == ("c1", "2026.2", 2)
    assert meta.to_meta() == {k: STORED[k] for k in ("cloud", "release", "spec", "plan")}
    assert UpgradeMeta.from_meta({**STORED, "cloud": None}).cloud is None


def test_status_is_todays_json() -> None:
    run = RunInfo("ab000000-3", "upgrade", RunState.FAILED, STORED)
    status = UpgradeKind().status(Records(), run).to_dict()  # type: ignore[arg-type]
    common = {"stage": "data plane: compute", "rollback": ""}
    assert status == {
        "id": "ab000000-3",
        "state": "failed",
        "phase": "forward",
        "release": "2026.2",
        "cloud": "c1",
        "reason": "1 unit(s) failed: data@cmp-2",
        "counts": {"upgraded": 1, "failed": 1},
        "frozen": ["cmp-9"],
        "availability": {
            **PROBED,
            "probes": 25,
            "failures": 9,
            "answered_percent": 64.0,
            "longest_outage_seconds": 5.0,
            "slowest_answer_seconds": 3.0,
        },
        "preflight": VERDICTS,
        "approvals": [],
        "units": [
            {
                "unit": "data@cmp-1",
                **common,
                "batch": 1,
                "host": "cmp-1",
                "forward": "upgraded",
                "versions": "30.0->31.0",
                "kept": "",
                "error": "",
                "output": [f"line {i}" for i in range(2, 7)],
                "healed": ["c-9 on cmp-1 (no server or migration under way has this id)"],
            },
            {
                "unit": "data@cmp-2",
                **common,
                "batch": 2,
                "host": "cmp-2",
                "forward": "failed",
                "versions": "30.0->None",
                "kept": "pkg has no downgrade",
                "error": "apt-get exited with 100",
                "output": [],
                "healed": [],
            },
        ],
    }
    assert list(status) == [
        "id",
        "state",
        "phase",
        "release",
        "cloud",
        "reason",
        "counts",
        "frozen",
        "availability",
        "preflight",
        "approvals",
        "units",
    ]
    assert UpgradeKind().view(status).lines[-5:] == [
        "preflight: 1 ok, 1 warn, 0 block",
        "  warn: placement: allocation c-1: consumer c-1 holds VCPU 1 on cmp-1: no server",
        "compute API during the run: 64.0% of 25 probes answered, slowest 3.0s; 2 outage(s), "
        "longest 5.0s from 22:13:50Z (ConnectionError)",
        "timeline (10s per mark; . answered, : some failed, X none answered):",
        "  22:13:20Z .: X",
    ]
    assert list(status["units"][0]) == [
        "unit",
        "stage",
        "batch",
        "host",
        "forward",
        "rollback",
        "versions",
        "kept",
        "error",
        "output",
        "healed",
    ]


def test_rows_read_the_meta() -> None:
    run = RunInfo("ab000000-3", "upgrade", RunState.FAILED, {**STORED, "cloud": None})
    kind = UpgradeKind()
    assert kind.title(run) == "to 2026.2"
    back = RunInfo(run.id, "upgrade", RunState.ROLLING_BACK, {**run.meta, "phase": "rollback"})
    assert kind.title(back) == "back from 2026.2"
    assert kind.total(run) == 2
    assert (kind.row(run)["cloud"], kind.row(run)["units"]) == ("", 2)
