"""The API's error codes: which error is which HTTP status and stable code, both ways
(the server answers with them; ``ephyra --url`` raises the same error again), and what an
error answer may tell its caller.

An error answer is ``{"error": {"code", "message", "request_id"}}``. Its message never holds a
credential (every ``scheme://user:password@`` is redacted) nor an unexpected exception's text:
those answer a fixed message naming the request id, under which the server logs the detail.
"""

from __future__ import annotations

from typing import NoReturn

from ephyra.errors import (
    BackendError,
    CloudAuthFailed,
    CloudError,
    CloudNotFound,
    CloudTimeout,
    ControlPlaneUnreachable,
    EndpointMissing,
    EnvironmentNotFound,
    EphyraError,
    IllegalTransition,
    LockHeld,
    NotAllowed,
    NotAuthenticated,
    PlanRefused,
    PluginError,
    RunNotFound,
    SecretsUnavailable,
    UsageError,
)
from ephyra.urls import redact_text

#: Error class -> HTTP status and code; the first match wins. Codes never change.
CODES: list[tuple[type[EphyraError], int, str]] = [
    (NotAuthenticated, 401, "unauthorized"),
    (NotAllowed, 403, "forbidden"),
    (RunNotFound, 404, "run_not_found"),
    (CloudNotFound, 404, "cloud_not_found"),
    (EnvironmentNotFound, 404, "environment_not_found"),
    (IllegalTransition, 409, "illegal_transition"),
    (LockHeld, 409, "lock_held"),
    (PlanRefused, 422, "plan_refused"),
    (SecretsUnavailable, 422, "secrets_unavailable"),
    (PluginError, 400, "plugin_error"),
    (UsageError, 400, "bad_request"),
    (CloudTimeout, 504, "cloud_timeout"),
    (ControlPlaneUnreachable, 503, "cloud_unreachable"),
    (CloudAuthFailed, 502, "cloud_auth_failed"),
    (EndpointMissing, 502, "endpoint_missing"),
    (CloudError, 502, "cloud_error"),
    (BackendError, 503, "backend_unavailable"),
    (EphyraError, 500, "failed"),
]
#: Codes the server gives outside that table.
OTHERS = {"invalid_request": UsageError, "not_found": UsageError, "method_not_allowed": UsageError}


def classify(exc: Exception) -> tuple[int, str]:
    for cls, status, code in CODES:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal"


#: The most of an Ephyra error's message a caller sees.
MESSAGE_MAX = 2000
INTERNAL = "internal error; see the server log, request id {request_id}"


def public(exc: Exception, request_id: str) -> tuple[int, str, str]:
    """Status, code and message an error may be answered with: an Ephyra error's own
    message, redacted and cut short; for any other exception, a fixed message."""
    status, code = classify(exc)
    if not isinstance(exc, EphyraError):
        return status, code, INTERNAL.format(request_id=request_id)
    message = redact_text(str(exc))
    if len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 3] + "..."
    return status, code, message


def body(code: str, message: str, request_id: str) -> dict[str, dict[str, str]]:
    """The JSON body of an error answer (the message redacted once more)."""
    return {"error": {"code": code, "message": redact_text(message), "request_id": request_id}}


def raise_for(status: int, error: tuple[str, str]) -> NoReturn:
    """Raise the error the server's answer stands for."""
    code, message = error
    for cls, _, known in CODES:
        if code == known:
            raise cls(message)
    raise OTHERS.get(code, EphyraError)(f"{message} (HTTP {status})")
