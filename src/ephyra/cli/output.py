"""Printing results: ``--format table|json|yaml`` on every listing.

YAML and rich are imported when something is printed in their format, not when the
command line is built (``ephyra --help`` stays quick)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

FORMATS = ("table", "json", "yaml")


def emit(data: Any, fmt: str, columns: Sequence[str] | None = None, title: str = "") -> None:
    """Print ``data`` (a dict or a list of dicts) in the chosen format on stdout."""
    if fmt == "json":
        print(json.dumps(data, indent=2, sort_keys=False, default=str))
    elif fmt == "yaml":
        import yaml

        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")
    elif isinstance(data, list):
        table_of(data, columns or (list(data[0]) if data else []), title)
    else:
        for key, value in data.items():
            print(f"{key}: {value}")


def table_of(rows: list[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    Console(file=sys.stdout, width=200 if not sys.stdout.isatty() else None).print(table)
