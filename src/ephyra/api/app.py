"""The management panel's HTTP API (``ephyra serve``): every operation of the command
line, with the same answers, behind a token and the policy of :mod:`ephyra.api.policy`.

Errors are JSON, ``{"error": {"code": ..., "message": ..., "request_id": ...}}``, with a code
that does not change between releases (see :mod:`ephyra.operations.codes`); every answer
names its request in ``X-Request-Id``, under which the server logs the detail of a failure.
The OpenAPI document is served at ``/openapi.json`` and kept in the repository as
``docs/openapi.json``.

The routes are one router per capability (:mod:`ephyra.api.routes`); the runs' routes come
from the registry of run kinds.
"""

import copy
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from ephyra import __version__
from ephyra.api import audit as audit_trail
from ephyra.api import handlers, metrics
from ephyra.api.auth import Authenticator
from ephyra.api.background import Driven
from ephyra.api.config import ServeConfig
from ephyra.api.fresh import Fresh
from ephyra.api.guard import Guard, document_actions, is_open, noted
from ephyra.api.middleware import BodyGuard, Metrics, RequestIds, Streams
from ephyra.api.policy import Policy
from ephyra.api.routes import (
    approvals,
    dashboard,
    environments,
    hosts,
    inventory,
    runs,
    server,
    tenants,
    versions,
)
from ephyra.api.routes.common import Context, errors
from ephyra.engine.kinds import registered
from ephyra.operations.local import Local

DESCRIPTION = (
    "Upgrade OpenStack clouds with as little downtime and risk as possible. Every "
    "route but /healthz and DELETE /v1/session (log out) needs a token (X-Auth-Token, "
    "or Authorization: Bearer); errors are {error: {code, message, request_id}}, "
    "and X-Request-Id names every request."
)


def create_app(
    local: Local,
    authenticator: Authenticator,
    policy: Policy,
    *,
    config: ServeConfig | None = None,
    stop_timeout: float = 60.0,
    stopping: Callable[[], bool] = lambda: False,
) -> FastAPI:
    """The app; ``stopping`` tells event streams the server is shutting down (they end,
    so that it need not wait for their readers); ``config`` gives the limits."""
    limits = (config or ServeConfig()).limits
    driven = Driven(local)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        local.journal  # noqa: B018  (opened before the first request, not during one)
        yield
        await anyio.to_thread.run_sync(driven.stop, stop_timeout)

    app = FastAPI(
        title="Ephyra",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by the server's router, behind a token like the rest
    )
    guard = Guard(authenticator, policy)
    ctx = context(local, guard, driven, limits.streams_per_caller, stopping)
    routes: list[BaseRoute] = []  # every route, in the order a request is matched
    app.add_middleware(
        BodyGuard,
        identify=guard.identify,
        limit=limits.body_bytes,
        refused=lambda s: noted(routes, s),
        open_route=lambda s: is_open(routes, s),
    )
    app.add_middleware(Metrics)  # outside the guard: it times refusals too
    audit_trail.install(app, local, guard.allowed, errors())  # the audit trail of every write
    app.add_middleware(RequestIds)  # outermost: every answer, refusals too, gets an id
    handlers.install(app)
    routes.extend(app.routes)
    for router in routers(ctx):
        routes.extend(router.routes)
        app.include_router(router)
    document_actions(routes)
    app.state.routes = routes  # FastAPI includes routers lazily: app.routes does not list them
    polled_first(app, routes)
    return app


def polled_first(app: FastAPI, routes: Iterable[BaseRoute]) -> None:
    """The reads pollers send many times a second (:data:`runs.POLLED`) are matched
    first, as routes of the app itself: FastAPI tries the routes in turn, each router's
    twice (whether one of its routes matches, then which), so a status was matched
    after 20 others, a quarter of the CPU time of its answer. The same routes (copies
    outside the OpenAPI document), in the same order among themselves; no route before
    them answers their paths."""
    first = []
    for route in routes:
        if (
            isinstance(route, APIRoute)
            and (route.path, frozenset(route.methods or ())) in runs.POLLED
        ):
            polled = copy.copy(route)
            polled.include_in_schema = False
            first.append(polled)
    app.router.routes[0:0] = first


def context(
    local: Local,
    guard: Guard,
    driven: Driven,
    streams_per_caller: int,
    stopping: Callable[[], bool] = lambda: False,
) -> Context:
    """What the routers share: the journal's metrics and the answers kept for pollers."""
    collector = metrics.JournalCollector(local)
    return Context(
        local=local,
        guard=guard,
        driven=driven,
        fresh=Fresh(metrics.FRESH),
        collector=collector,
        registry=metrics.registry(collector),
        streams=Streams(streams_per_caller),
        stopping=stopping,
    )


def routers(ctx: Context) -> list[APIRouter]:
    """One router per capability, in the order of the OpenAPI document; the runs' from
    the registry of run kinds."""
    kinds = [runs.kind_router(ctx, kind) for kind in registered()]
    rest = [c.router(ctx) for c in (hosts, inventory, versions, environments, tenants, dashboard)]
    upgrade = [approvals.router(ctx)] if "upgrade" in {k.name for k in registered()} else []
    return [server.router(ctx), runs.router(ctx), runs.actions(ctx), *kinds, *upgrade, *rest]
