"""A conductor's metrics: its jobs by event, whether it drives a run, and the metrics of
the run it drives (of the last one until the next claim), in one registry."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest

from ephyra.engine.conductor import JOB_EVENTS, ConductorMetrics
from ephyra.engine.metrics import Exports, RunMetrics
from ephyra.engine.states import RunState


def text(metrics: ConductorMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_jobs_are_counted_from_zero_and_the_run_in_hand_is_shown(tmp_path: Path) -> None:
    metrics = ConductorMetrics("c1")
    textfile = tmp_path / "c1.prom"
    metrics.export(Exports(textfile=textfile))
    shown = text(metrics)
    for event in JOB_EVENTS:
        assert f'ephyra_conductor_jobs_total{{conductor="c1",event="{event}"}} 0.0' in shown
    assert 'ephyra_conductor_driving{conductor="c1"} 0.0' in textfile.read_text()

    run = RunMetrics("forklift", "r1")
    run.run_state(RunState.RUNNING)
    metrics.event("claimed")
    metrics.run(run.registry)
    shown = text(metrics)
    assert 'ephyra_conductor_jobs_total{conductor="c1",event="claimed"} 1.0' in shown
    assert 'ephyra_conductor_driving{conductor="c1"} 1.0' in shown
    assert 'ephyra_run_state{kind="forklift",run="r1",state="running"} 1.0' in shown
    assert shown == textfile.read_text()

    run.run_state(RunState.SUCCEEDED)
    metrics.run(None)
    metrics.event("consumed")
    shown = text(metrics)
    assert 'ephyra_conductor_driving{conductor="c1"} 0.0' in shown
    assert 'ephyra_run_state{kind="forklift",run="r1",state="succeeded"} 1.0' in shown
    assert 'ephyra_conductor_jobs_total{conductor="c1",event="consumed"} 1.0' in shown
    assert shown == textfile.read_text()
