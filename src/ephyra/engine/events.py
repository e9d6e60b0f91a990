"""A run's events, kept in the journal for ``ephyra run events``, the API's event
stream and the dashboard: run started, step started/finished/failed, node moved or
failed, messages, state changes.

The table stands beside TaskFlow's in the journal's database. ``seq`` grows with each
event, so a reader asks for what came after the last one it saw. An event is small
(names, a state, seconds); no secret and no node snapshot goes in it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ephyra.progress import Observer

METADATA = sa.MetaData()
EVENTS = sa.Table(
    "ephyra_events",
    METADATA,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
#: How far each notifier got in each run's events: the ``seq`` of the last one delivered
#: (:mod:`ephyra.engine.notify`), so the next process to deliver goes on from there.
NOTIFIED = sa.Table(
    "ephyra_notified",
    METADATA,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("notifier", sa.String(255), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
)
#: The type of an event that is a kind's own notice.
NOTICE = "notice"
#: A step's status in an event: started, finished, failed, reverting.
STEP_STATUS = {"done": "finished"}


def create(engine: sa.Engine) -> None:
    METADATA.create_all(engine, checkfirst=True)


def add(engine: sa.Engine, run_id: str, kind: str, type_: str, **body: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            EVENTS.insert().values(
                run_id=run_id,
                kind=kind,
                time=time.time(),
                type=type_,
                body=json.dumps(body, default=str),
            )
        )


def read(
    engine: sa.Engine,
    run_id: str | None = None,
    after: int = 0,
    limit: int = 1000,
    types: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Events after ``after``, oldest first, of one run or of all, of some types or all."""
    query = sa.select(EVENTS).where(EVENTS.c.seq > after).order_by(EVENTS.c.seq).limit(limit)
    if run_id is not None:
        query = query.where(EVENTS.c.run_id == run_id)
    if types:
        query = query.where(EVENTS.c.type.in_(types))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "seq": row.seq,
            "run": row.run_id,
            "kind": row.kind,
            "time": row.time,
            "type": row.type,
            **json.loads(row.body),
        }
        for row in rows
    ]


def last_seq(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(EVENTS.c.seq))).scalar() or 0)


class Recorder:
    """An observer that writes every event to the journal and passes it on."""

    def __init__(self, inner: Observer, engine: sa.Engine, run_id: str, kind: str) -> None:
        self.inner = inner
        self._engine = engine
        self._run = run_id
        self._kind = kind
        #: Called after each event is written (the run's notifications go out sooner).
        self.recorded: Callable[[], None] = lambda: None

    def _add(self, type_: str, **body: Any) -> None:
        with contextlib.suppress(sa.exc.SQLAlchemyError):  # a lost event never stops a run
            add(self._engine, self._run, self._kind, type_, **body)
            self.recorded()

    def notice(self, event_type: str, **payload: Any) -> None:
        """A notice of the run's kind (``ephyra.tenant.maintenance.start``...): recorded
        with the run's events, and sent to the run's notifiers as ``event_type`` with
        ``payload`` (names, states, numbers: never a secret)."""
        self._add(NOTICE, event=event_type, **payload)

    def started(self, title: str, total: int, done: int) -> None:
        self._add("run.started", title=title, total=total, done=done)
        self.inner.started(title, total, done)

    def step(self, node: str, step: str, status: str, seconds: float) -> None:
        if status != "output":  # a command's output lines stay in the unit's record
            self._add(
                "step",
                node=node,
                step=step,
                status=STEP_STATUS.get(status, status),
                seconds=round(seconds, 3),
            )
        self.inner.step(node, step, status, seconds)

    def node(self, node: str, outcome: str, detail: str = "") -> None:
        self._add("node", node=node, outcome=outcome, detail=detail)
        self.inner.node(node, outcome, detail)

    def message(self, text: str) -> None:
        self._add("message", text=text)
        self.inner.message(text)

    def finished(self, state: str) -> None:
        self._add("run.finished", state=state)
        self.inner.finished(state)

    def state(self, state: str) -> None:
        self._add("run.state", state=state)
