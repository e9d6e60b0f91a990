"""Saved plans: a plan made from a saved input (``CASE.input.yaml``) is compared with the
saved expected plan, as the text ``plan`` prints (``CASE.txt``) and as the data
``--format json`` gives (``CASE.yaml``).

The expected files change by hand, in a commit, never by a test: after a deliberate change
of a planner, ``scripts/saved_plans.py`` writes them anew for a person to read the diff."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

#: A case's input -> its plan as (text, data).
Build = Callable[[Any], tuple[str, dict[str, Any]]]


def text_of(renderable: Any, width: int = 120) -> str:
    """A plan's rich tree as plain text."""
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


@dataclass(frozen=True)
class SavedPlans:
    folder: Path
    build: Build

    @property
    def cases(self) -> list[str]:
        return sorted(p.name.removesuffix(".input.yaml") for p in self.folder.glob("*.input.yaml"))

    def input(self, case: str) -> Any:
        return yaml.safe_load((self.folder / f"{case}.input.yaml").read_text())

    def made(self, case: str) -> tuple[str, dict[str, Any]]:
        """The plan of ``case`` as the planner makes it now."""
        return self.build(self.input(case))

    def expected(self, case: str) -> tuple[str, Any]:
        text = (self.folder / f"{case}.txt").read_text()
        return text, yaml.safe_load((self.folder / f"{case}.yaml").read_text())

    def write(self, case: str) -> None:
        """Only for scripts/saved_plans.py, which a person runs."""
        text, data = self.made(case)
        (self.folder / f"{case}.txt").write_text(text)
        (self.folder / f"{case}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
