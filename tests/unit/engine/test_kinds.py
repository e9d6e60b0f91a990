"""The registry of run kinds: entry points of ``ephyra.runs``, read without importlib's
whole-environment scan, each a RunKind whose name is its entry point's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import entry_points as importlib_entry_points
from pathlib import Path
from typing import Any

import pytest

from ephyra import plugins
from ephyra.engine import kinds
from ephyra.engine.journal import RunInfo
from ephyra.engine.kinds import RunKind, RunStatus, counts, headline
from ephyra.engine.states import Phase, RunState
from ephyra.errors import UsageError
from ephyra.plugins import EntryPoint


@pytest.mark.parametrize(
    "group", ["ephyra.runs", "ephyra.strategies", "ephyra.workloads", "ephyra.inventory"]
)
def test_the_fast_scan_finds_what_importlib_finds(group: str) -> None:
    ours = {(ep.name, ep.value) for ep in plugins.entry_points(group)}
    theirs = {(ep.name, ep.value) for ep in importlib_entry_points(group=group)}
    assert ours == theirs and ours


def test_the_three_kinds_are_registered_in_their_rank_order() -> None:
    assert kinds.names()[:3] == ["forklift", "upgrade", "evacuate"]
    for kind in kinds.registered():
        assert isinstance(kind, RunKind)
        assert kinds.get(kind.name) is kind
    assert {k.command for k in kinds.registered()} >= {"forklift", "upgrade", "host"}


def test_an_unknown_kind_is_bad_input_naming_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"no kind of run 'mystery' \(known: .*forklift"):
        kinds.get("mystery")


def test_an_entry_point_that_is_not_a_kind_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kinds, "_registry", kinds._Registry())
    fake = [EntryPoint("paths", "pathlib:Path", kinds.GROUP)]
    monkeypatch.setattr(kinds, "entry_points", lambda _group: fake)
    with pytest.raises(UsageError, match="run kind 'paths' is not a RunKind: pathlib:Path"):
        kinds.names()


def test_a_kind_must_call_itself_by_its_entry_points_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kinds, "_registry", kinds._Registry())
    value = "ephyra.forklift.kind:ForkliftKind"
    monkeypatch.setattr(kinds, "entry_points", lambda _g: [EntryPoint("move", value, kinds.GROUP)])
    with pytest.raises(UsageError, match="calls itself 'forklift', not 'move'"):
        kinds.names()


def test_an_entry_points_file_is_read_only_for_its_group(tmp_path: Path) -> None:
    text = "[other]\nx = a:b\n\n[ephyra.runs]\n# a comment\nfiles = tests.kinds:Files\n"
    assert plugins._parse(text, "ephyra.runs") == [
        EntryPoint("files", "tests.kinds:Files", "ephyra.runs")
    ]


def test_a_status_headline_counts_its_items() -> None:
    rows = [{"forward": "moved"}, {"forward": "moved"}, {"forward": "failed"}]
    status = {"id": "r1", "state": "failed", "phase": "forward", "reason": "too many"}
    status["counts"] = counts(rows)
    assert headline(status, " a -> b") == [
        "run r1: failed (forward) a -> b: 1 failed, 2 moved",
        "reason: too many",
    ]


@dataclass(frozen=True)
class Files:
    dir: str
    steps: tuple[str, ...]

    def where(self) -> dict[str, Any]:
        return {"dir": self.dir}

    def lists(self) -> dict[str, Any]:
        return {"counts": {"done": len(self.steps)}, "steps": list(self.steps)}


def test_a_status_is_typed_and_becomes_its_json_in_one_place() -> None:
    meta = {"state": "paused", "phase": "rollback", "reason": "asked"}
    status = RunStatus.of(RunInfo("r1", "files", RunState.PAUSED, meta), Files("/d", ("s0",)))
    assert (status.state, status.phase, status.detail.dir) == (
        RunState.PAUSED,
        Phase.ROLLBACK,
        "/d",
    )
    found = status.to_dict()
    assert found == {
        "id": "r1",
        "state": "paused",
        "phase": "rollback",
        "dir": "/d",
        "reason": "asked",
        "counts": {"done": 1},
        "steps": ["s0"],
    }
    assert list(found) == ["id", "state", "phase", "dir", "reason", "counts", "steps"]
    assert json.loads(json.dumps(found)) == found  # plain values: no enum goes out
    assert all(type(found[k]) is str for k in ("state", "phase"))
    before = RunStatus.of(RunInfo("r2", "files", RunState.RUNNING, {}), Files("/d", ()))
    assert (before.phase, before.reason, before.to_dict()["phase"]) == (None, "", None)
