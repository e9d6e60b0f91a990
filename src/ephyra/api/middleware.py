"""The management panel's pure ASGI middleware and error answers: a request id for every
request, timing by route, bodies identified before they are read and held to a limit,
and event streams counted per caller."""

from __future__ import annotations

import contextvars
import logging
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ephyra.api import metrics
from ephyra.api.policy import Identity
from ephyra.errors import BodyTooLarge, EphyraError
from ephyra.operations.codes import body as error_body
from ephyra.operations.codes import public
from ephyra.urls import redact_text

LOG = logging.getLogger(__name__)
REQUEST_ID = "x-request-id"
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def current_request_id() -> str:
    """The id of the request being answered ('-' outside one)."""
    return _request_id.get()


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """An error answer of the current request (its id in the body and ``X-Request-Id``)."""
    request_id = _request_id.get()
    return JSONResponse(
        error_body(code, message, request_id),
        status_code=status,
        headers={"X-Request-Id": request_id},
    )


def internal_error(exc: Exception) -> JSONResponse:
    """The answer to an unexpected exception: a fixed message; the detail goes to the log."""
    request_id = _request_id.get()
    detail = redact_text("".join(traceback.format_exception(exc)))
    LOG.error("request %s: unexpected error\n%s", request_id, detail)
    status, code, message = public(exc, request_id)
    return error_response(status, code, message)


class RequestIds:
    """Pure ASGI middleware giving every request an id of its own: in ``X-Request-Id`` of the
    answer, in the body of an error answer and in the server's log lines about it. An
    exception that escapes the app is answered (a fixed message) and logged, redacted,
    here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req-{uuid.uuid4()}"
        _request_id.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id  # the audit trail's too
        started = [False]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
                headers = list(message.get("headers", []))
                if not any(name.lower() == REQUEST_ID.encode() for name, _ in headers):
                    headers.append((REQUEST_ID.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started[0]:
                raise
            await internal_error(exc)(scope, receive, sending)


class Metrics:
    """Pure ASGI middleware timing every request by its route (cheap on the hot path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "other")
            if not path.endswith("/stream"):  # a stream lasts as long as its reader
                metrics.observe(scope["method"], path, status[0], time.perf_counter() - started)


#: Methods whose requests carry a body: the token is checked before it is read.
WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Where the body guard leaves the caller it identified, for the routes' token check.
IDENTITY = "ephyra.identity"


class BodyGuard:
    """Pure ASGI middleware: a request that may carry a body is identified first (no
    token, or a bad one: 401, and the body is not read), then its body is held to the
    limit: a Content-Length over it is refused with 413 unread; a chunked body is
    counted as it comes and refused with 413 at the limit. Nothing larger than the
    limit is ever held in memory."""

    def __init__(
        self,
        app: ASGIApp,
        identify: Callable[[Request], Awaitable[Identity]],
        limit: int,
        refused: Callable[[Scope], None] = lambda scope: None,
        open_route: Callable[[Scope], bool] = lambda scope: False,
    ) -> None:
        self.app = app
        self.identify = identify
        self.limit = limit
        self.refused = refused  # told of a request refused before its route ran
        self.open_route = open_route  # whether a request's route needs no token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            await self.app(scope, receive, send)
            return
        try:
            if not self.open_route(scope):
                scope[IDENTITY] = await self.identify(Request(scope))
        except EphyraError as exc:
            self.refused(scope)
            await _unread(exc, scope, receive, send)
            return
        body = await self.body(scope, receive)
        if body is None:
            self.refused(scope)
            too_large = BodyTooLarge(f"the request's body is over {self.limit} bytes")
            await _unread(too_large, scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when it is over the limit (read no further)."""
        declared = Request(scope).headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _unread(exc: EphyraError, scope: Scope, receive: Receive, send: Send) -> None:
    """The error answer to a request whose body is left unread; the connection closes
    after it (what is left of the body is not read either)."""
    if isinstance(exc, BodyTooLarge):
        status, code, message = 413, "body_too_large", str(exc)
    else:
        status, code, message = public(exc, _request_id.get())
    answer = error_response(status, code, message)
    answer.headers["Connection"] = "close"
    await answer(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives ``body`` once, then what the connection says (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class Streams:
    """The event streams each caller (its user and project) holds open, held to a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[tuple[str, str], int] = {}

    def take(self, who: Identity) -> Callable[[], None] | None:
        """One stream more for ``who`` and what gives it back; None when at the limit."""
        key = (who.user, who.project)
        if self.open.get(key, 0) >= self.limit:
            return None
        self.open[key] = self.open.get(key, 0) + 1

        def give_back() -> None:
            left = self.open.get(key, 0) - 1
            if left > 0:
                self.open[key] = left
            else:
                self.open.pop(key, None)

        return give_back


class CountedStream(StreamingResponse):
    """An event stream that gives its place back when it ends, however it ends."""

    def __init__(self, *args: Any, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()
