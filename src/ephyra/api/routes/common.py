"""What every router of the API is built with: the server's state (:class:`Context`), the
documented error answers of a route, and the kinds of run installed."""

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from fastapi import Response
from pydantic import BaseModel

from ephyra.api.background import Driven
from ephyra.api.fresh import Fresh
from ephyra.api.guard import Guard
from ephyra.api.metrics import JournalCollector
from ephyra.api.middleware import Streams
from ephyra.engine.kinds import names
from ephyra.operations.local import Local

if TYPE_CHECKING:
    from collections.abc import Callable

    from prometheus_client import CollectorRegistry

    Kind = StrEnum
else:  # the kinds of run installed (entry points ephyra.runs): the paths' {kind}
    Kind = StrEnum("Kind", [(name, name) for name in names()])


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS = {
    400: "bad input",
    401: "no token, or a token this server does not accept",
    403: "the policy does not allow this caller to do this",
    404: "no such run, cloud or thing",
    409: "another run holds the lock, or the run's state forbids it",
    413: "the request's body is larger than the server accepts",
    422: "the request does not match its schema, or the plan was refused",
    429: "this caller holds as many event streams open as the server allows",
    502: "a cloud answered with an error",
    503: "a cloud cannot be reached",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route documents: those of every route with a token, and these."""
    return {s: {"model": ErrorBody, "description": ERRORS[s]} for s in (401, 403, 422, *statuses)}


def json_answer(body: bytes) -> Response:
    """JSON made already (by :class:`ephyra.api.fresh.Fresh`)."""
    return Response(body, media_type="application/json")


@dataclass
class Context:
    """What the routers share: the operations, the token checks and the policy, the runs
    the server drives, the answers kept for pollers, the metrics and the event streams."""

    local: Local
    guard: Guard
    driven: Driven
    fresh: Fresh
    collector: JournalCollector
    registry: "CollectorRegistry"
    streams: Streams
    stopping: "Callable[[], bool]"

    def allowed(self, action: str | None) -> Any:
        """The token check of a route, asking for ``action`` (None: a token only)."""
        return self.guard.allowed(action)
