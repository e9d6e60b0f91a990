"""The audit trail against a live server and real Ironic: a forklift started and paused
by an admin and a write refused to a reader are recorded with who, roles, action,
target, result and request id; the command line shows them, and records its own
in-process writes; only admins read the trail."""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.ironic import Testbed
from tests.functional.ephyra_cli import Ephyra
from tests.functional.test_api import ADMIN, MEMBER, READER, Server, events_until_end, seeded

pytestmark = pytest.mark.functional


@pytest.fixture
def served(clean_testbed: Testbed, tmp_path: Path) -> Iterator[tuple[Server, Ephyra]]:
    ephyra = Ephyra(clean_testbed.clouds_yaml, tmp_path / "state")
    server = Server(ephyra, tmp_path)
    yield server, ephyra
    server.stop()


def entry_of(entries: list[dict[str, Any]], answer: Any) -> dict[str, Any]:
    """The entry of an API answer, found by its request id."""
    request_id = answer.headers["x-request-id"]
    found = [e for e in entries if e["request_id"] == request_id]
    assert len(found) == 1, (request_id, entries)
    return found[0]


def test_writes_are_recorded_and_only_admins_read_them(
    served: tuple[Server, Ephyra], clean_testbed: Testbed, tmp_path: Path
) -> None:
    server, ephyra = served
    _, body = seeded(clean_testbed, tmp_path, 6)
    started = server.call("POST", "/v1/forklift/runs", json=body)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    paused = server.call("POST", f"/v1/forklift/runs/{run_id}/pause")
    assert paused.status_code == 200, paused.text  # six nodes to move: it is still running
    refused = server.call("POST", f"/v1/forklift/runs/{run_id}/abort", token=READER)
    assert refused.status_code == 403
    nobody = server.call("PUT", "/v1/hosts/h1/maintenance", token=None, json={})
    assert nobody.status_code == 401
    events_until_end(server, run_id)  # paused

    for token in (READER, MEMBER):
        answer = server.call("GET", "/v1/audit", token=token)
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    answer = server.call("GET", "/v1/audit")
    assert answer.status_code == 200
    entries = answer.json()["entries"]
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    assert all(e["source"] == "api" for e in entries)

    start = entry_of(entries, started)
    assert (start["user"], start["project"], start["roles"]) == ("ada", "ops", ["admin"])
    assert (start["action"], start["target"]) == ("run:start", f"forklift/{run_id}")
    assert (start["status"], start["code"]) == (202, "")
    pause = entry_of(entries, paused)
    assert (pause["user"], pause["action"]) == ("ada", "run:pause")
    assert pause["target"] == f"forklift/{run_id}"
    assert (pause["status"], pause["code"]) == (200, "")
    reader = entry_of(entries, refused)
    assert (reader["user"], reader["roles"], reader["action"]) == ("rea", ["reader"], "run:abort")
    assert (reader["target"], reader["status"], reader["code"]) == (
        f"forklift/{run_id}",
        403,
        "forbidden",
    )
    anonymous = entry_of(entries, nobody)
    assert (anonymous["user"], anonymous["roles"], anonymous["action"]) == (
        "",
        [],
        "host:maintenance",
    )
    assert (anonymous["target"], anonymous["status"], anonymous["code"]) == (
        "h1",
        401,
        "unauthorized",
    )
    assert not any(e["action"] == "audit:read" for e in entries)  # reads are not written
    assert "credentials" not in json.dumps(entries)  # bodies never are

    listed = ephyra("audit", "list", "-f", "json")
    assert listed.code == 0, listed.err
    assert json.loads(listed.out) == entries
    as_admin = {"EPHYRA_TOKEN": ADMIN}
    through = ephyra("--url", server.url, "audit", "list", "-f", "json", env=as_admin)
    assert through.code == 0, through.err
    assert json.loads(through.out) == entries
    denied = ephyra("--url", server.url, "audit", "list", env={"EPHYRA_TOKEN": READER})
    assert denied.code == 2 and "may not audit:read" in denied.err

    # a write of the command line in this process: the OS user, source cli
    done = ephyra("version", "trigger", "7.1")
    assert done.code == 0, done.err
    refused_cli = ephyra("forklift", "abort", "no-such-run")
    assert refused_cli.code == 2
    last = json.loads(ephyra("audit", "list", "--limit", "2", "-f", "json").out)
    me = pwd.getpwuid(os.getuid()).pw_name
    assert [(e["source"], e["user"], e["roles"]) for e in last] == [("cli", me, [])] * 2
    assert [(e["action"], e["target"], e["status"], e["code"]) for e in last] == [
        ("version:trigger", "versions/7.1", 0, ""),
        ("run:abort", "forklift/no-such-run", 2, "run_not_found"),
    ]
    table = ephyra("audit", "list")
    assert table.code == 0 and "version:trigger" in table.out and "run:abort" in table.out
