"""The dashboard: its page and assets, behind the same token (a login page without one)."""

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from ephyra.api.middleware import error_response
from ephyra.api.routes.common import Context
from ephyra.errors import EphyraError

STATIC = Path(__file__).parent.parent / "static"
MEDIA = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
#: What the login page needs before anyone is identified: nothing else is served without a token.
PUBLIC = {"login.js", "login.css"}
#: Every page and asset: scripts, styles and requests from this server only, nothing inline,
#: never framed by another site.
SECURITY = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def router(ctx: Context) -> APIRouter:
    routes = APIRouter()
    assets = {p.name for p in STATIC.iterdir()} if STATIC.is_dir() else set()

    async def page(request: Request, name: str) -> Response:
        path = STATIC / name
        if name not in PUBLIC:
            try:
                await ctx.guard.identify(request)
            except EphyraError as exc:
                login = STATIC / "login.html"
                if not login.is_file():
                    return error_response(401, "unauthorized", str(exc))
                return HTMLResponse(login.read_text(), status_code=401, headers=SECURITY)
        media = MEDIA.get(path.suffix, "text/plain")
        return Response(path.read_bytes(), media_type=media, headers=SECURITY)

    @routes.get("/", include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        return await page(request, "index.html")

    @routes.get("/ui/{name}", include_in_schema=False)
    async def asset(request: Request, name: str) -> Response:
        if name not in assets or name == "login.html":
            return error_response(404, "not_found", f"no {name}")
        return await page(request, name)

    return routes
