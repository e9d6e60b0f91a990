"""What an operator checks after a move: where each node is, and that nothing changed."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

from testbed.ironic import Testbed
from testbed.seed import snapshot


class Planes(Protocol):
    """Control planes by name: the Ironic testbed's, or the two clouds'."""

    @property
    def names(self) -> Sequence[str]: ...

    def connect(self, name: str) -> Any: ...


def where(tb: Planes, uuids: list[str]) -> dict[str, list[str]]:
    """For each node, the control planes it is enrolled in."""
    enrolled = {name: {n.id for n in tb.connect(name).baremetal.nodes()} for name in tb.names}
    return {u: sorted(name for name, ids in enrolled.items() if u in ids) for u in uuids}


def assert_exactly_one(tb: Planes, uuids: list[str]) -> dict[str, str]:
    places = where(tb, uuids)
    wrong = {u: p for u, p in places.items() if len(p) != 1}
    assert not wrong, f"nodes not enrolled in exactly one control plane: {wrong}"
    return {u: p[0] for u, p in places.items()}


def assert_home(tb: Testbed, original: dict[str, dict[str, Any]], plane: str) -> None:
    """Every node of ``original`` is in ``plane`` only, with every field as it was."""
    places = assert_exactly_one(tb, list(original))
    assert set(places.values()) == {plane}, places
    now = snapshot(tb.connect(plane))
    for uuid, before in original.items():
        assert now[uuid] == before, f"{uuid} changed:\n{before}\n{now[uuid]}"


def stored_secret(
    tb: Testbed,
    plane: str,
    uuid: str,
    field: str = "ipmi_password",
    column: str = "driver_info",
) -> Any:
    """A secret of a node's ``driver_info`` (or ``instance_info``) as the control plane
    stored it (its API only shows it masked)."""
    assert column in ("driver_info", "instance_info")
    with sqlite3.connect(tb[plane].db_file) as db:
        row = db.execute(f"SELECT {column} FROM nodes WHERE uuid = ?", (uuid,)).fetchone()
    assert row is not None, f"{uuid} not in {plane}'s database"
    return json.loads(row[0]).get(field)
