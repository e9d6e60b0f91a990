"""Paste filter for nova-api in place of Keystone: the token names the caller.

Nova 34 has no ``noauth2`` pipeline any more, only the Keystone one. This filter stands
where ``keystonemiddleware.auth_token`` would: a token ``user:project`` becomes the
``X-User-Id``, ``X-Project-Id`` and ``X-Roles`` headers that Nova's own ``keystonecontext``
filter turns into a request context. User ``admin`` gets ``admin,member,reader``, any other
user ``member,reader``; a request may set ``X-Roles`` itself. A token without ``:`` is both
user and project. No token: 401, except for the version document at ``/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

ADMIN_ROLES = "admin,member,reader"
MEMBER_ROLES = "member,reader"


def identity(token: str) -> tuple[str, str, str]:
    """(user, project, roles) that ``token`` stands for."""
    user, _sep, project = token.partition(":")
    return user, project or user, ADMIN_ROLES if user == "admin" else MEMBER_ROLES


def authenticate(environ: WSGIEnvironment, token: str) -> None:
    """Keystone's identity headers of the user ``token`` stands for, in ``environ``."""
    user, project, roles = identity(token)
    environ["HTTP_X_USER_ID"] = environ["HTTP_X_USER_NAME"] = user
    environ["HTTP_X_PROJECT_ID"] = environ["HTTP_X_PROJECT_NAME"] = project
    environ["HTTP_X_USER_DOMAIN_ID"] = environ["HTTP_X_PROJECT_DOMAIN_ID"] = "default"
    environ["HTTP_X_IDENTITY_STATUS"] = "Confirmed"
    environ.setdefault("HTTP_X_ROLES", roles)


class NoAuth:
    """WSGI middleware: ``X-Auth-Token: user:project`` -> Keystone's identity headers."""

    def __init__(self, application: WSGIApplication) -> None:
        self.application = application

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "/") in ("", "/"):
            return self.application(environ, start_response)
        token = environ.get("HTTP_X_AUTH_TOKEN")
        if not token:
            body = json.dumps({"error": {"code": 401, "message": "token required"}}).encode()
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            start_response("401 Unauthorized", headers)
            return [body]
        authenticate(environ, str(token))
        return self.application(environ, start_response)


def filter_factory(
    global_conf: dict[str, Any], **local_conf: Any
) -> Callable[[WSGIApplication], NoAuth]:
    """Paste Deploy entry point (``paste.filter_factory = testbed.nova_noauth:filter_factory``)."""
    return NoAuth
