"""The store in one SQLite file (``sqlite:///PATH``): the embedded default for one machine.

Every process and thread opens its own connection to the file (WAL: readers never wait
for a writer). A transaction is ``BEGIN IMMEDIATE``, so comparisons and writes of two
processes never interleave. A lease is a row with its expiry time; a key under an expired
lease is invisible to reads at once and deleted by the next write. A watch compares its
prefix's keys every ``POLL_S`` seconds; there are no revisions (a watch ``after`` one
wakes at once, as a watch without one does).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ephyra.errors import LeaseExpired, StoreError, UsageError
from ephyra.paths import private_database, write_ahead
from ephyra.urls import redact
from ephyra.versions.store import (
    Compare,
    Delete,
    Deletes,
    Lease,
    Op,
    Position,
    Put,
    Store,
    Watch,
    Watched,
)

POLL_S = 0.05

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    lease INTEGER
);
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ttl INTEGER NOT NULL,
    expires REAL NOT NULL
);
"""

LIVE = "(lease IS NULL OR lease IN (SELECT id FROM leases WHERE expires >= ?))"


def _prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"


class SqliteLease(Lease):
    def __init__(self, store: SqliteStore, lease_id: int, ttl: int) -> None:
        self._store = store
        self.id = lease_id
        self.ttl = ttl

    def refresh(self) -> None:
        now = time.time()
        with self._store.transaction() as db:
            row = db.execute(
                "UPDATE leases SET expires = ? WHERE id = ? AND expires >= ? RETURNING id",
                (now + self.ttl, self.id, now),
            ).fetchone()
        if row is None:
            raise LeaseExpired(f"lease {self.id} has expired")

    def revoke(self) -> None:
        with self._store.transaction() as db:
            db.execute("DELETE FROM kv WHERE lease = ?", (self.id,))
            db.execute("DELETE FROM leases WHERE id = ?", (self.id,))


class _SqliteWatch(Watch):
    """Compares its prefixes' keys (a :class:`Deletes` prefix: which keys there are) every
    ``POLL_S``; its first wait returns at once (there is no revision to start after)."""

    def __init__(self, store: SqliteStore, prefixes: tuple[Watched, ...]) -> None:
        self._store = store
        self._prefixes = prefixes
        self._seen: list[dict[str, str]] | None = None
        self._cancelled = threading.Event()

    def _now(self) -> list[dict[str, str]]:
        return [
            self._store.range(p.prefix if isinstance(p, Deletes) else p) for p in self._prefixes
        ]

    def _changed(self, now: list[dict[str, str]]) -> bool:
        if self._seen is None:
            return True
        for prefix, old, new in zip(self._prefixes, self._seen, now, strict=True):
            if old.keys() - new.keys() if isinstance(prefix, Deletes) else old != new:
                return True
        return False

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            now = self._now()
            changed = self._changed(now)
            self._seen = now
            if changed:
                return True
            left = deadline - time.monotonic()
            if left <= 0 or self._cancelled.wait(min(POLL_S, left)):
                return False

    def cancel(self) -> None:
        self._cancelled.set()


#: How long a connection waits for another one's lock.
BUSY_TIMEOUT = 60.0


class SqliteStore(Store):
    def __init__(self, url: str) -> None:
        self.url = url
        path = url.removeprefix("sqlite:///")
        if path == url or not path:
            raise UsageError(f"store URL {redact(url)!r} is not sqlite:///PATH")
        self.path = Path(path)
        private_database(self.path)  # 0600 before SQLite opens it: its -wal and -shm follow
        self._local = threading.local()
        try:
            self._db().executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create store {redact(url)}: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
                write_ahead(db, BUSY_TIMEOUT)
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open store {redact(self.url)}: {exc}") from exc
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "DELETE FROM kv WHERE lease IN (SELECT id FROM leases WHERE expires < ?)",
                    (time.time(),),
                )
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"store {redact(self.url)}: {exc}") from exc

    def get(self, key: str) -> str | None:
        row = self._read(f"SELECT value FROM kv WHERE key = ? AND {LIVE}", (key, time.time()))
        return str(row[0][0]) if row else None

    def range(self, prefix: str) -> dict[str, str]:
        rows = self._read(
            f"SELECT key, value FROM kv WHERE key >= ? AND key < ? AND {LIVE}",
            (prefix, _prefix_end(prefix), time.time()),
        )
        return {str(k): str(v) for k, v in rows}

    # The order of creation is the rowid's: a new row's is above every row's in the
    # table, and an upsert keeps it.
    def ranked(self, prefix: str, limit: int | None = None) -> list[tuple[str, str]]:
        rows = self._read(
            f"SELECT key, value FROM kv WHERE key >= ? AND key < ? AND {LIVE} "
            "ORDER BY rowid LIMIT ?",
            (prefix, _prefix_end(prefix), time.time(), -1 if limit is None else limit),
        )
        return [(str(k), str(v)) for k, v in rows]

    def position(
        self,
        prefix: str,
        key: str,
        most: int,
        *,
        join: Put | None = None,
        created: int | None = None,  # the rowid is read with the rest: no hint needed
        read: Sequence[str] = (),
    ) -> Position | None:
        if join is not None:
            self.txn([Compare(key, None)], [join])
        now = time.time()
        own = self._read(f"SELECT rowid, value FROM kv WHERE key = ? AND {LIVE}", (key, now))
        if not own:
            return None
        under = f"key >= ? AND key < ? AND rowid < ? AND {LIVE}"
        args = (prefix, _prefix_end(prefix), own[0][0], now)
        [(ahead, before)] = self._read(
            f"SELECT (SELECT count(*) FROM kv WHERE {under}), "
            f"(SELECT key FROM kv WHERE {under} ORDER BY rowid DESC LIMIT 1)",
            args + args,
        )
        counted = min(most, int(str(ahead)))
        before_key = None if before is None else str(before)
        values = {other: self.get(other) for other in read}
        return Position(str(own[0][1]), counted, before_key, int(str(own[0][0])), 0, values)

    def _read(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        try:
            return list(self._db().execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"store {redact(self.url)}: {exc}") from exc

    def put(self, key: str, value: str, lease: Lease | None = None) -> None:
        self.txn([], [Put(key, value, lease)])

    def delete(self, key: str) -> None:
        self.txn([], [Delete(key)])

    def txn(
        self, compare: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> bool:
        now = time.time()
        with self.transaction() as db:
            held = all(self._holds(db, c) for c in compare)
            for op in success if held else failure:
                if isinstance(op, Delete):
                    db.execute("DELETE FROM kv WHERE key = ?", (op.key,))
                    continue
                lease_id = op.lease.id if op.lease is not None else None
                live = "SELECT 1 FROM leases WHERE id = ? AND expires >= ?"
                if lease_id is not None and not db.execute(live, (lease_id, now)).fetchone():
                    raise LeaseExpired(f"lease {lease_id} has expired")
                db.execute(
                    "INSERT INTO kv (key, value, lease) VALUES (?, ?, ?) ON CONFLICT(key) "
                    "DO UPDATE SET value = excluded.value, lease = excluded.lease",
                    (op.key, op.value, lease_id),
                )
            return held

    @staticmethod
    def _holds(db: sqlite3.Connection, c: Compare) -> bool:
        row = db.execute("SELECT value FROM kv WHERE key = ?", (c.key,)).fetchone()
        return row is None if c.value is None else row is not None and row[0] == c.value

    def lease(self, ttl: int) -> Lease:
        with self.transaction() as db:
            db.execute("DELETE FROM leases WHERE expires < ?", (time.time(),))
            row = db.execute(
                "INSERT INTO leases (ttl, expires) VALUES (?, ?) RETURNING id",
                (ttl, time.time() + ttl),
            ).fetchone()
        return SqliteLease(self, int(row[0]), ttl)

    def watch(self, *prefixes: Watched, after: int | None = None) -> Watch:
        return _SqliteWatch(self, prefixes)

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
