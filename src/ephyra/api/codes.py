"""The API's error codes: which error is which HTTP status and stable code, both ways
(the server answers with them; ``ephyra --url`` raises the same error again)."""

from __future__ import annotations

from typing import NoReturn

from ephyra.errors import (
    CloudError,
    CloudNotFound,
    ControlPlaneUnreachable,
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
    (ControlPlaneUnreachable, 503, "cloud_unreachable"),
    (CloudError, 502, "cloud_error"),
    (EphyraError, 500, "failed"),
]
#: Codes the server gives outside that table.
OTHERS = {"invalid_request": UsageError, "not_found": UsageError, "method_not_allowed": UsageError}


def classify(exc: Exception) -> tuple[int, str]:
    for cls, status, code in CODES:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal"


def raise_for(status: int, error: tuple[str, str]) -> NoReturn:
    """Raise the error the server's answer stands for."""
    code, message = error
    for cls, _, known in CODES:
        if code == known:
            raise cls(message)
    raise OTHERS.get(code, EphyraError)(f"{message} (HTTP {status})")
