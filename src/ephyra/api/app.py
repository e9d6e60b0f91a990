"""The management panel's HTTP API (``ephyra serve``): every operation of the command
line, with the same answers, behind a token and the policy of :mod:`ephyra.api.policy`.

Errors are JSON, ``{"error": {"code": ..., "message": ..., "request_id": ...}}``, with a code
that does not change between releases (see :mod:`ephyra.operations.codes`); every answer names its
request in ``X-Request-Id``, under which the server logs the detail of a failure. The
OpenAPI document is served at ``/openapi.json`` and kept in the repository as
``docs/openapi.json``.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi import Path as FastPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from ephyra import __version__
from ephyra.api import audit as audit_trail
from ephyra.api import metrics
from ephyra.api.auth import Authenticator, KeystoneTokens
from ephyra.api.background import Driven
from ephyra.api.config import ServeConfig
from ephyra.api.fresh import Fresh
from ephyra.api.middleware import (
    IDENTITY,
    BodyGuard,
    CountedStream,
    Metrics,
    RequestIds,
    Streams,
    current_request_id,
    error_response,
    internal_error,
)
from ephyra.api.policy import Identity, Policy
from ephyra.engine import events
from ephyra.engine.kinds import names, registered
from ephyra.errors import EphyraError, NotAllowed, NotAuthenticated
from ephyra.names import NAME, VERSION
from ephyra.netscheme.model import Environment
from ephyra.netscheme.serializers import Mode
from ephyra.operations.bodies import EnvUpgradeBody, MaintenanceBody, TriggerBody, VerifyBody
from ephyra.operations.codes import public
from ephyra.operations.local import Local
from ephyra.urls import redact_text

LOG = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
COOKIE = "ephyra_token"
#: A browser's request that changes something carries this header besides the cookie (a
#: page of another origin cannot send it without the server's consent).
SESSION_HEADER = "x-ephyra-session"
#: How often an event stream looks for new events, and sends a keep-alive comment.
STREAM_POLL = 0.25
KEEPALIVE = 15.0


if TYPE_CHECKING:
    Kind = StrEnum
else:  # the kinds of run installed (entry points ephyra.runs): the paths' {kind}
    Kind = StrEnum("Kind", [(name, name) for name in names()])


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str


class ErrorBody(BaseModel):
    error: ErrorDetail


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {
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
    return {s: {"model": ErrorBody, "description": text[s]} for s in (401, 403, 422, *statuses)}


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _token(request: Request) -> str | None:
    token = request.headers.get("x-auth-token")
    if not token:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    if not token and (request.method in ("GET", "HEAD") or SESSION_HEADER in request.headers):
        token = request.cookies.get(COOKIE)  # a browser's page, event stream or action
    return token or None


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
    streams = Streams(limits.streams_per_caller)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        local.journal  # noqa: B018  (opened before the first request, not during one)
        yield
        await anyio.to_thread.run_sync(driven.stop, stop_timeout)

    app = FastAPI(
        title="Ephyra",
        version=__version__,
        description=(
            "Upgrade OpenStack clouds with as little downtime and risk as possible. Every "
            "route but /healthz and DELETE /v1/session (log out) needs a token (X-Auth-Token, "
            "or Authorization: Bearer); errors are {error: {code, message, request_id}}, "
            "and X-Request-Id names every request."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind a token like the rest
    )
    collector = metrics.JournalCollector(local)
    fresh = Fresh(metrics.FRESH)
    registry = metrics.registry(collector)

    async def identify(request: Request) -> Identity:
        known = request.scope.get(IDENTITY)
        if isinstance(known, Identity):  # identified by the body guard already
            return known
        token = _token(request)
        if token is None:
            raise NotAuthenticated("no token: send X-Auth-Token or Authorization: Bearer")
        if isinstance(authenticator, KeystoneTokens):
            hit = authenticator.cached(token)
            if hit is not None:
                return hit
            return await anyio.to_thread.run_sync(authenticator.identify, token)
        return authenticator.identify(token)

    class Need:
        """The token check of a route, and the policy's action it asks for (if any)."""

        def __init__(self, action: str | None) -> None:
            self.action = action

        async def __call__(self, request: Request) -> Identity:
            audit_trail.note(request, self.action)
            who = await identify(request)
            audit_trail.note(request, self.action, who)
            if self.action is not None and not policy.allows(self.action, who):
                raise NotAllowed(
                    f"{who.user} ({', '.join(who.roles) or 'no role'}) may not {self.action}"
                )
            return who

    Who = Annotated[Identity, Depends(Need(None))]
    app.add_middleware(
        BodyGuard,
        identify=identify,
        limit=limits.body_bytes,
        refused=lambda s: _noted(app, s),
        open_route=lambda s: _open(app, s),
    )
    app.add_middleware(Metrics)  # outside the guard: it times refusals too

    def allowed(action: str) -> Any:
        return Depends(Need(action))

    audit_trail.install(app, local, allowed, _errors())  # the audit trail of every write
    app.add_middleware(RequestIds)  # outermost: every answer, refusals too, gets an id

    # -- errors ------------------------------------------------------------------
    @app.exception_handler(EphyraError)
    async def on_ephyra(_request: Request, exc: EphyraError) -> JSONResponse:
        status, code, message = public(exc, current_request_id())
        if status >= 500:
            LOG.error("request %s failed: %s", current_request_id(), redact_text(str(exc)))
        else:
            LOG.info("request %s refused (%s): %s", current_request_id(), code, message)
        return error_response(status, code, message)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        ]
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def on_other(_request: Request, exc: Exception) -> JSONResponse:
        return internal_error(exc)

    # -- health, identity ----------------------------------------------------------
    @app.get("/healthz", tags=["server"], summary="liveness (no token needed)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_who: Who) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/v1/whoami", tags=["server"], responses=_errors())
    async def whoami(who: Who) -> dict[str, Any]:
        """The caller, its roles, and what the policy lets it do."""
        return {
            "user": who.user,
            "project": who.project,
            "roles": list(who.roles),
            "allowed": policy.allowed(who),
        }

    @app.post("/v1/session", tags=["server"], responses=_errors())
    async def open_session(who: Who, request: Request, response: Response) -> dict[str, Any]:
        """The dashboard's log in: the token of the header (X-Auth-Token or Authorization:
        Bearer) comes back as a cookie scripts cannot read (HttpOnly, SameSite=Strict, and
        Secure under TLS); a change through it needs the X-Ephyra-Session header too."""
        response.set_cookie(
            COOKIE,
            _token(request) or "",
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return {"user": who.user, "project": who.project, "roles": list(who.roles)}

    @app.delete("/v1/session", tags=["server"], status_code=204, response_class=Response)
    async def close_session(request: Request) -> Response:
        """Log out: the dashboard's cookie is deleted (no token needed)."""
        response = Response(status_code=204)
        response.delete_cookie(
            COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return response

    @app.get(
        "/metrics",
        tags=["server"],
        responses=_errors(),
        response_class=Response,
        dependencies=[allowed("metrics:read")],
    )
    def prometheus() -> Response:
        """Prometheus metrics: runs by state, progress, step durations, API latency."""
        body, content_type = metrics.exposition(registry)
        return Response(body, media_type=content_type)

    @app.get("/v1/clouds", tags=["server"], responses=_errors(), dependencies=[allowed("run:list")])
    def clouds() -> dict[str, list[str]]:
        """The clouds of the server's clouds.yaml, by name."""
        return {"clouds": local.clouds()}

    # -- runs of every kind ----------------------------------------------------------
    @app.get("/v1/runs", tags=["runs"], responses=_errors(), dependencies=[allowed("run:list")])
    async def list_runs(kind: Kind | None = None) -> Response:
        """Every run (or every run of one kind), oldest first, with its progress."""
        name = kind.value if kind else None
        return _json(await fresh.get(("runs", name), lambda: {"runs": collector.runs(name)}))

    @app.get(
        "/v1/runs/{run_id}",
        tags=["runs"],
        responses=_errors(404),
        dependencies=[allowed("run:list")],
    )
    async def show_run(run_id: str) -> Response:
        """A run: its summary, each node, host or unit, and its kind's full status."""
        return _json(await fresh.get(("run", run_id), lambda: local.run(run_id)))

    @app.get(
        "/v1/runs/{run_id}/events",
        tags=["runs"],
        responses=_errors(404),
        dependencies=[allowed("run:list")],
    )
    def run_events(
        run_id: str,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> dict[str, Any]:
        """A run's events after ``after`` (a ``seq``), oldest first."""
        return {"events": local.events(run_id, after, limit)}

    async def stream(request: Request, who: Identity, run_id: str | None, after: int) -> Response:
        release = streams.take(who)
        if release is None:
            return error_response(
                429,
                "too_many_streams",
                f"{who.user} holds {streams.limit} event stream(s) open already: close one first",
            )
        last_id = request.headers.get("last-event-id", "")
        seq = int(last_id) if last_id.isdigit() else after
        engine = local.journal.engine

        async def frames() -> AsyncIterator[str]:
            nonlocal seq
            quiet = 0.0
            yield ": ephyra events\n\n"
            while not stopping() and not await request.is_disconnected():
                found = await anyio.to_thread.run_sync(events.read, engine, run_id, seq, 500)
                for event in found:
                    seq = event["seq"]
                    yield f"id: {seq}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"
                if found:
                    quiet = 0.0
                    continue
                await asyncio.sleep(STREAM_POLL)
                quiet += STREAM_POLL
                if quiet >= KEEPALIVE:
                    quiet = 0.0
                    yield ": keep-alive\n\n"

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return CountedStream(
            frames(), media_type="text/event-stream", headers=headers, release=release
        )

    sse: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}
    }

    Reader = Annotated[Identity, allowed("run:list")]

    @app.get(
        "/v1/runs/{run_id}/events/stream",
        tags=["runs"],
        responses={**_errors(404, 429), **sse},
        response_class=StreamingResponse,
    )
    async def run_stream(
        request: Request,
        who: Reader,
        run_id: str,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    ) -> Response:
        """A run's events as Server-Sent Events (``Last-Event-ID`` resumes); each caller
        holds a few streams open at most (429 beyond)."""
        found = await anyio.to_thread.run_sync(local.journal.run, run_id)
        return await stream(request, who, found.id, after)

    @app.get(
        "/v1/events/stream",
        tags=["runs"],
        responses={**_errors(429), **sse},
        response_class=StreamingResponse,
    )
    async def all_stream(
        request: Request, who: Reader, after: Annotated[int | None, Query(ge=0, le=2**62)] = None
    ) -> Response:
        """Every run's events as Server-Sent Events, from now (or after ``after``); each
        caller holds a few streams open at most (429 beyond)."""
        if after is None:
            after = await anyio.to_thread.run_sync(events.last_seq, local.journal.engine)
        return await stream(request, who, None, after)

    @app.get(
        "/v1/{kind}/runs", tags=["runs"], responses=_errors(), dependencies=[allowed("run:list")]
    )
    async def kind_runs(kind: Kind) -> Response:
        """The runs of one kind, as ``ephyra KIND list`` shows them."""
        compute = lambda: {"runs": local.kind_runs(kind.value)}  # noqa: E731
        return _json(await fresh.get(("kind-runs", kind.value), compute))

    @app.get(
        "/v1/{kind}/runs/{run}",
        tags=["runs"],
        responses=_errors(404),
        dependencies=[allowed("run:list")],
    )
    async def kind_status(kind: Kind, run: str) -> Response:
        """A run's status, as ``ephyra KIND status`` shows it (``latest``: the latest run)."""
        compute = lambda: local.status(kind.value, run)  # noqa: E731
        return _json(await fresh.get(("status", kind.value, run), compute))

    @app.post(
        "/v1/{kind}/runs/{run}/pause",
        tags=["runs"],
        responses=_errors(404, 409),
        dependencies=[allowed("run:pause")],
    )
    def pause(kind: Kind, run: str) -> dict[str, str]:
        """Ask a run to stop at its next step boundary (``latest``: the latest unfinished)."""
        return {"message": local.pause(kind.value, run)}

    def acting(action: str, summary: str) -> None:
        @app.post(
            f"/v1/{{kind}}/runs/{{run}}/{action}",
            tags=["runs"],
            status_code=202,
            responses=_errors(404, 409, 502, 503),
            dependencies=[allowed(f"run:{action}")],
            summary=summary,
            name=action,
        )
        def act(kind: Kind, run: str) -> dict[str, Any]:
            return driven.act(kind.value, run, action)

    acting("resume", "continue a paused, failed or crashed run (the server drives it)")
    acting("abort", "stop a run for good")
    acting("rollback", "take back what a run did (the server drives it)")

    # -- planning and starting ---------------------------------------------------------
    def starting(kind: Kind, body_type: type[Any], start_action: str) -> None:
        @app.post(
            f"/v1/{kind.value}/plan",
            tags=[kind.value],
            responses=_errors(400, 404, 413, 502, 503),
            dependencies=[allowed("run:plan")],
            name=f"{kind.value}_plan",
            summary=f"what a {kind.value} run would do (a dry run)",
        )
        def plan(body: body_type) -> dict[str, Any]:  # type: ignore[valid-type]
            return dict(local.plan(kind.value, body))

        @app.post(
            f"/v1/{kind.value}/runs",
            tags=[kind.value],
            status_code=202,
            responses=_errors(400, 404, 409, 413, 502, 503),
            dependencies=[allowed(start_action)],
            name=f"{kind.value}_start",
            summary=f"plan and start a {kind.value} run (the server drives it)",
        )
        def start(body: body_type, response: Response) -> dict[str, Any]:  # type: ignore[valid-type]
            made = driven.start(kind.value, body)
            response.headers["Location"] = f"/v1/runs/{made['id']}"
            return made

    for kind in registered():
        starting(Kind(kind.name), kind.body_type(), kind.start_action)

    # -- hosts, inventory -------------------------------------------------------------
    @app.get(
        "/v1/hosts",
        tags=["hosts"],
        responses=_errors(404, 502, 503),
        dependencies=[allowed("host:list")],
    )
    def hosts(cloud: Annotated[str, Query(pattern=NAME)]) -> dict[str, Any]:
        """The compute hosts of a cloud, with their nova-compute state and maintenance."""
        return {"hosts": local.hosts(cloud)}

    @app.put(
        "/v1/hosts/{host}/maintenance",
        tags=["hosts"],
        responses=_errors(400, 404, 409, 413, 502, 503),
        dependencies=[allowed("host:maintenance")],
    )
    def maintenance(
        host: Annotated[str, FastPath(pattern=NAME)], body: MaintenanceBody
    ) -> dict[str, str]:
        """Disable (on) or enable (off) a host's nova-compute; off only undoes Ephyra's on."""
        return {"message": local.maintenance(body.cloud, host, body.state == "on")}

    @app.get(
        "/v1/inventory",
        tags=["inventory"],
        responses=_errors(400, 404, 502, 503),
        dependencies=[allowed("inventory:show")],
    )
    def show_inventory(
        source: Annotated[
            list[str] | None,
            Query(
                description="openstack[:CLOUD] or a source the server's operator named "
                "(ephyra serve --config); no path, URL or option"
            ),
        ] = None,
        cloud: Annotated[str | None, Query(pattern=NAME)] = None,
        role: Annotated[str | None, Query(pattern=NAME)] = None,
    ) -> dict[str, Any]:
        """Discover the inventory from the sources named, merged in order."""
        return local.inventory(source or [], cloud, role)

    # -- versions ------------------------------------------------------------------------
    @app.get(
        "/v1/versions/status",
        tags=["versions"],
        dependencies=[allowed("version:read")],
        responses=_errors(),
    )
    def version_status() -> dict[str, Any]:
        """Hosts by version and state; failures with the link to their logs."""
        return local.version_status()

    @app.get(
        "/v1/versions/history",
        tags=["versions"],
        dependencies=[allowed("version:read")],
        responses=_errors(),
    )
    def version_history() -> dict[str, Any]:
        """Every version triggered, oldest first."""
        return {"history": local.version_history()}

    @app.post(
        "/v1/versions/trigger",
        tags=["versions"],
        responses=_errors(400, 413),
        dependencies=[allowed("version:trigger")],
    )
    def trigger(body: TriggerBody) -> dict[str, Any]:
        """Make a version the desired one (refused while hosts lag, unless forced)."""
        return dict(local.trigger(body))

    @app.post(
        "/v1/versions/verify",
        tags=["versions"],
        responses=_errors(400, 413),
        dependencies=[allowed("version:read")],
    )
    def verify(body: VerifyBody) -> dict[str, Any]:
        """Whether every host named runs the version (``ok``), and those that do not."""
        return dict(local.verify(body))

    @app.get(
        "/v1/roles",
        tags=["versions"],
        responses=_errors(400),
        dependencies=[allowed("version:read")],
    )
    def roles(
        role: Annotated[str | None, Query(pattern=NAME)] = None,
        version: Annotated[str | None, Query(pattern=VERSION)] = None,
    ) -> dict[str, Any]:
        """The hosts of each role, with their addresses, at a version (default: desired)."""
        return dict(local.roles(role, version))

    # -- environments (parallel control plane on the same VIPs) ----------------------
    Cluster = Annotated[str, FastPath(pattern=NAME, description="environment id or name")]

    @app.get(
        "/v1/clusters",
        tags=["environments"],
        dependencies=[allowed("env:read")],
        responses=_errors(),
    )
    def clusters() -> dict[str, Any]:
        """Every environment: status, release, VIPs and where each node stands."""
        return {"clusters": local.env_list()}

    @app.post(
        "/v1/clusters",
        tags=["environments"],
        dependencies=[allowed("env:change")],
        responses=_errors(400, 413),
    )
    def import_cluster(body: Environment, replace: bool = False) -> dict[str, Any]:
        """Import an environment (networks, VIPs, nodes); ``replace`` overwrites one."""
        return dict(local.env_import(body.model_dump(mode="json"), replace))

    @app.get(
        "/v1/clusters/{cluster}",
        tags=["environments"],
        dependencies=[allowed("env:read")],
        responses=_errors(404),
    )
    def cluster(cluster: Cluster) -> dict[str, Any]:
        """An environment, whole."""
        return local.env_show(cluster)

    @app.put(
        "/v1/clusters/{cluster}/upgrade",
        tags=["environments"],
        dependencies=[allowed("env:change")],
        responses=_errors(400, 404, 409, 413),
    )
    def upgrade_cluster(cluster: Cluster, body: EnvUpgradeBody) -> dict[str, Any]:
        """Put the environment under upgrade to a release; the nodes named (default: the
        primary controller) are to be reinstalled with it."""
        return dict(local.env_upgrade(cluster, body))

    @app.put(
        "/v1/clusters/{cluster}/nodes/{node}/installed",
        tags=["environments"],
        dependencies=[allowed("env:change")],
        responses=_errors(400, 404, 409),
    )
    def node_installed(
        cluster: Cluster, node: Annotated[str, FastPath(pattern=NAME)]
    ) -> dict[str, Any]:
        """Record that a node was reinstalled with its pending release."""
        return dict(local.env_installed(cluster, node))

    @app.get(
        "/v1/clusters/{cluster}/orchestrator/deployment/defaults",
        tags=["environments"],
        dependencies=[allowed("env:read")],
        responses=_errors(400, 404),
    )
    def deployment_defaults(
        cluster: Cluster,
        nodes: Annotated[list[str], Query(min_length=1)],
        mode: Mode | None = None,
    ) -> dict[str, Any]:
        """The deployment information of nodes, in the mode detected (or ``mode``):
        default, isolated or cutover."""
        return {"nodes": local.deployment_info(cluster, nodes, mode)}

    # -- the dashboard -------------------------------------------------------------------
    async def page(request: Request, name: str) -> Response:
        path = STATIC / name
        try:
            await identify(request)
        except EphyraError as exc:
            login = STATIC / "login.html"
            if not login.is_file():
                return error_response(401, "unauthorized", str(exc))
            return HTMLResponse(login.read_text(), status_code=401)
        media = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
        return Response(path.read_bytes(), media_type=media.get(path.suffix, "text/plain"))

    @app.get("/", include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        return await page(request, "index.html")

    assets = {p.name for p in STATIC.iterdir()} if STATIC.is_dir() else set()

    @app.get("/ui/{name}", include_in_schema=False)
    async def asset(request: Request, name: str) -> Response:
        if name not in assets or name == "login.html":
            return error_response(404, "not_found", f"no {name}")
        return await page(request, name)

    _document_actions(app)
    return app


def _token_checks(route: APIRoute) -> list[Any]:
    """The token checks a route depends on (each with the policy action it asks for)."""
    return [d.call for d in route.dependant.dependencies if hasattr(d.call, "action")]


def _action_of(route: APIRoute) -> str | None:
    """The policy action a route's token check asks for (None: a token only)."""
    actions = {c.action for c in _token_checks(route)} - {None}
    if not actions:
        return None
    (action,) = actions
    return str(action)


def _route_of(app: FastAPI, scope: Scope) -> tuple[APIRoute, Scope] | None:
    """The route a request would reach, and what it adds to the request's scope."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return route, child
    return None


def _document_actions(app: FastAPI) -> None:
    """Each operation of the OpenAPI document names the policy action it asks for
    (``x-ephyra-action``), from the token check its route depends on."""
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        action = _action_of(route)
        if action is not None:
            route.openapi_extra = {**(route.openapi_extra or {}), "x-ephyra-action": action}


def _noted(app: FastAPI, scope: Scope) -> None:
    """For the audit trail, what a request refused before its route ran asked for: the
    route it would have reached, with its path's parameters, and that route's action."""
    found = _route_of(app, scope)
    if found is not None:
        route, child = found
        scope.update(child)
        audit_trail.note(Request(scope), _action_of(route))


def _open(app: FastAPI, scope: Scope) -> bool:
    """Whether a request reaches a route that needs no token (logging out)."""
    found = _route_of(app, scope)
    return found is not None and not _token_checks(found[0])
