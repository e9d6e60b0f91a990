"""The commands every run kind gets from its registration."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from ephyra.cli.main import build_parser, main
from ephyra.engine.journal import Journal
from ephyra.engine.kinds import RunKind, registered


@pytest.mark.parametrize("kind", registered(), ids=lambda k: k.name)
def test_every_kind_has_the_run_commands(kind: RunKind[Any]) -> None:
    parser = build_parser()
    verbs = ("plan", kind.start_verb, "resume", "rollback", "pause", "abort", "status", "list")
    for verb in verbs:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([*kind.command.split(), verb, "--help"])
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


@pytest.mark.parametrize("kind", registered(), ids=lambda k: k.name)
def test_resume_takes_the_concurrency_a_start_takes(kind: RunKind[Any]) -> None:
    parser = build_parser()
    started = options(parser, kind.command, kind.start_verb)
    resumed = options(parser, kind.command, "resume")
    assert ("concurrency" in started) == ("concurrency" in resumed)
    assert ("concurrency" in resumed) == ("concurrency" in kind.resume_settings)


def options(parser: argparse.ArgumentParser, command: str, verb: str) -> set[str]:
    """The options of ``ephyra COMMAND VERB``, by their names in the namespace (a nested
    COMMAND, ``tenant maintenance``, by its words)."""
    commands = next(a for a in parser._actions if a.dest == "command")
    first, *nested = command.split()
    group = commands.choices[first]  # type: ignore[index]
    for word in nested:
        groups = next(a for a in group._actions if a.dest in ("group", "action"))
        group = groups.choices[word]  # type: ignore[index]
    verbs = next(a for a in group._actions if a.dest in ("action", "group"))  # ephyra tenant
    return {a.dest for a in verbs.choices[verb]._actions}  # type: ignore[index]


def test_a_resume_refuses_a_concurrency_it_cannot_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/j.db"
    journal = Journal(url)
    meta = {"state": "paused", "phase": "forward", "created": 1.0, "cloud": "c1", "hosts": []}
    with pytest.raises(SystemExit) as refused:
        main(["--journal", url, "upgrade", "resume", "--concurrency", "2"])
    assert refused.value.code == 2
    assert "unrecognized arguments: --concurrency" in capsys.readouterr().err
    settings = {"concurrency": 4, "fallback": "cold", "on_timeout": "abort"}
    run = journal.create_run("evacuate", {**meta, "settings": settings}, {})
    locks = ["--locks", f"file://{tmp_path}/locks"]
    assert main(["--journal", url, *locks, "host", "resume", "--concurrency", "0"]) == 2
    assert "--concurrency and --per-host must be at least 1" in capsys.readouterr().err
    assert journal.run(run.id).meta["settings"]["concurrency"] == 4  # nothing changed
    assert journal.run(run.id).state.value == "paused"
