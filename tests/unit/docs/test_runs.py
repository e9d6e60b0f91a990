"""docs/runs.md lists exactly the run kinds installed, with their commands and modules."""

from __future__ import annotations

import re
from pathlib import Path

from ephyra.engine.kinds import registered
from ephyra.plugins import entry_points

DOC = Path(__file__).resolve().parents[3] / "docs" / "runs.md"


def test_the_table_of_kinds_is_the_registry() -> None:
    rows = re.findall(
        r"^\| `([\w-]+)`\s+\| `ephyra ([\w ]+)`\s+\| `([\w.]+)`", DOC.read_text(), re.M
    )
    modules = {ep.name: ep.value.partition(":")[0] for ep in entry_points("ephyra.runs")}
    assert rows == [(k.name, k.command, modules[k.name]) for k in registered()]


def test_the_registration_example_is_the_projects_own() -> None:
    pyproject = (DOC.parents[1] / "pyproject.toml").read_text()
    example = re.search(r"```toml\n(.*?)```", DOC.read_text(), re.S)
    assert example is not None
    for line in example.group(1).strip().splitlines():
        assert line in pyproject
