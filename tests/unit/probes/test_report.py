"""The downtime report: when each unit and stage ran (from the run's events), each
target's outages set against them, and the text timeline."""

from __future__ import annotations

from typing import Any

from ephyra.probes.report import Item, build, lines, unit_spans

T = 1_700_000_000.0  # 22:13:20Z
ITEMS = [
    Item("control:nova-api@ctl-1", "ctl-1", "control plane: nova-api"),
    Item("control:nova-conductor@ctl-1", "ctl-1", "control plane: nova-conductor"),
    Item("data@cmp-1", "cmp-1", "data plane: compute"),
]


def step(at: float, host: str, status: str = "started") -> dict[str, Any]:
    return {"type": "step", "time": T + at, "node": host, "step": "upgrade", "status": status}


def node(at: float, unit: str, outcome: str = "upgraded") -> dict[str, Any]:
    return {"type": "node", "time": T + at, "node": unit, "outcome": outcome}


EVENTS = [
    {"type": "run.started", "time": T},
    step(1, "ctl-1"),
    step(5, "ctl-1", "finished"),
    node(6, "control:nova-api@ctl-1"),
    step(7, "ctl-1"),  # the same host's next unit
    node(10, "control:nova-conductor@ctl-1"),
    {"type": "step", "time": T + 10.5, "node": "vm-1", "step": "migrate", "status": "started"},
    step(11, "cmp-1"),
]
TIMELINES = {
    "vip": {
        "started": T,
        "last": T + 20,
        "bins": [[0, 40, 6, 3], [1, 40, 0, 2]],
        "outages": [{"start": T + 8, "end": T + 12, "error": "connection refused"}],
    },
    "api": {"started": T, "bins": [[0, 10, 0, 30]], "outages": []},  # kept before "last"
    "never": {},
}


def test_each_unit_runs_from_its_hosts_first_step_to_its_outcome_and_a_running_one_to_now() -> None:
    spans = unit_spans(EVENTS, ITEMS, now=T + 15)
    assert spans == {
        "control:nova-api@ctl-1": [[T + 1, T + 6]],
        "control:nova-conductor@ctl-1": [[T + 7, T + 10]],
        "data@cmp-1": [[T + 11, T + 15]],
    }
    stopped = unit_spans([*EVENTS, {"type": "run.finished", "time": T + 13}], ITEMS, T + 99)
    assert stopped["data@cmp-1"] == [[T + 11, T + 13]]


def test_a_targets_outages_name_the_stages_and_units_they_overlap() -> None:
    report = build(TIMELINES, EVENTS, ITEMS, now=T + 15)
    vip, api = report["targets"]
    assert (vip["target"], vip["downtime_seconds"], vip["longest_outage_seconds"]) == ("vip", 4, 4)
    assert (vip["probes"], vip["failures"]) == (80, 6)
    assert vip["outages"] == [
        {
            "start": T + 8,
            "end": T + 12,
            "seconds": 4.0,
            "error": "connection refused",
            "open": False,
            "stages": ["control plane: nova-conductor", "data plane: compute"],
            "units": ["control:nova-conductor@ctl-1", "data@cmp-1"],
        }
    ]
    assert (api["target"], api["outages"], api["last"]) == ("api", [], T + 10)  # one bin
    assert [s["stage"] for s in report["stages"]] == [i.stage for i in ITEMS]
    assert (report["start"], report["end"]) == (T, T + 20)


def test_the_text_shows_each_targets_downtime_and_a_row_per_target_stage_and_unit() -> None:
    shown = lines(build(TIMELINES, EVENTS, ITEMS, now=T + 15), width=20)
    assert shown == [
        "downtime by target:",
        "  vip: 4.0s in 1 outage(s), longest 4.0s (6 of 80 probes unanswered)",
        "    22:13:28Z-22:13:32Z 4.0s (connection refused) during 'control plane: "
        "nova-conductor', 'data plane: compute'",
        "  api: none (10 probes answered)",
        "timeline, 1s per column (X unreachable, . answered, = running):",
        "  target vip                          |........XXXX........|",
        "  target api                          |..........          |",
        "  stage control plane: nova-api       | =====              |",
        "    unit control:nova-api@ctl-1       | =====              |",
        "  stage control plane: nova-conductor |       ===          |",
        "    unit control:nova-conductor@ctl-1 |       ===          |",
        "  stage data plane: compute           |           ====     |",
        "    unit data@cmp-1                   |           ====     |",
        "                                      22:13:20Z    22:13:40Z",
    ]
    assert lines(build({}, [], [], now=T)) == ["nothing probed and no unit ran yet"]
