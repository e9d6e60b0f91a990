"""The HTTP transport to etcd's gRPC gateway: a ``requests`` session whose plain calls go
over kept-alive ``http.client`` connections.

Every etcd call but a watch is one JSON ``POST``. Through ``requests`` and ``urllib3``
such a call costs about 0.6 ms of client CPU; over a kept-alive ``http.client``
connection, about 0.2 ms. A thousand agents in one process, or a fleet of them on one
machine, spend most of their time there, so :class:`GatewaySession` sends those calls
itself and leaves the rest (watches, which stream; the version discovery's ``GET``) to
``requests``. Its certificates are the session's own (``verify``, ``cert``), as
``requests`` reads them; its errors are ``requests``' own, as etcd3gw expects them.

At most :data:`CONNECTIONS` calls of one session are in flight at once; more callers
wait for a connection to come back. A host's agent never makes that many; a thousand
agents sharing one store in one process queue there rather than all at once at etcd
(which answers no faster for it) with a connection each. A connection found closed by
etcd meanwhile (etcd restarted, or dropped it idle) is never reused.
"""

from __future__ import annotations

import http.client
import io
import json
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.util.wait import wait_for_read

#: Calls of one session in flight at once (each over a connection of its own).
CONNECTIONS = 16
#: What a plain call may carry; anything else goes through ``requests``.
PLAIN = frozenset({"json", "data", "timeout", "headers"})

Connection = http.client.HTTPConnection


class GatewaySession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self._idle: dict[str, list[Connection]] = {}
        self._pool_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(CONNECTIONS)
        self._tls: ssl.SSLContext | None = None

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        given = {k for k, v in kwargs.items() if v is not None}
        data = kwargs.get("data")
        if (
            method != "POST"
            or args
            or kwargs.get("stream")
            or not PLAIN.issuperset(given)
            or not isinstance(data, str | bytes | None)
            or (data is not None and kwargs.get("json") is not None)
            or not isinstance(kwargs.get("timeout"), int | float | None)  # (connect, read)
        ):
            return super().request(method, url, *args, **kwargs)
        if data is None:
            data = json.dumps(kwargs.get("json"), allow_nan=False)
        body = data.encode() if isinstance(data, str) else data
        return self._post(str(url), body, kwargs.get("timeout"), kwargs.get("headers") or {})

    def _post(
        self, url: str, body: bytes, timeout: float | None, extra: dict[str, str]
    ) -> requests.Response:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/json", **extra}
        with self._slots:
            conn = self._connection(parts.scheme, parts.netloc, timeout)
            try:
                conn.request("POST", target, body, headers)
                reply = conn.getresponse()
                content = reply.read()
            except TimeoutError as exc:
                conn.close()
                raise requests.exceptions.ReadTimeout(f"{parts.netloc}: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise requests.exceptions.ConnectionError(f"{parts.netloc}: {exc}") from exc
            if reply.will_close:
                conn.close()
            else:
                self._keep(parts.netloc, conn)
        response = requests.Response()
        response.status_code = reply.status
        response.reason = reply.reason
        response._content = content
        response.raw = io.BytesIO(content)  # what closing the reply closes
        response.encoding = "utf-8"
        response.url = url
        return response

    def _connection(self, scheme: str, netloc: str, timeout: float | None) -> Connection:
        with self._pool_lock:
            idle = self._idle.get(netloc, [])
            while idle:
                conn = idle.pop()
                if conn.sock is not None and not wait_for_read(conn.sock, timeout=0.0):
                    conn.sock.settimeout(timeout)
                    return conn
                conn.close()  # closed by etcd meanwhile (or sent what nobody asked for)
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=timeout, context=self._context())
        return http.client.HTTPConnection(netloc, timeout=timeout)

    def _keep(self, netloc: str, conn: Connection) -> None:
        with self._pool_lock:
            self._idle.setdefault(netloc, []).append(conn)

    def _context(self) -> ssl.SSLContext:
        """TLS as ``requests`` would do it with this session's ``verify`` and ``cert``."""
        with self._pool_lock:
            if self._tls is None:
                ca = self.verify if isinstance(self.verify, str) else DEFAULT_CA_BUNDLE_PATH
                context = ssl.create_default_context(cafile=ca)
                if isinstance(self.cert, tuple):
                    context.load_cert_chain(*self.cert)
                elif isinstance(self.cert, str):
                    context.load_cert_chain(self.cert)
                self._tls = context
            return self._tls

    def close(self) -> None:
        with self._pool_lock:
            idle = [conn for conns in self._idle.values() for conn in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()
        super().close()
