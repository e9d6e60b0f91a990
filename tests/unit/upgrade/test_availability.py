"""The compute API's availability timeline: probes into bins and outages, and the probe
thread that feeds it."""

from __future__ import annotations

import threading

from ephyra.errors import CloudError
from ephyra.upgrade.availability import Probe, Timeline, why


def test_failed_probes_in_a_row_are_one_outage_ended_by_the_next_answer() -> None:
    timeline = Timeline()
    for at, seconds, error in (
        (100.0, 0.1, None),
        (101.0, 0.2, "c1: list servers: HTTP 503"),
        (102.0, 1.5, "ConnectionError"),
        (104.0, 0.1, None),
        (115.0, 0.3, "ConnectionError"),
    ):
        timeline.add(at, seconds, error)
    assert timeline.bins == [[0, 4, 2, 1500], [1, 1, 1, 300]]
    assert timeline.outages == [
        {"start": 101.0, "end": 104.0, "error": "c1: list servers: HTTP 503"},
        {"start": 115.0, "end": 115.3, "error": "ConnectionError", "open": True},
    ]
    assert timeline.summary() == {
        "probes": 5,
        "failures": 3,
        "answered_percent": 40.0,
        "longest_outage_seconds": 3.0,
        "slowest_answer_seconds": 1.5,
    }
    again = Timeline.from_dict(timeline.to_dict())  # a resumed run carries on from it
    again.add(116.0, 0.1, None)
    assert again.outages[-1] == {"start": 115.0, "end": 116.0, "error": "ConnectionError"}


def test_a_probe_tells_ephyras_words_and_only_the_kind_of_any_other_error() -> None:
    assert why(CloudError("c1: list servers: HTTP 503")) == "c1: list servers: HTTP 503"
    assert why(OSError("secret body /etc/passwd")) == "OSError"


def test_the_probe_thread_asks_until_stopped_and_saves_at_the_end() -> None:
    asked = 0
    enough = threading.Event()

    def ask() -> None:
        nonlocal asked
        asked += 1
        if asked >= 6:
            enough.set()
        if asked % 2:
            raise CloudError("down")

    saved: list[dict[str, object]] = []
    with Probe(ask, Timeline(), lambda t: saved.append(t.to_dict()), 0.1):
        assert enough.wait(30)
    last = saved[-1]
    assert last["probes"] == asked and last["failures"] == (asked + 1) // 2
