"""Compute hosts: their nova-compute state, and maintenance on and off."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as FastPath

from ephyra.api.routes.common import Context, errors
from ephyra.names import NAME
from ephyra.operations.bodies import MaintenanceBody


def router(ctx: Context) -> APIRouter:
    routes = APIRouter()
    local = ctx.local

    @routes.get(
        "/v1/hosts",
        tags=["hosts"],
        responses=errors(404, 502, 503),
        dependencies=[ctx.allowed("host:list")],
    )
    def hosts(cloud: Annotated[str, Query(pattern=NAME)]) -> dict[str, Any]:
        """The compute hosts of a cloud, with their nova-compute state and maintenance."""
        return {"hosts": local.hosts(cloud)}

    @routes.put(
        "/v1/hosts/{host}/maintenance",
        tags=["hosts"],
        responses=errors(400, 404, 409, 413, 502, 503),
        dependencies=[ctx.allowed("host:maintenance")],
    )
    def maintenance(
        host: Annotated[str, FastPath(pattern=NAME)], body: MaintenanceBody
    ) -> dict[str, str]:
        """Disable (on) or enable (off) a host's nova-compute; off only undoes Ephyra's on."""
        return {"message": local.maintenance(body.cloud, host, body.state == "on")}

    return routes
