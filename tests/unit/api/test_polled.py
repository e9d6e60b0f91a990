"""The reads pollers send many times a second are matched first (copies of their routes
on the app itself), with the same token check, policy and answers as before, and
without shadowing any other route of their paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from ephyra.api.routes.runs import POLLED
from ephyra.operations.local import Local
from tests.unit.api.conftest import app_for
from tests.unit.api.test_app import call

READER = "reader-token-0123456789"
NOBODY = "no-role-token-0123456789"


@pytest.fixture
def app(tmp_path: Path, local: Local) -> FastAPI:
    callers = {
        READER: {"user": "rea", "project": "ops", "roles": ["reader"]},
        NOBODY: {"user": "nob", "project": "ops", "roles": []},
    }
    return app_for(local, tmp_path, callers)


@pytest.fixture
def run_id(local: Local) -> str:
    meta = {"state": "succeeded", "phase": "forward", "from": "cp1", "to": "cp2"}
    made = local.journal.create_run("forklift", {**meta, "order": [], "created": 1.0}, {})
    return made.id


def test_the_polled_reads_come_first_outside_the_document(app: FastAPI) -> None:
    first = app.router.routes[: len(POLLED)]
    assert all(isinstance(r, APIRoute) for r in first)
    assert {(r.path, frozenset(r.methods)) for r in first if isinstance(r, APIRoute)} == POLLED
    assert [getattr(r, "path", "") for r in first] == [
        "/v1/runs",
        "/v1/runs/{run_id}",
        "/v1/{kind}/runs",
        "/v1/{kind}/runs/{run}",
    ]
    assert not any(getattr(r, "include_in_schema", True) for r in first)
    operations = app.openapi()["paths"]
    assert set(operations["/v1/{kind}/runs/{run}"]) == {"get"}
    assert set(operations["/v1/{kind}/runs"]) == {"get"}
    assert operations["/v1/{kind}/runs/{run}"]["get"]["x-ephyra-action"] == "run:list"


def test_a_status_asks_for_a_token_and_the_policy_as_before(
    app: FastAPI, local: Local, run_id: str
) -> None:
    path = f"/v1/forklift/runs/{run_id}"
    assert call(app, "GET", path).status == 401
    assert call(app, "GET", path, {"X-Auth-Token": "not-a-token-0123456789"}).status == 401
    refused = call(app, "GET", path, {"X-Auth-Token": NOBODY})
    assert (refused.status, refused.json()["error"]["code"]) == (403, "forbidden")
    answered = call(app, "GET", path, {"X-Auth-Token": READER})
    assert answered.status == 200
    assert answered.json() == json.loads(json.dumps(local.status("forklift", run_id), default=str))
    assert call(app, "GET", "/v1/nokind/runs/latest", {"X-Auth-Token": READER}).status == 422


def test_every_polled_read_answers_a_reader_only(app: FastAPI, run_id: str) -> None:
    for path in ("/v1/runs", f"/v1/runs/{run_id}", "/v1/forklift/runs", "/v1/upgrade/runs"):
        assert call(app, "GET", path).status == 401, path
        assert call(app, "GET", path, {"X-Auth-Token": NOBODY}).status == 403, path
        assert call(app, "GET", path, {"X-Auth-Token": READER}).status == 200, path
    listed = call(app, "GET", "/v1/runs", {"X-Auth-Token": READER}).json()
    assert [r["id"] for r in listed["runs"]] == [run_id]


def test_the_other_routes_of_their_paths_are_still_reached(app: FastAPI, run_id: str) -> None:
    reader = {"X-Auth-Token": READER}
    events = call(app, "GET", f"/v1/runs/{run_id}/events", reader)
    assert (events.status, events.json()) == (200, {"events": []})
    start = call(app, "POST", "/v1/forklift/runs", reader, b"{}")  # a reader may not start
    assert (start.status, start.json()["error"]["code"]) == (403, "forbidden")
    pause = call(app, "POST", f"/v1/forklift/runs/{run_id}/pause", reader)
    assert pause.status == 403
    assert call(app, "DELETE", f"/v1/forklift/runs/{run_id}", reader).status == 405
