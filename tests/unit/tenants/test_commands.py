"""``ephyra tenant maintenance``: a nested group, its names checked where they enter, and
``off`` finding the run that froze a project."""

from __future__ import annotations

from pathlib import Path

import pytest

from ephyra.cli.main import build_parser, main
from ephyra.cli.tenant import frozen_by
from ephyra.tenants.kind import TenantMaintenanceKind

ROWS = [
    {"id": "r1", "cloud": "c1", "project": "web", "project_id": "p1", "state": "rolled-back"},
    {"id": "r2", "cloud": "c1", "project": "web", "project_id": "p1", "state": "succeeded"},
    {"id": "r3", "cloud": "c2", "project": "web", "project_id": "p9", "state": "succeeded"},
]


def test_off_finds_the_freeze_not_undone_by_name_or_id_on_its_cloud() -> None:
    assert frozen_by(ROWS, "c1", "web") == "r2"
    assert frozen_by(ROWS, "c1", "p1") == "r2"
    assert frozen_by(ROWS, "c2", "p9") == "r3"
    assert frozen_by(ROWS[:1], "c1", "web") is None
    assert frozen_by(ROWS, "c3", "web") is None


def test_the_verbs_live_in_a_nested_group() -> None:
    args = build_parser().parse_args(
        ["tenant", "maintenance", "on", "web", "--os-cloud", "c1", "--writing-role", "editor"]
    )
    body = TenantMaintenanceKind().body_of(args)
    assert (body.cloud, body.project, body.writing_roles) == ("c1", "web", ["editor"])
    assert body.reader_role == "reader" and not body.split_inherited
    args = build_parser().parse_args(["tenant", "maintenance", "list", "-f", "json"])
    assert args.format == "json"


@pytest.mark.parametrize(
    "argv",
    [
        ["on", "web;rm -rf /", "--os-cloud", "c1"],
        ["on", "web", "--os-cloud", "c1", "--writing-role", "a b"],
        ["off", "../web", "--os-cloud", "c1"],
        ["plan", "web", "--os-cloud", "c 1"],
    ],
)
def test_names_are_checked_where_they_enter(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = ["--journal", f"sqlite:///{tmp_path}/j.db", "--locks", f"file://{tmp_path}/l"]
    assert main([*journal, "tenant", "maintenance", *argv]) == 2
    assert "refused: letters, digits" in capsys.readouterr().err


def test_off_with_nothing_frozen_does_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = ["--journal", f"sqlite:///{tmp_path}/j.db", "--locks", f"file://{tmp_path}/l"]
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr("ephyra.cli.tenant.not_elsewhere", lambda *a: asked.append(a))
    assert main([*journal, "tenant", "maintenance", "off", "web", "--os-cloud", "c1"]) == 0
    assert "web: no maintenance of it to undo on c1" in capsys.readouterr().out
    assert asked == [("c1", "web")]  # Keystone asked whether another run froze it
