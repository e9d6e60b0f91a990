"""The audit trail's table."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ephyra.engine import audit


def entry(n: int, **kw: object) -> audit.Entry:
    fields: dict[str, object] = {
        "source": "api",
        "user": f"u{n}",
        "action": "run:pause",
        "target": f"forklift/r{n}",
        "status": 200,
        **kw,
    }
    return audit.Entry(**fields)  # type: ignore[arg-type]


def test_entries_are_appended_and_read_back(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'j.db'}")
    for n in range(5):
        audit.record(engine, entry(n, roles=("admin",), code="" if n else "forbidden"))
    latest = audit.read(engine, limit=2)
    assert [e["user"] for e in latest] == ["u3", "u4"]  # the latest, oldest first
    assert latest[0]["roles"] == ["admin"] and latest[0]["source"] == "api"
    assert [e["seq"] for e in audit.read(engine, limit=2, after=1)] == [2, 3]
    assert audit.read(engine, limit=10, after=5) == []
    assert audit.read(engine)[0]["code"] == "forbidden"
    audit.record(engine, entry(9, user="x" * 1000, target="t" * 1000))
    last = audit.read(engine, limit=1)[0]
    assert len(last["user"]) == audit.NAME_LENGTH and len(last["target"]) == audit.TARGET_LENGTH


def test_an_entry_comes_from_the_api_or_the_cli() -> None:
    with pytest.raises(ValueError, match="source"):
        entry(1, source="web")
