"""The run journal: TaskFlow persistence (SQLite by default, any SQLAlchemy URL).

One TaskFlow logbook per run. Its ``meta`` is the run record (kind, state,
parameters), written only by the process that holds the run's lock. Inside it:

``control``        requests from other processes (pause, abort); written only by them
``node:<uuid>``    what the run knows of one node (snapshot, outcome); no secrets
``<phase>:<uuid>`` the TaskFlow flow detail of one node's move in one phase

Beside TaskFlow's tables, ``ephyra_events`` holds every run's events (see
:mod:`ephyra.engine.events`).

Flow-detail ids are derived from the run id and name, so any of them is read
directly without loading the whole run.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from taskflow.persistence import models
from taskflow.persistence.backends import impl_sqlalchemy
from taskflow.persistence.backends.sqlalchemy import tables

from ephyra.engine import events
from ephyra.engine.states import UNFINISHED, RunState
from ephyra.errors import BackendError, EphyraError, RunNotFound, UsageError
from ephyra.net import why
from ephyra.paths import private_database, sqlite_path, state_dir, write_ahead
from ephyra.urls import redact, redact_text

CONTROL = "control"
#: TaskFlow's table of flow details, for reading many records in one query.
FLOWDETAILS = tables.fetch(sa.MetaData()).flowdetails
CREATE_TRIES = 4
#: How long a SQLite connection waits for another one's lock.
SQLITE_BUSY_TIMEOUT = 60.0


#: Sets of states with a name of their own, as messages say them.
NAMED_STATES = {UNFINISHED: "unfinished (running, paused, failed or rolling back)"}


def spoken(state: RunState) -> str:
    """A state as a sentence says it: "rolled back", not "rolled-back"."""
    return state.value.replace("-", " ")


def described(states: frozenset[RunState]) -> str:
    """``states`` in words: their name, else the few left out ("not rolled back"), else
    each of them ("paused or failed")."""
    if states in NAMED_STATES:
        return NAMED_STATES[states]
    left_out = [s for s in RunState if s not in states]
    if len(left_out) < len(states):
        return "not " + _either(left_out)
    return _either([s for s in RunState if s in states])


def _either(states: list[RunState]) -> str:
    words = [spoken(s) for s in states]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def default_url() -> str:
    return f"sqlite:///{state_dir() / 'journal.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers (status, list) never block the run; NORMAL: a commit survives the
    # process being killed (the OS has it); only a power loss may cost the last steps,
    # which then run again, as after any crash.
    write_ahead(cursor, SQLITE_BUSY_TIMEOUT)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _Backend(impl_sqlalchemy.SQLAlchemyBackend):  # type: ignore[misc]
    """TaskFlow's SQLAlchemy backend, handing out one connection object.

    TaskFlow's builds its table metadata anew for every connection, and its engines ask
    for one per state change; its connection object holds no database connection of its
    own (each operation checks one out of the pool), so one serves every thread.
    """

    def __init__(self, conf: dict[str, Any], engine: Any = None) -> None:
        super().__init__(conf, engine=engine)
        self._shared: Any = None
        self._shared_lock = threading.Lock()

    def get_connection(self) -> Any:
        with self._shared_lock:
            if self._shared is None:
                self._shared = super().get_connection()
            return self._shared


def _backend(url: str) -> Any:
    """The journal's TaskFlow backend; SQLite pooled and in WAL mode (TaskFlow's own
    choice opens a new SQLite connection for every statement)."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return _Backend({"connection": url})
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT},
        pool_size=4,
        max_overflow=16,
    )
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return _Backend({"connection": url}, engine=engine)


@dataclass(frozen=True)
class RunInfo:
    id: str
    kind: str
    state: RunState
    meta: dict[str, Any]

    @property
    def short(self) -> str:
        return self.id[:8]

    # The engine's own keys of the record; a kind's are read by its own metadata class.
    @property
    def phase(self) -> str | None:
        """``forward`` or ``rollback`` (None before a run has begun)."""
        phase: str | None = self.meta.get("phase")
        return phase

    @property
    def reason(self) -> str:
        """Why the run stopped, paused or failed ('' when it did not say)."""
        return str(self.meta.get("reason") or "")

    @property
    def created(self) -> float:
        """When the run was made (seconds since the epoch; 0 if unknown)."""
        return float(self.meta.get("created") or 0)


#: Told of a run as soon as it is in the journal (a server answers with its id).
Created = Callable[[RunInfo], None]


def no_hook(_run: RunInfo) -> None:
    pass


def _reason(exc: Exception) -> str:
    """Why the database could not be opened, in one line: the driver's own first line
    (``connection to server at ... failed: Connection refused``), without SQLAlchemy's
    wrapping and its links."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return redact_text(lines[0]) if lines else type(cause).__name__


def _info(book: Any) -> RunInfo:
    meta = dict(book.meta or {})
    return RunInfo(book.uuid, meta.get("kind", "?"), RunState(meta["state"]), meta)


class Journal:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        database = sqlite_path(self.url)
        if database is not None:  # 0600 before SQLite opens it: its -wal and -shm follow
            try:
                private_database(database)
            except OSError as exc:
                raise BackendError(
                    f"cannot open journal {redact(self.url)}: {exc.filename or database}: "
                    f"{why(exc) or exc.strerror or exc}"
                ) from exc
        for attempt in range(CREATE_TRIES):
            try:
                self.backend = _backend(self.url)
                with self._conn() as conn:
                    conn.upgrade()
                events.create(self.engine)
                break
            except EphyraError:
                raise
            except (sa.exc.ArgumentError, ImportError) as exc:  # not a URL, or no driver
                raise UsageError(f"cannot use journal {redact(self.url)}: {exc}") from exc
            except Exception as exc:
                # processes opening a new database at once race to create its tables
                # (a unique violation on alembic's version table): the losers find them
                # made when they try again
                if attempt + 1 == CREATE_TRIES:
                    raise BackendError(
                        f"cannot open journal {redact(self.url)}: {_reason(exc)}"
                    ) from exc
                time.sleep(0.5 * (attempt + 1))
        self._write = threading.Lock()

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        conn = self.backend.get_connection()
        try:
            yield conn
        finally:
            conn.close()

    @property
    def engine(self) -> sa.Engine:
        engine: sa.Engine = self.backend.engine
        return engine

    def close(self) -> None:
        self.backend.close()

    @staticmethod
    def detail_id(run_id: str, name: str) -> str:
        return str(uuid.uuid5(uuid.UUID(run_id), name))

    # -- runs --------------------------------------------------------------
    def create_run(
        self, kind: str, meta: Mapping[str, Any], details: Mapping[str, Mapping[str, Any]]
    ) -> RunInfo:
        """A new run, with its flow details (name -> initial record) in one transaction."""
        run_id = str(uuid.uuid4())
        book = models.LogBook(f"{kind} run", uuid=run_id)
        book.meta = {**meta, "kind": kind}
        for name, record in {CONTROL: {}, **details}.items():
            detail = models.FlowDetail(name, self.detail_id(run_id, name))
            detail.meta = dict(record)
            book.add(detail)
        with self._write, self._conn() as conn:
            conn.save_logbook(book)
        return _info(book)

    def run(self, ident: str) -> RunInfo:
        """A run by id or by a unique prefix of it."""
        with self._conn() as conn:
            try:
                return _info(conn.get_logbook(ident, lazy=True))
            except Exception:  # not a full id: try a prefix
                matches = [b for b in conn.get_logbooks(lazy=True) if b.uuid.startswith(ident)]
        if len(matches) != 1:
            raise RunNotFound(
                f"no run {ident!r} in {redact(self.url)}"
                if not matches
                else f"{ident!r} is ambiguous"
            )
        return _info(matches[0])

    def find(
        self, kind: str, ident: str | None, states: frozenset[RunState], hint: str = ""
    ) -> RunInfo:
        """The ``kind`` run named, or the latest ``kind`` run in one of ``states``
        (``hint``: said when the journal has no ``kind`` run at all, e.g. how to start one)."""
        if ident:
            run = self.run(ident)
            if run.kind != kind:
                raise RunNotFound(f"run {ident} is a {run.kind} run, not a {kind} run")
            return run
        found = self.runs(kind)
        for run in reversed(found):
            if run.state in states:
                return run
        if not found:
            raise RunNotFound(f"no {kind} run yet in {redact(self.url)}{hint}")
        latest = found[-1]
        raise RunNotFound(
            f"no {kind} run in {redact(self.url)} is {described(states)}: "
            f"the latest, {latest.short}, is {spoken(latest.state)}"
        )

    def runs(self, kind: str | None = None) -> list[RunInfo]:
        with self._conn() as conn:
            books = list(conn.get_logbooks(lazy=True))
        infos = [_info(b) for b in books if (b.meta or {}).get("state")]
        infos = [i for i in infos if kind is None or i.kind == kind]
        return sorted(infos, key=lambda i: i.meta.get("created", 0))

    def save_run(self, run: RunInfo, **changes: Any) -> RunInfo:
        """Write the run record; only the run's lock holder calls this."""
        meta = {**run.meta, **changes}
        if isinstance(meta.get("state"), RunState):
            meta["state"] = meta["state"].value
        book = models.LogBook(f"{run.kind} run", uuid=run.id)
        book.meta = meta
        with self._write, self._conn() as conn:
            conn.save_logbook(book)
        return RunInfo(run.id, run.kind, RunState(meta["state"]), meta)

    # -- flow details ------------------------------------------------------
    def detail(self, run_id: str, name: str) -> Any:
        with self._conn() as conn:
            try:
                return conn.get_flow_details(self.detail_id(run_id, name))
            except Exception as exc:
                raise RunNotFound(f"run {run_id} has no {name!r} in the journal") from exc

    def records(self, run_id: str, prefix: str) -> dict[str, dict[str, Any]]:
        """Every record of a run whose name starts with ``prefix``, in one query (a
        status of hundreds of nodes reads them all at once)."""
        query = sa.select(FLOWDETAILS.c.name, FLOWDETAILS.c.meta).where(
            FLOWDETAILS.c.parent_uuid == run_id, FLOWDETAILS.c.name.startswith(prefix)
        )
        with self.engine.connect() as conn:
            return {row.name: dict(row.meta or {}) for row in conn.execute(query)}

    def record(self, run_id: str, name: str) -> dict[str, Any]:
        return dict(self.detail(run_id, name).meta or {})

    def save_record(self, run_id: str, name: str, meta: Mapping[str, Any]) -> None:
        fd = models.FlowDetail(name, self.detail_id(run_id, name))
        fd.meta = dict(meta)
        with self._write, self._conn() as conn:
            conn.update_flow_details(fd)

    # -- control requests from other processes ----------------------------
    def request(self, run_id: str, what: str | None) -> None:
        self.save_record(run_id, CONTROL, {"request": what} if what else {})

    def pending_request(self, run_id: str) -> str | None:
        request: str | None = self.record(run_id, CONTROL).get("request")
        return request
