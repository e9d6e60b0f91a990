"""The inventory, discovered from the sources a caller names (those the server allows)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ephyra.api.routes.common import Context, errors
from ephyra.names import NAME


def router(ctx: Context) -> APIRouter:
    routes = APIRouter()

    @routes.get(
        "/v1/inventory",
        tags=["inventory"],
        responses=errors(400, 404, 502, 503),
        dependencies=[ctx.allowed("inventory:show")],
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
        return ctx.local.inventory(source or [], cloud, role)

    return routes
