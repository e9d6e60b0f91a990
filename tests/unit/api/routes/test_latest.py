"""``latest`` on every run route, with the kind and without: the route without it reads
the latest run of any kind (never a host's maintenance record), as the kind's route reads
the latest of its kind."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from ephyra.engine import events
from ephyra.engine.journal import RunInfo
from ephyra.operations.local import Local
from tests.unit.api.conftest import app_for
from tests.unit.api.test_app import READER, call

READING = {"X-Auth-Token": READER}
EVACUATION = {"cloud": "c1", "hosts": ["cmp-1"], "also_down": [], "settings": {}}
FORKLIFT = {"from": "cp1", "to": "cp2", "settings": {}, "order": ["u1"]}


@pytest.fixture
def app(local: Local, tmp_path: Path) -> FastAPI:
    return app_for(
        local, tmp_path, {READER: {"user": "rea", "project": "ops", "roles": ["reader"]}}
    )


def made(local: Local, kind: str, meta: dict[str, Any], state: str = "succeeded") -> RunInfo:
    record = {"state": state, "phase": "forward", "created": time.time(), **meta}
    run = local.journal.create_run(kind, record, {})
    events.add(local.journal.engine, run.id, kind, "run.started", title=kind)
    return run


def test_latest_before_any_run_is_a_404_saying_so(app: FastAPI, local: Local) -> None:
    journal = local.journal.url
    start = "(start one with: ephyra forklift start ...)"
    for path, message in (
        ("/v1/runs/latest", f"no run yet in {journal}"),
        ("/v1/runs/latest/events", f"no run yet in {journal}"),
        ("/v1/runs/latest/events/stream", f"no run yet in {journal}"),
        ("/v1/forklift/runs/latest", f"no forklift run yet in {journal} {start}"),
    ):
        answer = call(app, "GET", path, READING)
        assert answer.status == 404, path
        error = answer.json()["error"]
        assert (error["code"], error["message"]) == ("run_not_found", message), path


def test_latest_is_the_latest_run_on_every_route(app: FastAPI, local: Local) -> None:
    evacuation = made(local, "evacuate", EVACUATION)
    forklift = made(local, "forklift", FORKLIFT, "paused")
    local.journal.create_run("maintenance", {"state": "succeeded", "created": time.time()}, {})

    shown = call(app, "GET", "/v1/runs/latest", READING)
    assert shown.status == 200
    assert shown.json()["run"]["id"] == forklift.id  # not the maintenance record after it
    listed = call(app, "GET", "/v1/runs/latest/events", READING)
    assert listed.status == 200
    assert [(e["run"], e["type"]) for e in listed.json()["events"]] == [
        (forklift.id, "run.started")
    ]
    assert local.find_run("latest").id == forklift.id
    assert local.find_run(evacuation.id[:8]).id == evacuation.id
    by_kind = call(app, "GET", "/v1/evacuate/runs/latest", READING)
    assert (by_kind.status, by_kind.json()["id"]) == (200, evacuation.id)
    assert call(app, "GET", "/v1/forklift/runs/latest", READING).json()["id"] == forklift.id
