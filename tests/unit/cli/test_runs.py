"""The commands every run kind gets from its registration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ephyra.cli.main import build_parser, main
from ephyra.engine.kinds import RunKind, registered


@pytest.mark.parametrize("kind", registered(), ids=lambda k: k.name)
def test_every_kind_has_the_run_commands(kind: RunKind[Any]) -> None:
    parser = build_parser()
    verbs = ("plan", kind.start_verb, "resume", "rollback", "pause", "abort", "status", "list")
    for verb in verbs:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([kind.command, verb, "--help"])
        assert done.value.code == 0


@pytest.mark.parametrize("where", ["before", "after"])
def test_format_is_taken_before_or_after_the_command(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = ["--journal", f"sqlite:///{tmp_path}/j.db"]
    fmt = ["-f", "json"]
    argv = (
        [*journal, *fmt, "upgrade", "list"]
        if where == "before"
        else [*journal, "upgrade", "list", *fmt]
    )
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_board_and_url_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--url", "https://x.example", "forklift", "resume", "--board", "etcd3+http://h:1"]
    assert main(argv) == 2
    assert "--board queues a run from this process: not with --url" in capsys.readouterr().err
