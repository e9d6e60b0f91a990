"""The server itself: liveness, who the caller is, the dashboard's session, Prometheus
metrics, the OpenAPI document and the clouds it knows."""

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from ephyra.api import metrics
from ephyra.api.guard import COOKIE, token_of
from ephyra.api.policy import Identity
from ephyra.api.routes.common import Context, errors


def router(ctx: Context) -> APIRouter:
    routes = APIRouter()
    Who = Annotated[Identity, ctx.allowed(None)]
    policy = ctx.guard.policy

    @routes.get("/healthz", tags=["server"], summary="liveness (no token needed)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @routes.get("/openapi.json", include_in_schema=False)
    async def openapi(_who: Who, request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    @routes.get("/v1/whoami", tags=["server"], responses=errors())
    async def whoami(who: Who) -> dict[str, Any]:
        """The caller, its roles, and what the policy lets it do."""
        return {
            "user": who.user,
            "project": who.project,
            "roles": list(who.roles),
            "allowed": policy.allowed(who),
        }

    @routes.post("/v1/session", tags=["server"], responses=errors())
    async def open_session(who: Who, request: Request, response: Response) -> dict[str, Any]:
        """The dashboard's log in: the token of the header (X-Auth-Token or Authorization:
        Bearer) comes back as a cookie scripts cannot read (HttpOnly, SameSite=Strict, and
        Secure under TLS); a change through it needs the X-Ephyra-Session header too."""
        response.set_cookie(
            COOKIE,
            token_of(request) or "",
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return {"user": who.user, "project": who.project, "roles": list(who.roles)}

    @routes.delete("/v1/session", tags=["server"], status_code=204, response_class=Response)
    async def close_session(request: Request) -> Response:
        """Log out: the dashboard's cookie is deleted (no token needed)."""
        response = Response(status_code=204)
        response.delete_cookie(
            COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return response

    @routes.get(
        "/metrics",
        tags=["server"],
        responses=errors(),
        response_class=Response,
        dependencies=[ctx.allowed("metrics:read")],
    )
    def prometheus() -> Response:
        """Prometheus metrics: runs by state, progress, step durations, API latency."""
        body, content_type = metrics.exposition(ctx.registry)
        return Response(body, media_type=content_type)

    @routes.get(
        "/v1/clouds", tags=["server"], responses=errors(), dependencies=[ctx.allowed("run:list")]
    )
    def clouds() -> dict[str, list[str]]:
        """The clouds of the server's clouds.yaml, by name."""
        return {"clouds": ctx.local.clouds()}

    return routes
