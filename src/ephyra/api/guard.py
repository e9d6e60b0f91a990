"""The token check of every route, and the policy action it asks for.

A route depends on a :class:`Need`: it identifies the caller (a token in ``X-Auth-Token``,
``Authorization: Bearer``, or the dashboard's cookie) and asks the policy whether the caller
may do the route's action. The action is also what the OpenAPI document names
(``x-ephyra-action``) and what the audit trail records, even for a request refused before
its route ran.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from ephyra.api import audit as audit_trail
from ephyra.api.auth import Authenticator, KeystoneTokens
from ephyra.api.middleware import IDENTITY
from ephyra.api.policy import Identity, Policy
from ephyra.errors import NotAllowed, NotAuthenticated

COOKIE = "ephyra_token"
#: A browser's request that changes something carries this header besides the cookie (a
#: page of another origin cannot send it without the server's consent).
SESSION_HEADER = "x-ephyra-session"


def token_of(request: Request) -> str | None:
    """The token a request carries: a header, else (for a browser) the session cookie."""
    token = request.headers.get("x-auth-token")
    if not token:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    if not token and (request.method in ("GET", "HEAD") or SESSION_HEADER in request.headers):
        token = request.cookies.get(COOKIE)  # a browser's page, event stream or action
    return token or None


class Guard:
    """Who a request comes from, and what the policy lets it do."""

    def __init__(self, authenticator: Authenticator, policy: Policy) -> None:
        self.authenticator = authenticator
        self.policy = policy

    async def identify(self, request: Request) -> Identity:
        known = request.scope.get(IDENTITY)
        if isinstance(known, Identity):  # identified by the body guard already
            return known
        token = token_of(request)
        if token is None:
            raise NotAuthenticated("no token: send X-Auth-Token or Authorization: Bearer")
        authenticator = self.authenticator
        if isinstance(authenticator, KeystoneTokens):
            hit = authenticator.cached(token)
            if hit is not None:
                return hit
            return await anyio.to_thread.run_sync(authenticator.identify, token)
        return authenticator.identify(token)

    def allowed(self, action: str | None) -> Any:
        """The dependency of a route that needs a token, and ``action`` if one is named."""
        return Depends(Need(self, action))


class Need:
    """The token check of a route, and the policy's action it asks for (if any)."""

    def __init__(self, guard: Guard, action: str | None) -> None:
        self.guard = guard
        self.action = action

    async def __call__(self, request: Request) -> Identity:
        audit_trail.note(request, self.action)
        who = await self.guard.identify(request)
        audit_trail.note(request, self.action, who)
        if self.action is not None and not self.guard.policy.allows(self.action, who):
            raise NotAllowed(
                f"{who.user} ({', '.join(who.roles) or 'no role'}) may not {self.action}"
            )
        return who


def token_checks(route: APIRoute) -> list[Any]:
    """The token checks a route depends on (each with the policy action it asks for)."""
    return [d.call for d in route.dependant.dependencies if isinstance(d.call, Need)]


def action_of(route: APIRoute) -> str | None:
    """The policy action a route's token check asks for (None: a token only)."""
    actions = {c.action for c in token_checks(route)} - {None}
    if not actions:
        return None
    (action,) = actions
    return str(action)


def route_of(routes: Iterable[BaseRoute], scope: Scope) -> tuple[APIRoute, Scope] | None:
    """The route a request would reach, and what it adds to the request's scope."""
    for route in routes:
        if isinstance(route, APIRoute):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return route, child
    return None


def document_actions(routes: Iterable[BaseRoute]) -> None:
    """Each operation of the OpenAPI document names the policy action it asks for
    (``x-ephyra-action``), from the token check its route depends on."""
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        action = action_of(route)
        if action is not None:
            route.openapi_extra = {**(route.openapi_extra or {}), "x-ephyra-action": action}


def noted(routes: Iterable[BaseRoute], scope: Scope) -> None:
    """For the audit trail, what a request refused before its route ran asked for: the
    route it would have reached, with its path's parameters, and that route's action."""
    found = route_of(routes, scope)
    if found is not None:
        route, child = found
        scope.update(child)
        audit_trail.note(Request(scope), action_of(route))


def is_open(routes: Iterable[BaseRoute], scope: Scope) -> bool:
    """Whether a request reaches a route that needs no token (logging out)."""
    found = route_of(routes, scope)
    return found is not None and not token_checks(found[0])
