"""The store on etcd v3, through etcd3gw's gRPC-gateway client.

Its URL is ``etcd3+https://[USER@]HOST:PORT?ca_cert=FILE&cert_cert=FILE&cert_key=FILE``
(TLS, a client certificate, an etcd user whose password is in ``EPHYRA_ETCD_PASSWORD`` or
``?password_file=FILE``), or ``etcd3+http://HOST:PORT`` for a plain etcd: see
:mod:`ephyra.etcd`.

A range read is one ``/kv/range`` call; a transaction is one ``/kv/txn``; leases are etcd
leases, renewed over a connection of their own (:attr:`EtcdStore.keepalive`) so that a
renewal never waits behind the updates. One etcd watch per prefix serves every
:class:`Watch` of this store on it, so a thousand agents in one process hold one stream,
not a thousand.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Sequence
from typing import Any

import etcd3gw
import requests

from ephyra.errors import LeaseExpired, StoreError
from ephyra.etcd import EtcdURL, describe
from ephyra.versions.store import Compare, Delete, Lease, Op, Position, Put, Store, Watch

TIMEOUT_S = 10.0
#: A renewal that etcd has not answered in this time is given up and tried again (the
#: lease keeper renews at a third of the TTL, and again at once on a failure).
KEEPALIVE_TIMEOUT_S = 3.0


#: etcd's RangeRequest enums (SortOrder, SortTarget)
ASCEND, DESCEND, BY_CREATE = 1, 2, 2


def _end(prefix: str) -> str:
    """The end of the range of keys under ``prefix`` (its last character plus one)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


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


class _Stream:
    """One etcd watch on a prefix, fanning out to the watches waiting on it."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.subscribers: set[_EtcdWatch] = set()
        self._events, self._cancel = client.watch_prefix(prefix)
        threading.Thread(target=self._pump, name=f"watch {prefix}", daemon=True).start()

    def _pump(self) -> None:
        for _event in self._events:
            for sub in list(self.subscribers):
                sub.changed.set()

    def cancel(self) -> None:
        self._cancel()


class _EtcdWatch(Watch):
    def __init__(self, release: Callable[[_EtcdWatch], None]) -> None:
        self.changed = threading.Event()
        self.changed.set()  # the first wait returns at once: read the state first
        self._release = release

    def wait(self, timeout: float) -> bool:
        fired = self.changed.wait(timeout)
        self.changed.clear()
        return fired

    def cancel(self) -> None:
        self._release(self)


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

    def position(self, prefix: str, key: str, most: int) -> Position | None:
        own = self.call(self.client.get, key, metadata=True)
        if not own:
            return None
        value, meta = own[0]
        under = {
            "key": _b64(prefix),
            "range_end": _b64(_end(prefix)),
            "max_create_revision": int(meta["create_revision"]) - 1,
        }
        # etcd's count ignores the revision filters: the keys are counted by a limit
        first = {**under, "sort_order": ASCEND, "sort_target": BY_CREATE, "limit": most}
        before = {**under, "sort_order": DESCEND, "sort_target": BY_CREATE, "limit": 1}
        body = {
            "compare": [],
            "success": [
                {"request_range": {**first, "keys_only": True}},
                {"request_range": {**before, "keys_only": True}},
            ],
        }
        counted, last = (
            r["response_range"] for r in self.call(self.client.transaction, body)["responses"]
        )
        kvs = last.get("kvs") or []
        return Position(
            value.decode(),
            len(counted.get("kvs") or []),
            base64.b64decode(kvs[0]["key"]).decode() if kvs else None,
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

    def watch(self, *prefixes: str) -> Watch:
        with self._streams_lock:
            watch = _EtcdWatch(lambda w: self._unwatch(prefixes, w))
            for prefix in prefixes:
                stream = self._streams.get(prefix)
                if stream is None:
                    stream = self._streams[prefix] = self.call(_Stream, self.client, prefix)
                stream.subscribers.add(watch)
            return watch

    def _unwatch(self, prefixes: tuple[str, ...], watch: _EtcdWatch) -> None:
        with self._streams_lock:
            for prefix in prefixes:
                stream = self._streams.get(prefix)
                if stream is None:
                    continue
                stream.subscribers.discard(watch)
                if not stream.subscribers:
                    del self._streams[prefix]
                    stream.cancel()

    def close(self) -> None:
        with self._streams_lock:
            for stream in self._streams.values():
                stream.cancel()
            self._streams.clear()
        self.client.session.close()
        self.keepalive.session.close()
