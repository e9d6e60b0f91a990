"""The API's side of the audit trail (:mod:`ephyra.engine.audit`): every write
(``POST``, ``PUT``, ``PATCH``, ``DELETE``) that reached a route, allowed or refused, is
recorded once its answer is ready and before its last byte leaves; and
``GET /v1/audit`` reads the trail (policy action ``audit:read``, admins by default).

What a request named is taken from its path (and, for a start, the ``Location`` of the
run it made), never from its body. Each answer to a write carries an ``X-Request-Id``:
the one the server already gave it (a header, or ``request_id`` in the request's
state), else one made here.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import sqlalchemy as sa
from fastapi import FastAPI, Query, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ephyra.api.policy import Identity
from ephyra.engine import audit
from ephyra.operations.local import Local

LOG = logging.getLogger(__name__)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = b"x-request-id"
#: Where a route's policy check leaves the action and the caller, in the request's state.
ACTION, IDENTITY = "audit_action", "audit_identity"
#: Of an error answer, at most this much is read for its code.
ERROR_BODY = 64 * 1024
RUN_LOCATION = "/v1/runs/"


def note(request: Request, action: str | None, who: Identity | None = None) -> None:
    """Called by the policy check of every route: the action asked for and, once known,
    the caller (a refused token leaves none)."""
    request.scope.setdefault("state", {})[ACTION] = action
    if who is not None:
        request.scope["state"][IDENTITY] = who


def install(
    app: FastAPI,
    local: Local,
    allowed: Callable[[str], Any],
    responses: dict[int | str, dict[str, Any]],
) -> None:
    """Record every write of ``app`` in ``local``'s journal; add ``GET /v1/audit``."""
    app.add_middleware(AuditTrail, engine=lambda: local.journal.engine)

    @app.get(
        "/v1/audit",
        tags=["audit"],
        responses=responses,
        dependencies=[allowed("audit:read")],
    )
    def read_audit(
        limit: Annotated[int, Query(ge=1, le=audit.MAX_READ)] = 100,
        after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    ) -> dict[str, Any]:
        """Who did what: every write through the API (refused ones too) and the command
        line, oldest first; the latest ``limit``, or the ``limit`` after ``after`` (a
        ``seq``)."""
        return {"entries": audit.read(local.journal.engine, limit, after)}


@dataclass
class _Answer:
    status: int = 500
    location: str = ""
    request_id: str = ""
    body: bytearray = field(default_factory=bytearray)
    recorded: bool = False

    def started(self, message: Message, state: dict[str, Any]) -> None:
        self.status = int(message["status"])
        headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
        for name, value in headers:
            if name.lower() == HEADER:
                self.request_id = value.decode("latin-1")
            elif name.lower() == b"location":
                self.location = value.decode("latin-1")
        if not self.request_id:
            self.request_id = str(state.get("request_id") or uuid.uuid4().hex)
            headers.append((HEADER, self.request_id.encode("latin-1")))
            message["headers"] = headers

    def code(self) -> str:
        if self.status < 400:
            return ""
        try:
            return str(json.loads(bytes(self.body))["error"]["code"])
        except (ValueError, KeyError, TypeError):
            return f"http_{self.status}"


class AuditTrail:
    """Pure ASGI middleware recording every write that reached a route's policy check."""

    def __init__(self, app: ASGIApp, engine: Callable[[], sa.Engine]) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        answer = _Answer()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.started(message, state)
            elif message["type"] == "http.response.body":
                if answer.status >= 400 and len(answer.body) < ERROR_BODY:
                    answer.body += message.get("body", b"")[:ERROR_BODY]
                if not message.get("more_body", False) and not answer.recorded:
                    await self._record(scope, state, answer)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if not answer.recorded:  # no answer went out: the server's 500
                answer.status, answer.body = 500, bytearray(b'{"error":{"code":"internal"}}')
                await self._record(scope, state, answer)
            raise

    async def _record(self, scope: Scope, state: dict[str, Any], answer: _Answer) -> None:
        answer.recorded = True
        if ACTION not in state or state[ACTION] is None:
            return  # no route, or one without a policy action: nothing was asked
        who: Identity | None = state.get(IDENTITY)
        entry = audit.Entry(
            source="api",
            user=who.user if who else "",
            project=who.project if who else "",
            domain=who.domain if who else "",
            roles=who.roles if who else (),
            action=str(state[ACTION]),
            target=target(scope, answer.location),
            status=answer.status,
            code=answer.code(),
            request_id=answer.request_id[:64],
        )
        try:
            await anyio.to_thread.run_sync(audit.record, self.engine(), entry)
        except Exception as exc:  # the answer stands; the operator sees the loss
            LOG.error(
                "audit: cannot record %s %s (request %s): %s",
                entry.action,
                entry.target,
                entry.request_id,
                type(exc).__name__,
            )


def target(scope: Scope, location: str) -> str:
    """What a request named: its path's parameters (``forklift/RUN``, a host, an
    environment and node); the run a start made; else the path's first part after
    ``/v1`` (``forklift``, ``versions``, ``clusters``)."""
    parts = [str(v) for v in (scope.get("path_params") or {}).values()]
    segments = [s for s in str(scope.get("path", "")).split("/") if s]
    head = segments[1] if len(segments) > 1 and segments[0] == "v1" else ""
    if location.startswith(RUN_LOCATION):
        return f"{head}/{location.removeprefix(RUN_LOCATION)}"
    return "/".join(parts) or head
