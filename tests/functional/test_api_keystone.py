"""The API behind a real Keystone: no token and expired tokens are refused, a reader
may not write anywhere, a member may pause but not start, an admin may do it all; only
the projects, domain and system scope the server names carry roles (users of another
project get nothing, whatever their roles there); Keystone roles map to Ephyra's; the
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
#: Routes open to every token (or none).
OPEN = {"/healthz", "/v1/whoami", "/v1/session"}  # logging in and out: any token, or none
PARAMS = {
    "{kind}": "forklift",
    "{run}": "latest",
    "{run_id}": "latest",
    "{host}": "h",
    "{cluster}": "c",
    "{node}": "n",
}
#: What an admin's empty write answers on a fresh server: the operation's own answer (no run,
#: no environment: 404; a body without its required fields: 422), never 401, 403 or a 500.
ADMIN_WRITES = {
    **{("POST", f"/v1/forklift/runs/latest/{do}"): 404 for do in ("pause", "resume", "abort")},
    ("POST", "/v1/forklift/runs/latest/rollback"): 404,
    ("POST", "/v1/tenant-migration/runs/latest/finish"): 404,
    ("POST", "/v1/upgrade/runs/latest/approve"): 404,
    ("POST", "/v1/upgrade/runs/latest/step"): 404,
    **{
        ("POST", f"/v1/{kind}/{what}"): 422
        for kind in (
            "forklift",
            "upgrade",
            "evacuate",
            "host-reallocation",
            "tenant-maintenance",
            "tenant-migration",
            "settings",
        )
        for what in ("plan", "runs")
    },
    ("PUT", "/v1/hosts/h/maintenance"): 422,
    ("POST", "/v1/versions/trigger"): 422,
    ("POST", "/v1/clusters"): 422,
    ("PUT", "/v1/clusters/c/upgrade"): 422,
    ("PUT", "/v1/clusters/c/nodes/n/installed"): 404,
}
#: What an admin's read answers on a fresh server, as exactly.
ADMIN_READS = {
    ("GET", "/v1/audit"): 200,
    ("GET", "/metrics"): 200,
    ("GET", "/v1/clouds"): 200,
    ("GET", "/v1/runs"): 200,
    ("GET", "/v1/runs/latest"): 404,
    ("GET", "/v1/runs/latest/events"): 404,
    ("GET", "/v1/runs/latest/events/stream"): 404,
    ("GET", "/v1/runs/latest/report"): 404,
    ("GET", "/v1/events/stream"): 200,
    ("GET", "/v1/forklift/runs"): 200,
    ("GET", "/v1/forklift/runs/latest"): 404,
    ("GET", "/v1/hosts"): 422,  # query.cloud: required
    ("GET", "/v1/inventory"): 400,  # no inventory source named
    ("GET", "/v1/versions/status"): 200,
    ("GET", "/v1/versions/history"): 200,
    ("GET", "/v1/roles"): 400,  # no version triggered yet
    ("GET", "/v1/clusters"): 200,
    ("GET", "/v1/clusters/c"): 404,
    ("GET", "/v1/clusters/c/orchestrator/deployment/defaults"): 422,  # query.nodes: required
    ("GET", "/v1/tenants"): 200,
}


@pytest.fixture(scope="module")
def users(keystone: Keystone) -> dict[str, str]:
    """role -> password of a user with that role on project ops."""
    return {
        role: keystone.add_user(f"{role}-user", "ops", role)
        for role in ("reader", "member", "admin")
    }


@pytest.fixture(scope="module")
def others(keystone: Keystone) -> dict[str, str]:
    """role -> password of a user with that role on project other."""
    return {
        role: keystone.add_user(f"other-{role}", "other", role)
        for role in ("reader", "member", "admin")
    }


def serve(keystone: Keystone, tmp_path: Path, *scope: str, users: dict[str, str]) -> Server:
    clouds = {"server": keystone.clouds_entry("admin", keystone.admin_password, "admin")}
    for role, password in users.items():
        clouds[role] = keystone.clouds_entry(f"{role}-user", password, "ops")
    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump({"clouds": clouds}))
    ephyra = Ephyra(tmp_path / "clouds.yaml", tmp_path / "state")
    server = Server(ephyra, tmp_path, ["--auth", "keystone", "--os-cloud", "server", *scope])
    server.ephyra = ephyra  # type: ignore[attr-defined]
    return server


@pytest.fixture
def served(keystone: Keystone, users: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    server = serve(keystone, tmp_path, "--keystone-project", "ops", users=users)
    yield server
    server.stop()


def routes(server: Server, token: str, wanted: set[str]) -> list[tuple[str, str]]:
    paths = json.loads(server.call("GET", "/openapi.json", token=token).text)["paths"]
    found = []
    for path, methods in paths.items():
        for method in methods:
            if method in wanted and path not in READS | OPEN:
                concrete = path
                for param, value in PARAMS.items():
                    concrete = concrete.replace(param, value)
                found.append((method.upper(), concrete))
    return found


def writes(server: Server, token: str) -> list[tuple[str, str]]:
    return routes(server, token, {"post", "put", "patch", "delete"})


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
    answered = {
        (method, path): served.call(method, path, token=token["admin"], json={}).status_code
        for method, path in routes
    }
    assert answered == ADMIN_WRITES
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


def test_users_of_another_project_get_no_role(
    served: Server, keystone: Keystone, users: dict[str, str], others: dict[str, str]
) -> None:
    ours = {role: keystone.token(f"{role}-user", pw, "ops") for role, pw in users.items()}
    theirs = {role: keystone.token(f"other-{role}", pw, "other") for role, pw in others.items()}
    reads = routes(served, ours["reader"], {"get"})
    every = reads + writes(served, ours["reader"])
    assert len(reads) >= 10 and len(every) >= 20
    for role, token in theirs.items():
        me = served.call("GET", "/v1/whoami", token=token).json()
        assert (me["user"], me["project"], me["roles"]) == (f"other-{role}", "other", [])
        assert not any(me["allowed"].values())
        for method, path in every:
            answer = served.call(method, path, token=token, json={})
            assert answer.status_code == 403, f"{role} {method} {path}: {answer.status_code}"
            assert answer.json()["error"]["code"] == "forbidden"
    # the project's own users keep their access
    answered = {}
    for method, path in reads:
        with served.call(method, path, token=ours["admin"], stream=True) as answer:
            answered[method, path] = answer.status_code
    assert answered == ADMIN_READS
    made = served.call("POST", "/v1/versions/trigger", token=ours["admin"], json={"version": "4"})
    assert made.status_code == 200, made.text
    pause = served.call("POST", "/v1/forklift/runs/latest/pause", token=ours["member"])
    assert pause.status_code == 404  # allowed; there is no run to pause


def test_domain_and_system_tokens_only_when_named(
    keystone: Keystone, users: dict[str, str], tmp_path: Path
) -> None:
    password = keystone.add_domain_user("domain-admin", "admin")
    domain = keystone.domain_token("domain-admin", password)
    system = keystone.system_token()
    (tmp_path / "project").mkdir()
    server = serve(keystone, tmp_path / "project", "--keystone-project", "ops", users=users)
    try:
        for token in (domain, system):
            me = server.call("GET", "/v1/whoami", token=token).json()
            assert me["roles"] == [], me
            assert server.call("GET", "/v1/runs", token=token).status_code == 403
            answer = server.call("POST", "/v1/versions/trigger", token=token, json={"version": "5"})
            assert answer.status_code == 403
    finally:
        server.stop()
    (tmp_path / "scoped").mkdir()
    scoped = ("--keystone-domain", "Default", "--keystone-system")
    server = serve(keystone, tmp_path / "scoped", *scoped, users=users)
    try:
        me = server.call("GET", "/v1/whoami", token=domain).json()
        assert (me["user"], me["project"], me["roles"][0]) == ("domain-admin", "", "admin")
        me = server.call("GET", "/v1/whoami", token=system).json()
        assert (me["user"], me["roles"][0]) == ("admin", "admin")
        for token in (domain, system):
            answer = server.call("POST", "/v1/versions/trigger", token=token, json={"version": "6"})
            assert answer.status_code == 200, answer.text
        ops = keystone.token("admin-user", users["admin"], "ops")  # not named here
        assert server.call("GET", "/v1/runs", token=ops).status_code == 403
    finally:
        server.stop()


def test_keystone_roles_map_to_ephyra_roles(
    keystone: Keystone, users: dict[str, str], tmp_path: Path
) -> None:
    password = keystone.add_user("operator", "ops", "ephyra-operator")
    operator = keystone.token("operator", password, "ops")
    admin = keystone.token("admin-user", users["admin"], "ops")
    mapping = ("--keystone-roles", "admin=ephyra-operator")
    server = serve(keystone, tmp_path, "--keystone-project", "Default/ops", *mapping, users=users)
    try:
        me = server.call("GET", "/v1/whoami", token=operator).json()
        assert me["roles"] == ["admin"]
        answer = server.call("POST", "/v1/versions/trigger", token=operator, json={"version": "7"})
        assert answer.status_code == 200, answer.text
        me = server.call("GET", "/v1/whoami", token=admin).json()  # Keystone's admin: a member
        assert me["roles"] == ["member", "reader"]
        answer = server.call("POST", "/v1/versions/trigger", token=admin, json={"version": "8"})
        assert answer.status_code == 403
    finally:
        server.stop()


def test_keystone_auth_without_a_scope_refuses_to_start(
    keystone: Keystone, users: dict[str, str], tmp_path: Path
) -> None:
    clouds = {"server": keystone.clouds_entry("admin", keystone.admin_password, "admin")}
    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump({"clouds": clouds}))
    ephyra = Ephyra(tmp_path / "clouds.yaml", tmp_path / "state")
    done = ephyra("serve", "--auth", "keystone", "--os-cloud", "server")
    assert done.code == 2
    assert "name the project(s) whose members may use Ephyra" in done.err
