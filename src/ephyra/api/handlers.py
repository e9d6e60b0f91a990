"""Errors as the API answers them: ``{"error": {"code", "message", "request_id"}}``, with
the stable code of :mod:`ephyra.operations.codes`; a failure's detail goes to the server's
log under the request id, never to the caller."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ephyra.api.middleware import current_request_id, error_response, internal_error
from ephyra.errors import EphyraError
from ephyra.operations.codes import public
from ephyra.urls import redact_text

LOG = logging.getLogger(__name__)


async def on_ephyra(_request: Request, exc: EphyraError) -> JSONResponse:
    status, code, message = public(exc, current_request_id())
    if status >= 500:
        LOG.error("request %s failed: %s", current_request_id(), redact_text(str(exc)))
    else:
        LOG.info("request %s refused (%s): %s", current_request_id(), code, message)
    return error_response(status, code, message)


async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
    parts = [
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()
    ]
    return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")


async def on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def on_other(_request: Request, exc: Exception) -> JSONResponse:
    return internal_error(exc)


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as the API does."""
    app.add_exception_handler(EphyraError, on_ephyra)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_other)
