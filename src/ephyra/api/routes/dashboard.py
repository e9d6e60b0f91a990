"""The dashboard: its page and assets, behind the same token (a login page without one)."""

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from ephyra.api.middleware import error_response
from ephyra.api.routes.common import Context
from ephyra.errors import EphyraError

STATIC = Path(__file__).parent.parent / "static"
MEDIA = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


def router(ctx: Context) -> APIRouter:
    routes = APIRouter()
    assets = {p.name for p in STATIC.iterdir()} if STATIC.is_dir() else set()

    async def page(request: Request, name: str) -> Response:
        path = STATIC / name
        try:
            await ctx.guard.identify(request)
        except EphyraError as exc:
            login = STATIC / "login.html"
            if not login.is_file():
                return error_response(401, "unauthorized", str(exc))
            return HTMLResponse(login.read_text(), status_code=401)
        return Response(path.read_bytes(), media_type=MEDIA.get(path.suffix, "text/plain"))

    @routes.get("/", include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        return await page(request, "index.html")

    @routes.get("/ui/{name}", include_in_schema=False)
    async def asset(request: Request, name: str) -> Response:
        if name not in assets or name == "login.html":
            return error_response(404, "not_found", f"no {name}")
        return await page(request, name)

    return routes
