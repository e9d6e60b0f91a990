"""The store on etcd v3, through etcd3gw's gRPC-gateway client.

Its URL is ``etcd3+https://[USER@]HOST:PORT?ca_cert=FILE&cert_cert=FILE&cert_key=FILE``
(TLS, a client certificate, an etcd user whose password is in ``EPHYRA_ETCD_PASSWORD`` or
``?password_file=FILE``), or ``etcd3+http://HOST:PORT`` for a plain etcd: see
:mod:`ephyra.etcd`.

A range read is one ``/kv/range`` call; a transaction is one ``/kv/txn``; leases are etcd
leases, renewed over a connection of their own (:attr:`EtcdStore.keepalive`) so that a
renewal never waits behind the updates. One etcd watch per prefix serves every
:class:`Watch` of this store on it, so a thousand agents in one process hold one stream,
not a thousand; and past :data:`SHARED_AT` streams on keys under one prefix (the agents of
a process each watching the key ahead of it in a queue), the prefix's one stream serves
the further keys. A stream keeps its last events, so that a watch beginning after a read
(``after`` its revision) is told at once of what it missed.
"""

from __future__ import annotations

import base64
import collections
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import etcd3gw
import requests

from ephyra.errors import LeaseExpired, StoreError
from ephyra.etcd import EtcdURL, describe
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

TIMEOUT_S = 10.0
#: A renewal that etcd has not answered in this time is given up and tried again (the
#: lease keeper renews at a third of the TTL, and again at once on a failure).
KEEPALIVE_TIMEOUT_S = 3.0


#: etcd's RangeRequest enums (SortOrder, SortTarget)
DESCEND, BY_CREATE = 2, 2


def _end(prefix: str) -> str:
    """The end of the range of keys under ``prefix`` (its last character plus one)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _text(b64: str) -> str:
    return base64.b64decode(b64).decode()


def _newest(prefix: str, limit: int, **more: int) -> dict[str, Any]:
    """A transaction's read of the ``limit`` keys under ``prefix`` created last (the
    newest first), names only; ``more``: further filters (``max_create_revision``)."""
    found = {"key": _b64(prefix), "range_end": _b64(_end(prefix)), "limit": limit, **more}
    return {
        "request_range": {
            **found,
            "sort_order": DESCEND,
            "sort_target": BY_CREATE,
            "keys_only": True,
        }
    }


def _gets(keys: Sequence[str]) -> list[dict[str, Any]]:
    """A transaction's reads of ``keys``, one each (their values: :func:`_values`)."""
    return [{"request_range": {"key": _b64(key)}} for key in keys]


def _values(keys: Sequence[str], kvs: Sequence[Sequence[Any]]) -> dict[str, str | None]:
    """Each key's value from the range reads of a transaction (None: no such key)."""
    return {key: _text(kv[0]["value"]) if kv else None for key, kv in zip(keys, kvs, strict=True)}


class EtcdLease(Lease):
    """An etcd lease; its renewals go over the store's keepalive connection."""

    def __init__(self, store: EtcdStore, lease: Any, ttl: int) -> None:
        self._store = store
        self._lease = lease
        self.id = int(lease.id)
        self.ttl = ttl
        self._renewal = etcd3gw.Lease(self.id, store.keepalive)

    def refresh(self) -> None:
        left = self._store.call(self._renewal.refresh)
        if int(left) <= 0:
            raise LeaseExpired(f"lease {self.id:x} has expired")

    def revoke(self) -> None:
        self._store.call(self._lease.revoke)


#: The events a stream keeps, to tell a watch that begins late what it missed.
KEPT_EVENTS = 1024
#: Streams on keys under one prefix that a store opens before it streams the prefix
#: instead, and serves the watches of further keys under it from that one stream (agents
#: sharing a store, each watching one key of a queue).
SHARED_AT = 8


@dataclass(frozen=True)
class _Event:
    revision: int
    key: str
    value: str | None  # None: deleted


def _parent(prefix: str) -> str | None:
    """The prefix a key is under (``/a/b/`` for ``/a/b/c``); None for a prefix."""
    return None if prefix.endswith("/") else prefix[: prefix.rfind("/") + 1] or None


class _Stream:
    """One etcd watch on a prefix, fanning out to the watches waiting on it or on keys
    under it (each told only of the events it wants: under its own prefix, after its
    revision, and deletions only if it asks so). The last :data:`KEPT_EVENTS` events are
    kept, so a watch that begins after a read still learns of what changed between the
    read and its beginning."""

    def __init__(self, client: Any, prefix: str, start: int | None) -> None:
        self.prefix = prefix
        #: prefix watched -> the watches on it -> deletions only
        self.subscribers: dict[str, dict[_EtcdWatch, bool]] = {}
        self.lock = threading.Lock()
        self.recent: collections.deque[_Event] = collections.deque(maxlen=KEPT_EVENTS)
        #: every event from this revision on is in ``recent`` (None: not known yet)
        self.kept_from = start
        self._events, self._cancel = client.watch_prefix(prefix, start_revision=start)
        threading.Thread(target=self._pump, name=f"watch {prefix}", daemon=True).start()

    def covers(self, after: int | None) -> bool:
        """Whether every change after revision ``after`` is known to this stream."""
        if after is None:
            return True
        return self.kept_from is not None and self.kept_from <= after + 1

    def _pump(self) -> None:
        for raw in self._events:
            kv = raw["kv"]
            deleted = raw.get("type") == "DELETE"
            value = None if deleted else bytes(kv.get("value") or b"").decode()
            event = _Event(int(kv.get("mod_revision", 0)), bytes(kv["key"]).decode(), value)
            with self.lock:
                if self.kept_from is None:
                    self.kept_from = event.revision
                if len(self.recent) == KEPT_EVENTS:
                    self.kept_from = self.recent[0].revision + 1
                self.recent.append(event)
                for end in range(len(self.prefix), len(event.key) + 1):
                    prefix = event.key[:end]
                    for sub, deletes in list(self.subscribers.get(prefix, {}).items()):
                        if (deleted or not deletes) and event.revision > sub.after:
                            _tell(sub, prefix, event)

    def subscribe(self, sub: _EtcdWatch, prefix: str, deletes: bool) -> None:
        """Add ``sub`` on ``prefix``, told at once of the events it missed since its
        revision (or, if they are no longer known, told that something may have changed)."""
        with self.lock:
            self.subscribers.setdefault(prefix, {})[sub] = deletes
            if sub.after < 0:
                return
            if not self.covers(sub.after):
                sub.changed.set()
                return
            for event in reversed(self.recent):
                if event.revision <= sub.after:
                    break
                if event.key.startswith(prefix) and (event.value is None or not deletes):
                    _tell(sub, prefix, event)

    def unsubscribe(self, sub: _EtcdWatch, prefix: str) -> bool:
        """Remove ``sub`` from ``prefix``; True when nothing is left to serve."""
        with self.lock:
            subs = self.subscribers.get(prefix, {})
            subs.pop(sub, None)
            if not subs:
                self.subscribers.pop(prefix, None)
            return not self.subscribers

    def cancel(self) -> None:
        self._cancel()


def _tell(sub: _EtcdWatch, prefix: str, event: _Event) -> None:
    if event.key == prefix:  # a key watched by its full name: its value kept
        sub.values[event.key] = event.value
    sub.changed.set()


class _EtcdWatch(Watch):
    def __init__(self, release: Callable[[_EtcdWatch], None], after: int | None) -> None:
        self.changed = threading.Event()
        self.values: dict[str, str | None] = {}  # the keys watched by their full name
        self.routes: list[tuple[_Stream, str]] = []  # the streams serving it, for what
        self.after = -1 if after is None else after
        if after is None:
            self.changed.set()  # the first wait returns at once: read the state first
        self._release = release

    def wait(self, timeout: float) -> bool:
        fired = self.changed.wait(timeout)
        self.changed.clear()
        return fired

    def cancel(self) -> None:
        self._release(self)

    def seen(self) -> dict[str, str | None]:
        return dict(self.values)


class EtcdStore(Store):
    def __init__(self, url: str) -> None:
        etcd = EtcdURL.parse(url, what="store")
        self.url = etcd.shown  # as messages show it
        # no proxy, netrc or CA settings from the environment (etcd is reached directly,
        # and skipping that lookup costs a quarter less CPU per request)
        self.client = etcd.client(TIMEOUT_S)
        #: Lease renewals only: never queued behind reads, writes or watches.
        self.keepalive = etcd.client(KEEPALIVE_TIMEOUT_S)
        self._streams: dict[str, _Stream] = {}
        self._streams_lock = threading.Lock()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn`` with etcd's and the network's errors as StoreError."""
        try:
            return fn(*args, **kwargs)
        except etcd3gw.exceptions.Etcd3Exception as exc:
            if "lease not found" in str(exc.detail_text):  # a put under an expired lease
                raise LeaseExpired(f"etcd at {self.url}: {exc.detail_text}") from exc
            raise StoreError(f"etcd at {self.url}: {describe(exc)}") from exc
        except requests.RequestException as exc:
            raise StoreError(f"etcd at {self.url}: {describe(exc)}") from exc

    def get(self, key: str) -> str | None:
        values = self.call(self.client.get, key)
        return values[0].decode() if values else None

    def range(self, prefix: str) -> dict[str, str]:
        found = self.call(self.client.get_prefix, prefix)
        return {meta["key"].decode(): value.decode() for value, meta in found}

    def ranked(self, prefix: str, limit: int | None = None) -> list[tuple[str, str]]:
        found = self.call(
            self.client.get,
            prefix,
            metadata=True,
            range_end=_end(prefix),
            sort_order="ascend",
            sort_target="create",
            limit=limit,
        )
        return [(meta["key"].decode(), value.decode()) for value, meta in found]

    def position(
        self,
        prefix: str,
        key: str,
        most: int,
        *,
        join: Put | None = None,
        created: int | None = None,
        read: Sequence[str] = (),
    ) -> Position | None:
        if created is None:
            found = self._join(prefix, key, most, join, read) if join else self._created(key)
            if not isinstance(found, int):
                return found  # joined (read in the same request), or no such key
            created = found
        # the keys created before it, the newest first: etcd reads the whole prefix to
        # sort it (once per look: one range), and its count ignores the revision filters,
        # so they are counted by a limit
        ahead = _newest(prefix, most, max_create_revision=created - 1)
        own = {"request_range": {"key": _b64(key)}}
        body = {
            "compare": [
                {
                    "key": _b64(key),
                    "result": "EQUAL",
                    "target": "CREATE",
                    "create_revision": created,
                }
            ],
            "success": [own, ahead, *_gets(read)],
            "failure": [own],
        }
        reply = self.call(self.client.transaction, body)
        ranges = [r["response_range"] for r in reply["responses"]]
        kvs = [r.get("kvs") or [] for r in ranges]
        if not reply.get("succeeded"):  # written again since (or gone): read it afresh
            there = kvs[0] or join
            return self.position(prefix, key, most, join=join, read=read) if there else None
        return Position(
            _text(kvs[0][0]["value"]),
            len(kvs[1]),
            _text(kvs[1][0]["key"]) if kvs[1] else None,
            created,
            int(reply["header"]["revision"]),
            _values(read, kvs[2:]),
        )

    def _created(self, key: str) -> int | None:
        own = self.call(self.client.get, key, metadata=True)
        return int(own[0][1]["create_revision"]) if own else None

    def _join(
        self, prefix: str, key: str, most: int, join: Put, read: Sequence[str]
    ) -> Position | int:
        """Write ``join`` if ``key`` does not exist, and read its place in the same request
        (the newest key: every other one is before it); else the key's create revision."""
        body = {
            "compare": [self._compare(Compare(key, None))],
            "success": [self._op(join), _newest(prefix, 2), *_gets(read)],
            "failure": [{"request_range": {"key": _b64(key), "keys_only": True}}],
        }
        reply = self.call(self.client.transaction, body)
        if not reply.get("succeeded"):
            [kv] = reply["responses"][0]["response_range"]["kvs"]
            return int(kv["create_revision"])
        found, *more = (r["response_range"] for r in reply["responses"][1:])
        others = [_text(kv["key"]) for kv in found.get("kvs") or [] if _text(kv["key"]) != key]
        revision = int(reply["header"]["revision"])
        count = int(found.get("count", 0)) - 1  # the keys under the prefix, but this one
        values = _values(read, [r.get("kvs") or [] for r in more])
        return Position(
            join.value, min(most, count), next(iter(others), None), revision, revision, values
        )

    def put(self, key: str, value: str, lease: Lease | None = None) -> None:
        self.txn([], [Put(key, value, lease)])

    def delete(self, key: str) -> None:
        self.call(self.client.delete, key)

    def txn(
        self, compare: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> bool:
        body = {
            "compare": [self._compare(c) for c in compare],
            "success": [self._op(op) for op in success],
            "failure": [self._op(op) for op in failure],
        }
        reply = self.call(self.client.transaction, body)
        return bool(reply.get("succeeded", False))

    @staticmethod
    def _compare(c: Compare) -> dict[str, Any]:
        if c.value is None:
            return {"key": _b64(c.key), "result": "EQUAL", "target": "CREATE", "create_revision": 0}
        return {"key": _b64(c.key), "result": "EQUAL", "target": "VALUE", "value": _b64(c.value)}

    @staticmethod
    def _op(op: Op) -> dict[str, Any]:
        if isinstance(op, Delete):
            return {"request_delete_range": {"key": _b64(op.key)}}
        put: dict[str, Any] = {"key": _b64(op.key), "value": _b64(op.value)}
        if op.lease is not None:
            put["lease"] = op.lease.id
        return {"request_put": put}

    def lease(self, ttl: int) -> Lease:
        return EtcdLease(self, self.call(self.client.lease, ttl), ttl)

    def watch(self, *prefixes: Watched, after: int | None = None) -> Watch:
        wanted = {
            p.prefix if isinstance(p, Deletes) else p: isinstance(p, Deletes) for p in prefixes
        }
        with self._streams_lock:
            watch = _EtcdWatch(self._unwatch, after)
            for prefix, deletes in wanted.items():
                stream = self._stream(prefix, after)
                stream.subscribe(watch, prefix, deletes)
                watch.routes.append((stream, prefix))
            return watch

    def _stream(self, prefix: str, after: int | None) -> _Stream:
        """The stream to serve a watch on ``prefix`` from: its own, or the one on the
        prefix it is under (if that one knows every change since ``after``), opened once
        :data:`SHARED_AT` keys under it are streamed one by one."""
        stream = self._streams.get(prefix)
        if stream is not None:
            return stream
        start = None if after is None else after + 1
        parent = _parent(prefix)
        if parent is not None:
            shared = self._streams.get(parent)
            if shared is not None and shared.covers(after):
                return shared
            siblings = [s for p, s in self._streams.items() if _parent(p) == parent]
            if len(siblings) >= SHARED_AT and shared is None:
                # from the oldest change its siblings know (the watches that looked as
                # long ago find what they missed in it), at most KEPT_EVENTS revisions back
                known = [s.kept_from for s in siblings if s.kept_from is not None]
                first = None if start is None else max(min([*known, start]), start - KEPT_EVENTS)
                shared = self._streams[parent] = self._open(parent, first)
                if shared.covers(after):
                    return shared
        stream = self._streams[prefix] = self._open(prefix, start)
        return stream

    def _open(self, prefix: str, start: int | None) -> _Stream:
        stream: _Stream = self.call(_Stream, self.client, prefix, start)
        return stream

    def _unwatch(self, watch: _EtcdWatch) -> None:
        with self._streams_lock:
            for stream, prefix in watch.routes:
                if stream.unsubscribe(watch, prefix) and self._streams.get(stream.prefix) is stream:
                    del self._streams[stream.prefix]
                    stream.cancel()
            watch.routes.clear()

    def close(self) -> None:
        with self._streams_lock:
            for stream in self._streams.values():
                stream.cancel()
            self._streams.clear()
        self.client.session.close()
        self.keepalive.session.close()
