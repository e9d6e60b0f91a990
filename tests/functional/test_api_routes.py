"""Every route of the served OpenAPI document, called with no token, a bad token, and a
reader's, a member's and an admin's: each answers as the policy's defaults say (401 for
no caller, 403 when its action is not the caller's, neither otherwise), the expected
answer worked out from :data:`ephyra.api.policy.ACTIONS` and the action each operation
names (``x-ephyra-action``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests

from ephyra.api.policy import ACTIONS, Identity, Policy
from tests.functional.ephyra_cli import Ephyra
from tests.functional.test_api import ADMIN, MEMBER, READER, TOKENS, Server

pytestmark = pytest.mark.functional

#: A value for each path parameter (none of them exists: the answer may be a 404).
PARAMS = {
    "kind": "forklift",
    "run": "latest",
    "run_id": "nothing",
    "host": "h",
    "cluster": "c",
    "node": "n",
}
PUBLIC = {("get", "/healthz"), ("delete", "/v1/session")}  # logging out needs no token
ANY_CALLER = {("get", "/v1/whoami"), ("post", "/v1/session")}  # a token, whatever its roles


def _status(server: Server, method: str, path: str, token: str | None) -> tuple[int, Any]:
    headers = {"X-Auth-Token": token} if token else {}
    body = {} if method in ("post", "put") else None
    with requests.request(
        method.upper(),
        server.url + path,
        headers=headers,
        json=body,
        stream=True,  # an event stream is answered, then left
        timeout=60,
    ) as answer:
        streaming = answer.headers.get("content-type", "").startswith("text/event-stream")
        error = None if streaming or answer.status_code < 400 else answer.json()["error"]["code"]
        return answer.status_code, error


def _who(token: str) -> Identity:
    info = TOKENS[token]
    return Identity(info["user"], info["project"], tuple(info["roles"]))


def test_every_route_answers_each_caller_as_the_policy_says(tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    server = Server(Ephyra(clouds, tmp_path / "state"), tmp_path)
    try:
        doc = server.call("GET", "/openapi.json", token=READER).json()
        policy = Policy()
        seen: set[str] = set()
        for path, operations in doc["paths"].items():
            concrete = re.sub(r"\{(\w+)\}", lambda m: PARAMS[m[1]], path)
            for method, operation in operations.items():
                action = operation.get("x-ephyra-action")
                where = f"{method.upper()} {path}"
                if (method, path) in PUBLIC | ANY_CALLER:
                    assert action is None, where
                else:
                    assert action in ACTIONS, f"{where}: no policy action"
                    seen.add(action)
                for token in (None, "not-a-token-at-all", READER, MEMBER, ADMIN):
                    status, code = _status(server, method, concrete, token)
                    if (method, path) in PUBLIC:
                        expected = "answered"
                    elif token not in TOKENS:
                        expected = "401"
                    elif action is not None and not policy.allows(action, _who(token)):
                        expected = "403"
                    else:
                        expected = "answered"
                    got = str(status) if status in (401, 403) else "answered"
                    assert got == expected, f"{where} as {token}: {status} {code}"
                    assert status < 500, f"{where} as {token}: {status} {code}"
                    if expected == "401":
                        assert code == "unauthorized"
                    elif expected == "403":
                        assert code == "forbidden"
        assert seen == set(ACTIONS), f"actions no route asks for: {set(ACTIONS) - seen}"
    finally:
        server.stop()
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log, log[-5000:]
