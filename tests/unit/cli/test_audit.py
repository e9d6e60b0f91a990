"""The command line's records in the audit trail."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ephyra.cli import audit as cli_audit
from ephyra.cli.main import main
from ephyra.engine import audit
from ephyra.engine.journal import Journal
from ephyra.errors import RunNotFound


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


def test_tenant_commands_are_recorded_with_what_they_name(tmp_path: Path) -> None:
    on = cli_audit.recorded("maintenance", "on", lambda _a: 0)
    assert on(namespace(tmp_path, project="demo")) == 0  # no run made: the kind is named
    off = cli_audit.recorded("maintenance", "off", lambda _a: 0)
    assert off(namespace(tmp_path, project="demo")) == 0
    resume = cli_audit.recorded("maintenance", "resume", lambda _a: 0)
    assert resume(namespace(tmp_path, run="r1")) == 0
    finish = cli_audit.recorded("tenant", "finish", lambda _a: 0)
    assert finish(namespace(tmp_path, run=None)) == 0
    found = audit.read(Journal(f"sqlite:///{tmp_path / 'j.db'}").engine)
    assert [(e["action"], e["target"]) for e in found] == [
        ("tenant:maintenance", "tenant-maintenance"),
        ("run:rollback", "projects/demo"),
        ("run:resume", "tenant-maintenance/r1"),
        ("run:finish", "tenant-migration/latest"),
    ]
