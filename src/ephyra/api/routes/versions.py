"""Versions (seed 003): the desired one, hosts by version and state, the history of what
was triggered, and the hosts of each role."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ephyra.api.routes.common import Context, errors
from ephyra.names import NAME, VERSION
from ephyra.operations.bodies import TriggerBody, VerifyBody


def router(ctx: Context) -> APIRouter:
    routes = APIRouter()
    local = ctx.local

    @routes.get(
        "/v1/versions/status",
        tags=["versions"],
        dependencies=[ctx.allowed("version:read")],
        responses=errors(),
    )
    def version_status() -> dict[str, Any]:
        """Hosts by version and state; failures with the link to their logs."""
        return local.version_status()

    @routes.get(
        "/v1/versions/history",
        tags=["versions"],
        dependencies=[ctx.allowed("version:read")],
        responses=errors(),
    )
    def version_history() -> dict[str, Any]:
        """Every version triggered, oldest first."""
        return {"history": local.version_history()}

    @routes.post(
        "/v1/versions/trigger",
        tags=["versions"],
        responses=errors(400, 413),
        dependencies=[ctx.allowed("version:trigger")],
    )
    def trigger(body: TriggerBody) -> dict[str, Any]:
        """Make a version the desired one (refused while hosts lag, unless forced)."""
        return dict(local.trigger(body))

    @routes.post(
        "/v1/versions/verify",
        tags=["versions"],
        responses=errors(400, 413),
        dependencies=[ctx.allowed("version:read")],
    )
    def verify(body: VerifyBody) -> dict[str, Any]:
        """Whether every host named runs the version (``ok``), and those that do not."""
        return dict(local.verify(body))

    @routes.get(
        "/v1/roles",
        tags=["versions"],
        responses=errors(400),
        dependencies=[ctx.allowed("version:read")],
    )
    def roles(
        role: Annotated[str | None, Query(pattern=NAME)] = None,
        version: Annotated[str | None, Query(pattern=VERSION)] = None,
    ) -> dict[str, Any]:
        """The hosts of each role, with their addresses, at a version (default: desired)."""
        return dict(local.roles(role, version))

    return routes
