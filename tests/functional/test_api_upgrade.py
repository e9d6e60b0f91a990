"""A rolling upgrade and an evacuation through ``ephyra serve`` (``--url``), against real
Nova: the same plan as in-process, the run driven by the server with its progress shown
on the command line, and a rollback the same way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.nova import NovaTestbed
from tests.functional.ephyra_cli import Ephyra
from tests.functional.test_api import ADMIN, Server
from tests.functional.test_upgrade import COMPUTES, _hypervisors, _spec
from tests.functional.test_upgrade import ephyra as ephyra  # the fixture, used here too

pytestmark = pytest.mark.functional


@pytest.fixture
def served(ephyra: Ephyra, tmp_path: Path) -> Iterator[Server]:
    server = Server(ephyra, tmp_path)
    yield server
    server.stop()


def token_file(tmp_path: Path) -> str:
    """The admin token in a file of its owner's (never in argv, where ``ps`` shows it)."""
    path = tmp_path / "token"
    path.write_text(ADMIN + "\n")
    path.chmod(0o600)
    return str(path)


def test_upgrade_and_rollback_through_the_server(
    clean_nova: NovaTestbed, ephyra: Ephyra, served: Server, tmp_path: Path
) -> None:
    remote = ["--url", served.url, "--token-file", token_file(tmp_path)]
    spec = _spec(clean_nova, tmp_path / "spec.yaml")
    plan = ["upgrade", "plan", "--spec", str(spec), "--source", "openstack:nova"]
    here, there = ephyra(*plan), ephyra(*remote, *plan)
    assert here.code == there.code == 0, there.err
    assert here.out == there.out
    done = ephyra(*remote, "upgrade", "start", "--yes", *plan[2:], "--os-cloud", "nova")
    assert done.code == 0, done.err
    assert "succeeded" in done.out and "compute-3" in done.err  # the server's progress, here
    assert _hypervisors(clean_nova) == {h: 2000000 for h in COMPUTES}
    status = json.loads(ephyra(*remote, "--format", "json", "upgrade", "status").out)
    assert status["state"] == "succeeded" and status["counts"] == {"upgraded": 5}
    back = ephyra(*remote, "upgrade", "rollback")
    assert back.code == 0, back.err
    assert _hypervisors(clean_nova) == {h: 1000000 for h in COMPUTES}
    runs = served.call("GET", "/v1/runs?kind=upgrade").json()["runs"]
    assert [r["state"] for r in runs] == ["rolled-back"]


def test_evacuation_through_the_server(
    clean_nova: NovaTestbed, ephyra: Ephyra, served: Server, tmp_path: Path
) -> None:
    servers = clean_nova.boot("compute-1", 2)
    remote = ["--url", served.url, "--token-file", token_file(tmp_path)]
    done = ephyra(*remote, "host", "evacuate", "compute-1", "--os-cloud", "nova", "--yes")
    assert done.code == 0, done.err
    status = json.loads(ephyra(*remote, "--format", "json", "host", "status").out)
    assert status["state"] == "succeeded"
    assert {s["id"] for s in status["servers"] if s["outcome"] == "moved"} == set(servers)
    shown = ephyra(*remote, "--format", "json", "host", "show", "--os-cloud", "nova")
    hosts = {h["host"]: h for h in json.loads(shown.out)}
    assert hosts["compute-1"]["maintenance"] and hosts["compute-1"]["status"] == "disabled"
    back = ephyra(*remote, "host", "rollback")
    assert back.code == 0, back.err
    hosts = {h["host"]: h for h in served.call("GET", "/v1/hosts?cloud=nova").json()["hosts"]}
    assert hosts["compute-1"]["status"] == "enabled"
