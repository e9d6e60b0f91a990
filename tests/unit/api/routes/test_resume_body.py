"""A resume's body through the API: a new concurrency, checked as a start checks it, for the
kinds that take one; without a body, as the run has it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi import FastAPI

from ephyra.operations.local import Local
from tests.unit.api.conftest import app_for
from tests.unit.api.test_app import ADMIN, call

JSON = {"X-Auth-Token": ADMIN, "Content-Type": "application/json"}


@pytest.fixture
def app(local: Local, tmp_path: Path) -> FastAPI:
    return app_for(local, tmp_path, {ADMIN: {"user": "ada", "project": "ops", "roles": ["admin"]}})


def resume(app: FastAPI, kind: str, body: object | None) -> tuple[int, str, str]:
    data = b"" if body is None else json.dumps(body).encode()
    answer = call(app, "POST", f"/v1/{kind}/runs/latest/resume", JSON, data)
    error = answer.json().get("error") or {}
    return answer.status, error.get("code", ""), error.get("message", "")


def test_a_resume_body_is_checked_before_anything_is_done(app: FastAPI, local: Local) -> None:
    meta = {"state": "paused", "phase": "forward", "created": time.time()}
    upgrade = local.journal.create_run("upgrade", {**meta, "cloud": None}, {})
    settings = {"concurrency": 4, "fallback": "cold", "on_timeout": "abort"}
    evacuation = local.journal.create_run(
        "evacuate", {**meta, "cloud": "c1", "hosts": [], "settings": settings}, {}
    )
    assert resume(app, "evacuate", {"concurrency": 0})[:2] == (422, "invalid_request")
    assert resume(app, "evacuate", {"concurrency": 2, "per_host": 9})[:2] == (
        422,
        "invalid_request",
    )
    status, code, message = resume(app, "upgrade", {"concurrency": 2})
    assert (status, message) == (400, "upgrade runs take no concurrency on resume"), code
    for run in (upgrade, evacuation):  # refused: nothing changed, nothing driven
        assert local.journal.run(run.id).meta == run.meta
    for body in (None, {}):  # no body, or an empty one: a resume as the run has it
        assert resume(app, "forklift", body)[:2] == (404, "run_not_found")
