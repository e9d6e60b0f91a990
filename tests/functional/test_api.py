"""The management panel against real Ironic control planes: a forklift started, watched,
paused and resumed through the API and through ``ephyra --url``, with the same answers
as the command line in-process, and roles enforced."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from ephyra.engine.journal import Journal
from testbed.ironic import Testbed, free_port
from testbed.seed import seed_nodes, snapshot, write_credentials
from tests.functional.ephyra_cli import EPHYRA, Ephyra
from tests.functional.invariants import assert_exactly_one, assert_home, where

pytestmark = pytest.mark.functional

TOKENS = {
    "admin-token-0123456789": {"user": "ada", "project": "ops", "roles": ["admin"]},
    "member-token-0123456789": {"user": "max", "project": "ops", "roles": ["member"]},
    "reader-token-0123456789": {"user": "rea", "project": "ops", "roles": ["reader"]},
}
ADMIN, MEMBER, READER = list(TOKENS)


#: The name of the credentials :func:`seeded` writes, in the server's configuration.
SEEDED = "seeded"


class Server:
    """``ephyra serve`` in a process of its own: static tokens (``TOKENS``) unless ``auth``
    gives other options; ``config`` is its --config (default: the credentials
    :func:`seeded` writes in ``tmp``, named ``SEEDED``)."""

    def __init__(
        self,
        ephyra: Ephyra,
        tmp: Path,
        auth: list[str] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        if auth is None:
            tokens = tmp / "tokens.yaml"
            tokens.write_text(yaml.safe_dump(TOKENS))
            auth = ["--tokens", str(tokens)]
        if config is None:
            config = {"credentials": {SEEDED: f"file:{tmp / 'c.yaml'}"}}
        config_file = tmp / "serve.yaml"
        config_file.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (tmp / "serve.log").open("w")
        self.proc = subprocess.Popen(
            [*EPHYRA, "serve", "--port", str(self.port), "--config", str(config_file), *auth],
            env=ephyra.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError("ephyra serve did not answer /healthz within 60 s")

    def call(self, method: str, path: str, token: str | None = ADMIN, **kw: Any) -> Any:
        headers = {"X-Auth-Token": token} if token else {}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(60)
        self.log.close()
        return code


@pytest.fixture
def served(clean_testbed: Testbed, tmp_path: Path) -> Iterator[tuple[Server, Ephyra]]:
    ephyra = Ephyra(clean_testbed.clouds_yaml, tmp_path / "state")
    server = Server(ephyra, tmp_path)
    yield server, ephyra
    code = server.stop()  # uvicorn ends by the SIGTERM it handled, once shut down
    log = (tmp_path / "serve.log").read_text()
    assert code in (0, -15) and "Traceback" not in log, log


def seeded(testbed: Testbed, tmp: Path, count: int) -> tuple[dict[str, Any], dict[str, str]]:
    """``count`` deployed nodes on cp1: how they look, and the body of a forklift to cp2
    (with the credentials a :class:`Server` of ``tmp`` knows by name)."""
    write_credentials(tmp / "c.yaml", seed_nodes(testbed.connect("cp1"), count))
    return snapshot(testbed.connect("cp1")), {"from": "cp1", "to": "cp2", "credentials": SEEDED}


def events_until_end(server: Server, run_id: str, token: str = ADMIN) -> list[dict[str, Any]]:
    """Read the run's Server-Sent Events until it ends (at most 300 s: the server's
    keep-alives would hold a reader of a run that never ends for ever)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 300
    with requests.get(
        f"{server.url}/v1/runs/{run_id}/events/stream",
        headers={"X-Auth-Token": token},
        stream=True,
        timeout=(5, 120),
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                found.append(json.loads(line[5:]))
                if found[-1]["type"] == "run.finished":
                    return found
            if time.monotonic() > deadline:
                log = Path(server.log.name).read_text()[-4000:]
                raise AssertionError(f"run {run_id} not ended after 300 s: {found}\n{log}")
    raise AssertionError("the stream ended before the run")


def most_at_once(seen: list[dict[str, Any]]) -> list[int]:
    """The most nodes moving at once in each part of a run (it starts again after a
    resume), from its events: a node moves from its first step to its outcome."""
    most: list[int] = []
    moving: set[str] = set()
    for event in seen:
        if event["type"] == "run.started":
            most.append(0)
            moving.clear()
        elif event["type"] == "step" and event["status"] == "started":
            moving.add(event["node"])
        elif event["type"] == "node":
            moving.discard(event["node"])
        if most:
            most[-1] = max(most[-1], len(moving))
    return most


def test_forklift_through_the_api_streams_its_progress(
    served: tuple[Server, Ephyra], clean_testbed: Testbed, tmp_path: Path
) -> None:
    server, ephyra = served
    original, body = seeded(clean_testbed, tmp_path, 3)
    answer = server.call("POST", "/v1/forklift/runs", json=body)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["id"]
    assert answer.headers["location"] == f"/v1/runs/{run_id}"
    seen = events_until_end(server, run_id)
    kinds = [e["type"] for e in seen]
    assert kinds[0] in ("run.state", "run.started")
    assert seen[-1] == {**seen[-1], "type": "run.finished", "state": "succeeded"}
    moved = [e["node"] for e in seen if e["type"] == "node" and e["outcome"] == "moved"]
    assert sorted(moved) == ["node-0000", "node-0001", "node-0002"]
    steps = [(e["node"], e["step"], e["status"]) for e in seen if e["type"] == "step"]
    for node in moved:  # every step of every node started and finished, in order
        started = [s for n, s, st in steps if n == node and st == "started"]
        finished = [s for n, s, st in steps if n == node and st == "finished"]
        assert started == finished and "enroll-target" in started
    assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen)
    assert_home(clean_testbed, original, "cp2")
    shown = server.call("GET", f"/v1/runs/{run_id}").json()
    assert shown["run"]["state"] == "succeeded"
    assert (shown["run"]["done"], shown["run"]["total"], shown["run"]["failed"]) == (3, 3, 0)
    assert {i["state"] for i in shown["items"]} == {"moved"}
    # the command line through the server prints what it prints in-process
    for args in (
        ["--format", "json", "forklift", "status"],
        ["forklift", "list"],
        ["--format", "yaml", "run", "list"],
        ["run", "show", run_id[:8]],
    ):
        here = ephyra(*args)
        there = ephyra("--url", server.url, *args, env={"EPHYRA_TOKEN": READER})
        assert here.code == there.code == 0, there.err
        assert here.out == there.out
    events = ephyra("--url", server.url, "run", "events", run_id, env={"EPHYRA_TOKEN": READER})
    assert events.code == 0 and "node node=node-0002 outcome=moved" in events.out
    metrics = server.call("GET", "/metrics", token=READER).text
    assert 'ephyra_runs{kind="forklift",state="succeeded"} 1.0' in metrics
    assert 'ephyra_step_seconds_count{kind="forklift",status="finished",step="deploy"} 3.0' in (
        metrics
    )


def test_pause_by_a_member_and_resume_from_the_command_line(
    served: tuple[Server, Ephyra], clean_testbed: Testbed, tmp_path: Path
) -> None:
    server, ephyra = served
    original, body = seeded(clean_testbed, tmp_path, 6)
    refused = server.call("POST", "/v1/forklift/runs", token=MEMBER, json=body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    run_id = server.call("POST", "/v1/forklift/runs", json=body).json()["id"]
    deadline = time.monotonic() + 120
    while server.call("GET", f"/v1/runs/{run_id}").json()["run"]["done"] < 1:
        assert time.monotonic() < deadline, "no node moved within 120 s"
        time.sleep(0.2)
    assert server.call("POST", f"/v1/forklift/runs/{run_id}/pause", token=READER).status_code == 403
    paused = server.call("POST", "/v1/forklift/runs/latest/pause", token=MEMBER)
    assert paused.status_code == 200 and "pause of run" in paused.json()["message"]
    deadline = time.monotonic() + 120
    while (state := server.call("GET", f"/v1/runs/{run_id}").json()["run"])["state"] != "paused":
        assert time.monotonic() < deadline, f"still {state['state']} 120 s after the pause"
        time.sleep(0.2)
    assert 1 <= state["done"] < 6
    assert_exactly_one(clean_testbed, list(original))
    # resumed through the server by the command line, which shows the progress and waits,
    # three nodes at once from now on
    as_member = {"EPHYRA_TOKEN": MEMBER}
    zero = ephyra("--url", server.url, "forklift", "resume", "--concurrency", "0", env=as_member)
    assert zero.code == 2 and "concurrency" in zero.err, zero.err  # refused, nothing done
    resumed = ephyra(
        "--url", server.url, "forklift", "resume", run_id, "--concurrency", "3", env=as_member
    )
    assert resumed.code == 0, resumed.err
    assert f"run {run_id} succeeded" in resumed.out
    assert "6/6" in resumed.err  # the server's events, shown here
    assert_home(clean_testbed, original, "cp2")
    journal = Journal(f"sqlite:///{ephyra.journal_file}")
    assert journal.run(run_id).meta["settings"]["concurrency"] == 3  # kept with the run
    journal.close()
    seen = server.call("GET", "/v1/runs/latest/events", token=READER).json()["events"]
    assert {e["run"] for e in seen} == {run_id}
    before, after = most_at_once(seen)
    # one at a time before the pause; after it, more than one (of those left) and never
    # more than three (exactly three is the machine's timing: a node may end first)
    left = 6 - state["done"]
    assert before == 1 and min(2, left) <= after <= min(3, left), (before, after, left)
    again = ephyra("--url", server.url, "forklift", "resume", run_id, env=as_member)
    assert again.code == 2 and "succeeded" in again.err  # refused, as in-process


def test_tokens_and_errors(served: tuple[Server, Ephyra]) -> None:
    server, ephyra = served
    paths = json.loads(server.call("GET", "/openapi.json").text)["paths"]
    for path, methods in paths.items():
        for method in methods:
            concrete = path.replace("{kind}", "forklift").replace("{run}", "latest")
            concrete = concrete.replace("{run_id}", "x").replace("{host}", "h")
            answer = server.call(method.upper(), concrete, token=None)
            # only /healthz and logging out (DELETE /v1/session: a cookie deleted) need no token
            expected = 200 if path == "/healthz" else 401
            if (path, method) == ("/v1/session", "delete"):
                expected = 204
            assert answer.status_code == expected, f"{method} {path}: {answer.status_code}"
            if expected == 401:
                assert answer.json()["error"]["code"] == "unauthorized"
            wrong = server.call(method.upper(), concrete, token="not-a-token-at-all")
            assert wrong.status_code == expected
    assert server.call("GET", "/openapi.json", token=None).status_code == 401
    assert server.call("GET", "/", token=None).status_code == 401  # the login page, no data
    assert server.call("GET", "/v1/runs/nothing").json()["error"]["code"] == "run_not_found"
    bad = server.call("POST", "/v1/forklift/plan", json={"from": "cp1", "to": "nowhere"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (404, "cloud_not_found")
    assert "nowhere" in bad.json()["error"]["message"]
    invalid = server.call("POST", "/v1/forklift/plan", json={"from": "cp1", "concurrency": 0})
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (422, "invalid_request")
    me = server.call("GET", "/v1/whoami", token=READER).json()
    assert me["roles"] == ["reader"] and not me["allowed"]["run:pause"]
    wrong = {"EPHYRA_TOKEN": "wrong-token-0123456789"}
    refused = ephyra("--url", server.url, "run", "list", env=wrong)
    assert refused.code == 2 and "not known" in refused.err
    gone = ephyra("--url", "http://127.0.0.1:1", "run", "list")
    assert gone.code == 1 and "cannot reach ephyra serve" in gone.err


def test_a_server_killed_mid_run_leaves_it_resumable(
    clean_testbed: Testbed, tmp_path: Path
) -> None:
    ephyra = Ephyra(clean_testbed.clouds_yaml, tmp_path / "state")
    original, body = seeded(clean_testbed, tmp_path, 6)
    server = Server(ephyra, tmp_path)
    run_id = server.call("POST", "/v1/forklift/runs", json=body).json()["id"]
    with requests.get(
        f"{server.url}/v1/runs/{run_id}/events/stream",
        headers={"X-Auth-Token": ADMIN},
        stream=True,
        timeout=(5, 120),
    ) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if '"step": "enroll-target", "status": "started"' in line and "node-0001" in line:
                break  # in the middle of the move: in both control planes for a moment
    server.proc.kill()
    server.proc.wait(30)
    server.log.close()
    lost = {u: p for u, p in where(clean_testbed, list(original)).items() if not p}
    assert not lost, f"nodes enrolled nowhere after the kill: {lost}"
    (tmp_path / "again").mkdir()
    again = Server(ephyra, tmp_path / "again")
    try:
        resumed = again.call("POST", f"/v1/forklift/runs/{run_id}/resume")
        assert resumed.status_code == 202, resumed.text
        seen = events_until_end(again, run_id)
        assert seen[-1]["state"] == "succeeded"
        assert_home(clean_testbed, original, "cp2")
    finally:
        again.stop()


def test_sigterm_pauses_the_runs_the_server_drives(clean_testbed: Testbed, tmp_path: Path) -> None:
    ephyra = Ephyra(clean_testbed.clouds_yaml, tmp_path / "state")
    original, body = seeded(clean_testbed, tmp_path, 6)
    server = Server(ephyra, tmp_path)
    run_id = server.call("POST", "/v1/forklift/runs", json=body).json()["id"]
    deadline = time.monotonic() + 120
    while server.call("GET", f"/v1/runs/{run_id}").json()["run"]["done"] < 1:
        assert time.monotonic() < deadline, "no node moved within 120 s"
        time.sleep(0.1)
    began = time.monotonic()
    server.stop()  # SIGTERM
    stopped = time.monotonic() - began
    assert stopped < 30, f"the server took {stopped:.1f} s to stop"
    state = json.loads(ephyra("--format", "json", "forklift", "status", run_id).out)
    assert state["state"] == "paused", state
    assert 1 <= state["counts"].get("moved", 0) < 6
    assert_exactly_one(clean_testbed, list(original))
    resumed = ephyra("forklift", "resume", run_id)  # in-process this time
    assert resumed.code == 0, resumed.err
    assert_home(clean_testbed, original, "cp2")
