"""Paste filter for cinder-api in place of Keystone: :mod:`testbed.nova_noauth`, plus the
service token and the version document.

- **Service token.** keystonemiddleware turns a valid ``X-Service-Token`` into the
  ``X-Service-*`` headers, and Cinder lets a service (a service token with role
  ``service``, ``[keystone_authtoken] service_token_roles``) do what a user may not:
  delete the attachment of a volume a server uses, as Nova does when it swaps or detaches
  a volume (Cinder refuses the user otherwise, bug #2004555). Here a service token
  ``user:project`` (Nova sends the testbed's admin token as its service token) stands for
  that user with the roles of :func:`testbed.nova_noauth.identity` and ``service``.
- **Version document.** Cinder's v3 document (``GET /v3/``) is served behind the
  authentication, as with keystonemiddleware: keystoneauth, and so openstacksdk, reads it
  with the caller's token before it uses the endpoint (it learns the microversions
  there). Nova's filter lets the root through untouched, which Cinder's context filter
  then refuses (no user): this one names the caller there too when a token comes with it.

Without a token it is Nova's filter: 401, except for the root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from testbed.nova_noauth import NoAuth, authenticate, identity

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

#: The role Cinder recognises a service by (its ``service_token_roles`` default).
SERVICE_ROLE = "service"


class CinderNoAuth(NoAuth):
    """``X-Auth-Token`` and ``X-Service-Token`` (``user:project``) -> Keystone's identity
    headers, on every path."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        for header in [key for key in environ if key.startswith("HTTP_X_SERVICE_")]:
            if header != "HTTP_X_SERVICE_TOKEN":  # only a service token names a service
                del environ[header]
        service = environ.get("HTTP_X_SERVICE_TOKEN")
        if service:
            user, project, roles = identity(str(service))
            environ["HTTP_X_SERVICE_USER_ID"] = environ["HTTP_X_SERVICE_USER_NAME"] = user
            environ["HTTP_X_SERVICE_PROJECT_ID"] = environ["HTTP_X_SERVICE_PROJECT_NAME"] = project
            environ["HTTP_X_SERVICE_USER_DOMAIN_ID"] = "default"
            environ["HTTP_X_SERVICE_PROJECT_DOMAIN_ID"] = "default"
            environ["HTTP_X_SERVICE_ROLES"] = f"{SERVICE_ROLE},{roles}"
            environ["HTTP_X_SERVICE_IDENTITY_STATUS"] = "Confirmed"
        token = environ.get("HTTP_X_AUTH_TOKEN")
        if token and environ.get("PATH_INFO", "/") in ("", "/"):
            authenticate(environ, str(token))
            return self.application(environ, start_response)
        return super().__call__(environ, start_response)


def filter_factory(
    global_conf: dict[str, Any], **local_conf: Any
) -> Callable[[WSGIApplication], CinderNoAuth]:
    """Paste Deploy entry point (``testbed.cinder_noauth:filter_factory``)."""
    return CinderNoAuth
