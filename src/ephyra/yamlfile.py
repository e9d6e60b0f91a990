"""YAML files as Ephyra reads them: a syntax error says where, in one line.

PyYAML names a document read from a string ``<unicode string>`` and spreads its error over
several lines with a snippet of the text; the callers name the file, and this names the
line and column and the problem: ``line 3, column 9: mapping values are not allowed here``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def _one_line(error: yaml.YAMLError) -> str:
    """Where (line and column, from 1) and why a document is not YAML, in one line."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or (str(error).splitlines() or ["not YAML"])[0]
    context = getattr(error, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")


def parse(text: str) -> Any:
    """The YAML document ``text``; a syntax error a ``yaml.YAMLError`` of one line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise yaml.YAMLError(_one_line(exc)) from exc


def read(path: str | Path) -> Any:
    """The YAML document of the file ``path`` (OSError if it cannot be read)."""
    return parse(Path(path).read_text())
