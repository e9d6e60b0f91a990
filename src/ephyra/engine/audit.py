"""The audit trail: who did what through the API or the command line, kept in the journal.

One row per write (an API ``POST``/``PUT``/``PATCH``/``DELETE``, refused ones too, or an
in-process command that changes something): when, from where (``api`` or ``cli``), who
(user, project, domain) with which roles, the policy action (``run:start``), the target
the request named in its path or arguments (a run, a host, an environment; never a
request body, which may carry secrets), the result (the HTTP status, or the command's
exit code, and the error code on failure) and the request id.

The table stands beside TaskFlow's in the journal's database. Ephyra only ever appends
to it: there is no code that changes or removes a row.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

#: The longest user, project, domain and target kept (longer ones are cut).
NAME_LENGTH, TARGET_LENGTH = 255, 512
METADATA = sa.MetaData()
AUDIT = sa.Table(
    "ephyra_audit",
    METADATA,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Float, nullable=False, index=True),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("user", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("project", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("domain", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("roles", sa.Text, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(TARGET_LENGTH), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
)
SOURCES = ("api", "cli")
#: At most this many entries in one read.
MAX_READ = 1000

_created: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
_creating = threading.Lock()


@dataclass(frozen=True)
class Entry:
    """One write: ``status`` is the HTTP status (API) or the exit code (CLI); ``code`` the
    error code of a failure (empty on success)."""

    source: str
    user: str
    action: str
    target: str
    status: int
    code: str = ""
    project: str = ""
    domain: str = ""
    roles: tuple[str, ...] = ()
    request_id: str = ""
    time: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"an audit entry's source is one of {SOURCES}, not {self.source!r}")


def create(engine: sa.Engine) -> None:
    """Make the table if missing (once per engine)."""
    with _creating:
        if engine not in _created:
            METADATA.create_all(engine, checkfirst=True)
            _created.add(engine)


def record(engine: sa.Engine, entry: Entry) -> None:
    """Append ``entry`` to the trail."""
    create(engine)
    row = asdict(entry)
    row["roles"] = json.dumps(list(entry.roles))
    for column in ("user", "project", "domain"):
        row[column] = row[column][:NAME_LENGTH]
    row["target"] = row["target"][:TARGET_LENGTH]
    with engine.begin() as conn:
        conn.execute(AUDIT.insert().values(**row))


def read(engine: sa.Engine, limit: int = 100, after: int | None = None) -> list[dict[str, Any]]:
    """Entries oldest first: the ``limit`` after ``after`` (a ``seq``), or, without
    ``after``, the latest ``limit``."""
    create(engine)
    limit = max(1, min(limit, MAX_READ))
    query = sa.select(AUDIT).limit(limit)
    if after is None:
        query = query.order_by(AUDIT.c.seq.desc())
    else:
        query = query.where(AUDIT.c.seq > after).order_by(AUDIT.c.seq)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    found = [
        {**{str(k): v for k, v in row._asdict().items()}, "roles": json.loads(row.roles)}
        for row in rows
    ]
    return found if after is not None else found[::-1]
