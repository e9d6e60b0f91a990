"""Stages that wait for an admin's approval, against real Nova: an upgrade started through
``ephyra serve`` waits before the computes until an admin approves through the API
(a reader and a member are refused), then goes on and succeeds, and the audit trail and
the run's status say who approved; ``ephyra upgrade step`` runs exactly one stage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testbed.nova import NovaTestbed
from testbed.nova_watch import wait_until
from tests.functional.ephyra_cli import Ephyra
from tests.functional.test_api import ADMIN, MEMBER, READER, Server
from tests.functional.test_api_upgrade import token_file
from tests.functional.test_upgrade import COMPUTES, _hypervisors, _inventory, _spec
from tests.functional.test_upgrade import ephyra as ephyra  # the fixture, used here too

pytestmark = pytest.mark.functional

OLD = {h: 1000000 for h in COMPUTES}


def _hosts(nova: NovaTestbed, path: Path, computes: int = 3) -> str:
    """The testbed as a static inventory source: the controller and ``computes`` computes."""
    data = yaml.safe_load(_inventory(nova, path).read_text())
    kept = set(COMPUTES[:computes])
    data["hosts"] = [h for h in data["hosts"] if "compute" not in h["roles"] or h["name"] in kept]
    path.write_text(yaml.safe_dump(data))
    return f"static:{path}"


@pytest.fixture
def served(ephyra: Ephyra, tmp_path: Path) -> Iterator[Server]:
    server = Server(ephyra, tmp_path)
    yield server
    server.stop()


def test_a_run_waits_for_an_admin_to_approve_through_the_api(
    clean_nova: NovaTestbed, ephyra: Ephyra, served: Server, tmp_path: Path
) -> None:
    remote = ["--url", served.url, "--token-file", token_file(tmp_path)]
    spec = _spec(clean_nova, tmp_path / "spec.yaml", approvals=["data plane: compute"])
    source = _hosts(clean_nova, tmp_path / "hosts.yaml", computes=1)  # one is enough here
    args = ["--spec", str(spec), "--source", source, "--os-cloud", "nova"]
    shown = ephyra(*remote, "upgrade", "plan", *args)
    assert "data plane: compute" in shown.out and "waits for approval" in shown.out
    held = ephyra(*remote, "upgrade", "start", "--yes", *args)
    assert held.code == 1
    run = served.call("GET", "/v1/runs/latest").json()["run"]
    assert (run["state"], run["reason"]) == (
        "paused",
        f"stage data plane: compute waits for approval (ephyra upgrade approve {run['id'][:8]})",
    )
    assert clean_nova.release("nova-conductor") == "2.0.0" and _hypervisors(clean_nova) == OLD

    path = f"/v1/upgrade/runs/{run['id']}"
    for token in (READER, MEMBER):
        for action in ("approve", "step"):
            refused = served.call("POST", f"{path}/{action}", token=token, json={})
            assert refused.status_code == 403, refused.text
    approved = served.call("POST", f"{path}/approve", token=ADMIN, json={})
    assert approved.status_code == 202, approved.text
    assert approved.json()["message"].startswith("stage data plane: compute approved by ada")

    def ended() -> bool:
        return served.call("GET", "/v1/runs/latest").json()["run"]["state"] != "running"

    wait_until(ended, 180, "the approved run to end")
    status = served.call("GET", "/v1/upgrade/runs/latest").json()
    assert status["state"] == "succeeded", status["reason"]
    assert _hypervisors(clean_nova) == {**OLD, "compute-1": 2000000}
    (approval,) = status["approvals"]
    assert (approval["stage"], approval["by"], approval["source"]) == (
        "data plane: compute",
        "ada",
        "api",
    )
    trail = served.call("GET", "/v1/audit", token=ADMIN).json()["entries"]
    writes = [(e["user"], e["action"], e["status"]) for e in trail if e["target"] == run["id"]]
    assert writes == [
        ("rea", "run:approve", 403),
        ("rea", "run:step", 403),
        ("max", "run:approve", 403),
        ("max", "run:step", 403),
        ("ada", "run:approve", 202),
    ]


def test_step_runs_exactly_the_next_stage(
    clean_nova: NovaTestbed, ephyra: Ephyra, tmp_path: Path
) -> None:
    spec = _spec(clean_nova, tmp_path / "spec.yaml", approvals=["control plane: nova-conductor"])
    source = _hosts(clean_nova, tmp_path / "hosts.yaml")
    args = ["--spec", str(spec), "--source", source, "--os-cloud", "nova"]
    held = ephyra("upgrade", "start", "--yes", *args)
    assert held.code == 1 and "waits for approval" in held.err
    waiting = ephyra("upgrade", "step")  # the stage waits for its approval still
    assert waiting.code == 1 and "nova-conductor waits for approval" in waiting.err
    assert clean_nova.release("nova-conductor") == "1.0.0"
    stepped = ephyra("upgrade", "approve")  # approved: that stage, then the step stops it
    assert stepped.code == 0, stepped.err
    assert "stepped: stage control plane: nova-conductor done" in stepped.err
    assert clean_nova.release("nova-conductor") == "2.0.0"
    assert clean_nova.release("nova-scheduler") == "1.0.0"
    stepped = ephyra("upgrade", "step")
    assert stepped.code == 0 and "stage control plane: nova-scheduler done" in stepped.err
    assert clean_nova.release("nova-scheduler") == "2.0.0" and _hypervisors(clean_nova) == OLD
    status = json.loads(ephyra("--format", "json", "upgrade", "status").out)
    assert status["state"] == "paused" and status["approvals"][0]["source"] == "cli"
    trail = json.loads(ephyra("--format", "json", "audit", "list").out)
    assert [e["action"] for e in trail if e["action"] in ("run:approve", "run:step")] == [
        "run:step",
        "run:approve",
        "run:step",
    ]
    assert {e["user"] for e in trail} == {status["approvals"][0]["by"]}  # this OS user
