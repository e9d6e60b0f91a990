"""A project's state in the tenants view, from its tenant maintenance runs: frozen while a
run holds it (since the first freeze), changing while a freeze or an unfreeze is under way
or stopped half way, not frozen once every freeze was given back (since the last)."""

from __future__ import annotations

from typing import Any

import pytest

from ephyra.api.routes.tenants import standing, summary
from ephyra.tenants.runner import END, START


@pytest.mark.parametrize(
    ("forward", "rollback", "expected"),
    [
        ("frozen", "", "holds"),
        ("frozen", "restored", "restored"),
        ("frozen", "running", "changing"),
        ("frozen", "failed", "changing"),
        ("running", "", "changing"),
        ("interrupted", "", "changing"),
        ("failed", "restored", "restored"),
        ("pending", "", "nothing"),
    ],
)
def test_what_a_run_did_to_its_project(forward: str, rollback: str, expected: str) -> None:
    assert standing({"forward": forward, "rollback": rollback}) == expected


def run(ident: str, state: str, kept: str, start: float = 0, end: float = 0) -> dict[str, Any]:
    row = {"id": ident, "state": state, "cloud": "ks", "project": "p", "project_id": "p-id"}
    return {
        "row": row,
        "standing": kept,
        "error": "boom" if state == "failed" else "",
        "times": {START: [start] if start else [], END: [end] if end else []},
    }


def test_frozen_since_the_first_freeze_that_holds() -> None:
    found = summary([run("a", "succeeded", "holds", start=10), run("b", "succeeded", "holds", 20)])
    assert (found["state"], found["frozen"], found["since"], found["run"]) == (
        "frozen",
        True,
        10,
        "a",
    )
    assert found["runs"] == ["a", "b"] and found["project_id"] == "p-id"


def test_not_frozen_since_the_last_unfreeze() -> None:
    found = summary(
        [run("a", "rolled-back", "restored", 10, 15), run("b", "rolled-back", "restored", 20, 25)]
    )
    assert (found["state"], found["frozen"], found["since"], found["run"]) == (
        "not frozen",
        False,
        25,
        "b",
    )


def test_a_run_stopped_half_way_makes_it_changing_whatever_else_holds() -> None:
    found = summary([run("a", "succeeded", "holds", 10), run("b", "failed", "changing")])
    assert (found["state"], found["frozen"], found["run"], found["run_state"]) == (
        "changing",
        True,
        "b",
        "failed",
    )
    assert found["error"] == "boom" and found["since"] is None


def test_a_run_that_changed_nothing_leaves_it_not_frozen() -> None:
    found = summary([run("a", "aborted", "nothing")])
    assert (found["state"], found["since"], found["run"]) == ("not frozen", None, "a")
