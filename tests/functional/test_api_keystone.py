"""The API behind a real Keystone: no token and expired tokens are refused, a reader
may not write anywhere, a member may pause but not start, an admin may do it all; the
command line gets its token from clouds.yaml."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testbed.keystone import Keystone
from tests.functional.ephyra_cli import Ephyra
from tests.functional.test_api import Server

pytestmark = pytest.mark.functional
#: A POST that only reads (the hosts to verify go in its body).
READS = {"/v1/versions/verify"}


@pytest.fixture(scope="module")
def users(keystone: Keystone) -> dict[str, str]:
    """role -> password of a user with that role on project ops."""
    return {
        role: keystone.add_user(f"{role}-user", "ops", role)
        for role in ("reader", "member", "admin")
    }


@pytest.fixture
def served(keystone: Keystone, users: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    clouds = {"server": keystone.clouds_entry("admin", keystone.admin_password, "admin")}
    for role, password in users.items():
        clouds[role] = keystone.clouds_entry(f"{role}-user", password, "ops")
    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump({"clouds": clouds}))
    ephyra = Ephyra(tmp_path / "clouds.yaml", tmp_path / "state")
    server = Server(ephyra, tmp_path, ["--auth", "keystone", "--os-cloud", "server"])
    server.ephyra = ephyra  # type: ignore[attr-defined]
    yield server
    server.stop()


def writes(server: Server, token: str) -> list[tuple[str, str]]:
    paths = json.loads(server.call("GET", "/openapi.json", token=token).text)["paths"]
    found = []
    for path, methods in paths.items():
        for method in methods:
            if method in ("post", "put") and path not in READS:
                concrete = path.replace("{kind}", "forklift").replace("{run}", "latest")
                found.append((method.upper(), concrete.replace("{host}", "h")))
    return found


def test_tokens_and_roles_from_keystone(
    served: Server, keystone: Keystone, users: dict[str, str]
) -> None:
    token = {role: keystone.token(f"{role}-user", pw, "ops") for role, pw in users.items()}
    assert served.call("GET", "/v1/runs", token=None).status_code == 401
    assert served.call("GET", "/v1/runs", token="gAAAAA-not-a-fernet-token").status_code == 401
    me = served.call("GET", "/v1/whoami", token=token["reader"]).json()
    assert (me["user"], me["project"], me["roles"]) == ("reader-user", "ops", ["reader"])
    assert served.call("GET", "/v1/runs", token=token["reader"]).status_code == 200
    routes = writes(served, token["reader"])
    assert len(routes) >= 10
    for method, path in routes:  # a reader may not write, anywhere
        answer = served.call(method, path, token=token["reader"], json={})
        assert answer.status_code == 403, f"{method} {path}: {answer.status_code}"
        assert answer.json()["error"]["code"] == "forbidden"
    # a member may pause (no run to pause here: 404, not 403), not start
    pause = served.call("POST", "/v1/forklift/runs/latest/pause", token=token["member"])
    assert pause.status_code == 404 and pause.json()["error"]["code"] == "run_not_found"
    start = served.call("POST", "/v1/forklift/runs", token=token["member"], json={})
    assert start.status_code == 403
    # an admin may do everything; the answers are the operations' own
    for method, path in routes:
        answer = served.call(method, path, token=token["admin"], json={})
        assert answer.status_code not in (401, 403), f"{method} {path}: {answer.text}"
    made = served.call(
        "POST", "/v1/versions/trigger", token=token["admin"], json={"version": "2.0"}
    )
    assert made.status_code == 200 and made.json()["version"] == "2.0"
    admin = served.call("GET", "/v1/whoami", token=token["admin"]).json()
    assert all(admin["allowed"].values())


def test_an_expired_token_is_refused(
    served: Server, keystone: Keystone, users: dict[str, str]
) -> None:
    short = keystone.token("admin-user", users["admin"], "ops", short=True)
    assert served.call("GET", "/v1/whoami", token=short).status_code == 200
    time.sleep(4)  # it expires after 3 s; the server kept it no longer than that
    answer = served.call("GET", "/v1/whoami", token=short)
    assert answer.status_code == 401
    assert "expired" in answer.json()["error"]["message"]


def test_the_command_line_takes_its_token_from_clouds_yaml(served: Server) -> None:
    ephyra: Ephyra = served.ephyra  # type: ignore[attr-defined]
    listed = ephyra("--url", served.url, "run", "list", env={"OS_CLOUD": "reader"})
    assert listed.code == 0, listed.err
    refused = ephyra("--url", served.url, "version", "trigger", "3.0", env={"OS_CLOUD": "reader"})
    assert refused.code == 2 and "may not version:trigger" in refused.err
    done = ephyra("--url", served.url, "version", "trigger", "3.0", env={"OS_CLOUD": "admin"})
    assert done.code == 0 and "current version 3.0" in done.out
