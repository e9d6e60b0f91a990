"""The audit trail's table, what an API request names, and the command line's records."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import sqlalchemy as sa

from ephyra.api.audit import target
from ephyra.cli import audit as cli_audit
from ephyra.cli.main import main
from ephyra.engine import audit
from ephyra.engine.journal import Journal
from ephyra.errors import RunNotFound


def entry(n: int, **kw: object) -> audit.Entry:
    fields: dict[str, object] = {
        "source": "api",
        "user": f"u{n}",
        "action": "run:pause",
        "target": f"forklift/r{n}",
        "status": 200,
        **kw,
    }
    return audit.Entry(**fields)  # type: ignore[arg-type]


def test_entries_are_appended_and_read_back(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'j.db'}")
    for n in range(5):
        audit.record(engine, entry(n, roles=("admin",), code="" if n else "forbidden"))
    latest = audit.read(engine, limit=2)
    assert [e["user"] for e in latest] == ["u3", "u4"]  # the latest, oldest first
    assert latest[0]["roles"] == ["admin"] and latest[0]["source"] == "api"
    assert [e["seq"] for e in audit.read(engine, limit=2, after=1)] == [2, 3]
    assert audit.read(engine, limit=10, after=5) == []
    assert audit.read(engine)[0]["code"] == "forbidden"
    audit.record(engine, entry(9, user="x" * 1000, target="t" * 1000))
    last = audit.read(engine, limit=1)[0]
    assert len(last["user"]) == audit.NAME_LENGTH and len(last["target"]) == audit.TARGET_LENGTH


def test_an_entry_comes_from_the_api_or_the_cli() -> None:
    with pytest.raises(ValueError, match="source"):
        entry(1, source="web")


@pytest.mark.parametrize(
    ("path", "params", "location", "expected"),
    [
        ("/v1/forklift/runs/abc/pause", {"kind": "forklift", "run": "abc"}, "", "forklift/abc"),
        ("/v1/forklift/runs", {}, "/v1/runs/0f1e", "forklift/0f1e"),
        ("/v1/upgrade/runs", {}, "", "upgrade"),
        ("/v1/hosts/c-1/maintenance", {"host": "c-1"}, "", "c-1"),
        ("/v1/clusters/e1/nodes/n2/installed", {"cluster": "e1", "node": "n2"}, "", "e1/n2"),
        ("/v1/versions/trigger", {}, "", "versions"),
    ],
)
def test_an_api_request_names_its_target_by_its_path(
    path: str, params: dict[str, str], location: str, expected: str
) -> None:
    assert target({"path": path, "path_params": params}, location) == expected


def namespace(tmp_path: Path, **kw: object) -> argparse.Namespace:
    return argparse.Namespace(journal=f"sqlite:///{tmp_path / 'j.db'}", url=None, **kw)


def test_the_command_line_records_its_writes_only(tmp_path: Path) -> None:
    def fails(_args: argparse.Namespace) -> int:
        raise RunNotFound("no such run")

    reads = cli_audit.recorded("forklift", "status", lambda _a: 0)
    assert reads(namespace(tmp_path, run=None)) == 0
    pause = cli_audit.recorded("forklift", "pause", lambda _a: 0)
    assert pause(namespace(tmp_path, run="abc")) == 0
    with pytest.raises(RunNotFound):
        cli_audit.recorded("host", "abort", fails)(namespace(tmp_path, run=None))
    remote = cli_audit.recorded("host", "maintenance", lambda _a: 0)
    assert remote(argparse.Namespace(url="http://server", hostname="h")) == 0  # no journal
    dry = cli_audit.recorded("env", "cutover", lambda _a: 0)
    assert dry(namespace(tmp_path, env="e", dry_run=True)) == 0
    here = cli_audit.recorded("env", "apply", lambda _a: 0)  # on this machine, --url or not
    args = namespace(tmp_path, env="e", node="n1", dry_run=False)
    args.url = "http://server"
    assert here(args) == 0
    found = audit.read(Journal(f"sqlite:///{tmp_path / 'j.db'}").engine)
    assert [(e["source"], e["action"], e["target"], e["status"], e["code"]) for e in found] == [
        ("cli", "run:pause", "forklift/abc", 0, ""),
        ("cli", "run:abort", "evacuate/latest", 2, "run_not_found"),
        ("cli", "env:change", "e/n1", 0, ""),
    ]
    assert found[0]["user"] == cli_audit.os_user()


@pytest.mark.parametrize("bad", ["0", "-1", "1001", "x"])
def test_audit_list_takes_a_limit_from_1_to_1000(bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["audit", "list", "--limit", bad])
    assert exc.value.code == 2
