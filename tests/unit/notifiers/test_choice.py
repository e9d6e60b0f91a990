"""A run's notifiers, chosen by name: through the API's start body (a caller names, never
gives a target) and kept with the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI

from ephyra.engine.service import _told
from ephyra.operations.local import Local
from tests.unit.api.conftest import app_for
from tests.unit.api.test_app import ADMIN, call

JSON = {"X-Auth-Token": ADMIN, "Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notifiers.yaml"
    path.write_text(
        yaml.safe_dump(
            {"default": ["hook"], "notifiers": {"hook": {"type": "webhook", "url": "http://h/"}}}
        )
    )
    path.chmod(0o600)
    monkeypatch.setenv("EPHYRA_NOTIFIERS", str(path))


@pytest.fixture
def local(tmp_path: Path) -> Local:
    return Local(f"sqlite:///{tmp_path}/journal.db", f"file://{tmp_path}/locks")


@pytest.fixture
def app(local: Local, tmp_path: Path) -> FastAPI:
    return app_for(local, tmp_path, {ADMIN: {"user": "ada", "project": "ops", "roles": ["admin"]}})


def start(app: FastAPI, body: object) -> tuple[int, str, str]:
    answer = call(app, "POST", "/v1/evacuate/runs", JSON, json.dumps(body).encode())
    error = answer.json().get("error") or {}
    return answer.status, error.get("code", ""), error.get("message", "")


def test_an_unknown_notifier_is_refused_before_the_run_is_made(app: FastAPI, local: Local) -> None:
    body = {"cloud": "c1", "hosts": ["cmp-1"], "notify": ["hook", "pager"]}
    status, code, message = start(app, body)
    assert (status, code) == (400, "bad_request")
    assert message.startswith("no notifier named 'pager' (configured: hook, log)")
    assert local.journal.runs() == []


@pytest.mark.parametrize("notify", [["https://evil.example/x"], "hook", [""]])
def test_a_target_or_a_bad_name_is_no_notifier(app: FastAPI, local: Local, notify: object) -> None:
    status, code, _ = start(app, {"cloud": "c1", "hosts": ["cmp-1"], "notify": notify})
    assert (status, code) == (422, "invalid_request")
    assert local.journal.runs() == []


def test_what_a_run_keeps_named_or_by_default() -> None:
    assert _told(["log", "hook", "log"]) == {"notify": ["log", "hook"]}
    assert _told(None) == {"notify": ["hook"]}
    assert _told([]) == {"notify": []}
