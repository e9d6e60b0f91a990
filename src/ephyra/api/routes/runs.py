"""The runs of every kind: lists, a run's status and events (also as Server-Sent Events),
pause, resume, abort and rollback; and, from the registry of run kinds, one router per
kind for its ``/v1/KIND/plan`` and ``/v1/KIND/runs``."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from ephyra.api.middleware import CountedStream, error_response
from ephyra.api.policy import Identity
from ephyra.api.routes.common import Context, Kind, errors, json_answer
from ephyra.engine import events
from ephyra.engine.kinds import RunKind

#: How often an event stream looks for new events, and sends a keep-alive comment.
STREAM_POLL = 0.25
KEEPALIVE = 15.0
#: The reads that dashboards and scripts poll, as (path, methods): matched first.
POLLED = frozenset(
    (path, frozenset({"GET"}))
    for path in ("/v1/runs", "/v1/runs/{run_id}", "/v1/{kind}/runs", "/v1/{kind}/runs/{run}")
)
#: The answer of an event stream, in the OpenAPI document.
SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}
}


async def frames(
    request: Request,
    engine: Engine,
    run_id: str | None,
    seq: int,
    stopping: Callable[[], bool],
) -> AsyncIterator[str]:
    """The events of a run (or of all) after ``seq``, as Server-Sent Events, until the
    reader goes or the server stops; a keep-alive comment when nothing happens."""
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


async def stream(
    ctx: Context, request: Request, who: Identity, run_id: str | None, after: int
) -> Response:
    """An event stream, counted against the caller's streams (429 beyond its limit)."""
    release = ctx.streams.take(who)
    if release is None:
        return error_response(
            429,
            "too_many_streams",
            f"{who.user} holds {ctx.streams.limit} event stream(s) open already: close one first",
        )
    last_id = request.headers.get("last-event-id", "")
    seq = int(last_id) if last_id.isdigit() else after
    found = frames(request, ctx.local.journal.engine, run_id, seq, ctx.stopping)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return CountedStream(found, media_type="text/event-stream", headers=headers, release=release)


def router(ctx: Context) -> APIRouter:
    """What every kind's runs read alike: lists, a run, its status and its events."""
    routes = APIRouter()
    local, fresh = ctx.local, ctx.fresh
    Reader = Annotated[Identity, ctx.allowed("run:list")]

    @routes.get(
        "/v1/runs", tags=["runs"], responses=errors(), dependencies=[ctx.allowed("run:list")]
    )
    async def list_runs(kind: Kind | None = None) -> Response:
        """Every run (or every run of one kind), oldest first, with its progress."""
        name = kind.value if kind else None
        compute = lambda: {"runs": ctx.collector.runs(name)}  # noqa: E731
        return json_answer(await fresh.get(("runs", name), compute))

    @routes.get(
        "/v1/runs/{run_id}",
        tags=["runs"],
        responses=errors(404),
        dependencies=[ctx.allowed("run:list")],
    )
    async def show_run(run_id: str) -> Response:
        """A run: its summary, each node, host or unit, and its kind's full status
        (``latest``: the latest run of any kind)."""
        return json_answer(await fresh.get(("run", run_id), lambda: local.run(run_id)))

    @routes.get(
        "/v1/runs/{run_id}/events",
        tags=["runs"],
        responses=errors(404),
        dependencies=[ctx.allowed("run:list")],
    )
    def run_events(
        run_id: str,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> dict[str, Any]:
        """A run's events after ``after`` (a ``seq``), oldest first (``latest``: the
        latest run's)."""
        return {"events": local.events(run_id, after, limit)}

    @routes.get(
        "/v1/runs/{run_id}/report",
        tags=["runs"],
        responses=errors(404),
        dependencies=[ctx.allowed("run:list")],
    )
    def run_report(run_id: str) -> dict[str, Any]:
        """A run's downtime report: each probed target's outages (total, longest, when)
        against when each stage and unit ran (``latest``: the latest run's)."""
        return local.report(run_id)

    @routes.get(
        "/v1/runs/{run_id}/events/stream",
        tags=["runs"],
        responses={**errors(404, 429), **SSE},
        response_class=StreamingResponse,
    )
    async def run_stream(
        request: Request,
        who: Reader,
        run_id: str,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    ) -> Response:
        """A run's events as Server-Sent Events (``Last-Event-ID`` resumes; ``latest``: the
        latest run's, as it is when the stream opens); each caller holds a few streams open
        at most (429 beyond)."""
        found = await anyio.to_thread.run_sync(local.find_run, run_id)
        return await stream(ctx, request, who, found.id, after)

    @routes.get(
        "/v1/events/stream",
        tags=["runs"],
        responses={**errors(429), **SSE},
        response_class=StreamingResponse,
    )
    async def all_stream(
        request: Request, who: Reader, after: Annotated[int | None, Query(ge=0, le=2**62)] = None
    ) -> Response:
        """Every run's events as Server-Sent Events, from now (or after ``after``); each
        caller holds a few streams open at most (429 beyond)."""
        if after is None:
            after = await anyio.to_thread.run_sync(events.last_seq, local.journal.engine)
        return await stream(ctx, request, who, None, after)

    @routes.get(
        "/v1/{kind}/runs", tags=["runs"], responses=errors(), dependencies=[ctx.allowed("run:list")]
    )
    async def kind_runs(kind: Kind) -> Response:
        """The runs of one kind, as ``ephyra KIND list`` shows them."""
        compute = lambda: {"runs": local.kind_runs(kind.value)}  # noqa: E731
        return json_answer(await fresh.get(("kind-runs", kind.value), compute))

    @routes.get(
        "/v1/{kind}/runs/{run}",
        tags=["runs"],
        responses=errors(404),
        dependencies=[ctx.allowed("run:list")],
    )
    async def kind_status(kind: Kind, run: str) -> Response:
        """A run's status, as ``ephyra KIND status`` shows it (``latest``: the latest run)."""
        compute = lambda: local.status(kind.value, run)  # noqa: E731
        return json_answer(await fresh.get(("status", kind.value, run), compute))

    return routes


class ResumeBody(BaseModel):
    """What a resume may change of a run, from then on (none: as the run had it)."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int | None = Field(
        default=None, ge=1, description="how many at once from now on (nodes, moves)"
    )


def actions(ctx: Context) -> APIRouter:
    """Pause, resume, abort and roll back a run of any kind (``latest``: the latest)."""
    routes = APIRouter()
    local, driven = ctx.local, ctx.driven

    @routes.post(
        "/v1/{kind}/runs/{run}/pause",
        tags=["runs"],
        responses=errors(404, 409),
        dependencies=[ctx.allowed("run:pause")],
    )
    def pause(kind: Kind, run: str) -> dict[str, str]:
        """Ask a run to stop at its next step boundary (``latest``: the latest unfinished)."""
        return {"message": local.pause(kind.value, run)}

    def acting(action: str, summary: str) -> None:
        @routes.post(
            f"/v1/{{kind}}/runs/{{run}}/{action}",
            tags=["runs"],
            status_code=202,
            responses=errors(404, 409, 502, 503),
            dependencies=[ctx.allowed(f"run:{action}")],
            summary=summary,
            name=action,
        )
        def act(kind: Kind, run: str) -> dict[str, Any]:
            return driven.act(kind.value, run, action)

    @routes.post(
        "/v1/{kind}/runs/{run}/resume",
        tags=["runs"],
        status_code=202,
        responses=errors(400, 404, 409, 502, 503),
        dependencies=[ctx.allowed("run:resume")],
        summary="continue a paused, failed or crashed run (the server drives it)",
        name="resume",
    )
    def resume(
        kind: Kind, run: str, body: Annotated[ResumeBody | None, Body()] = None
    ) -> dict[str, Any]:
        """``concurrency``: a new one from now on (kept with the run; a forklift or an
        evacuation); no body, or ``{}``: as the run had it."""
        settings = body.model_dump(exclude_none=True) if body else None
        return driven.act(kind.value, run, "resume", settings)

    acting("abort", "stop a run for good")
    acting("rollback", "take back what a run did (the server drives it)")
    return routes


def kind_router(ctx: Context, kind: RunKind[Any]) -> APIRouter:
    """A kind's own routes: what a run would do (a dry run), and starting one."""
    routes = APIRouter()
    name = kind.name
    body_type = kind.body_type()

    @routes.post(
        f"/v1/{name}/plan",
        tags=[name],
        responses=errors(400, 404, 413, 502, 503),
        dependencies=[ctx.allowed("run:plan")],
        name=f"{name}_plan",
        summary=f"what a {name} run would do (a dry run)",
    )
    def plan(body: body_type) -> dict[str, Any]:  # type: ignore[valid-type]
        return dict(ctx.local.plan(name, body))

    @routes.post(
        f"/v1/{name}/runs",
        tags=[name],
        status_code=202,
        responses=errors(400, 404, 409, 413, 502, 503),
        dependencies=[ctx.allowed(kind.start_action)],
        name=f"{name}_start",
        summary=f"plan and start a {name} run (the server drives it)",
    )
    def start(body: body_type, response: Response) -> dict[str, Any]:  # type: ignore[valid-type]
        made = ctx.driven.start(name, body)
        response.headers["Location"] = f"/v1/runs/{made['id']}"
        return made

    if kind.finish_help:

        @routes.post(
            f"/v1/{name}/runs/{{run}}/finish",
            tags=[name],
            status_code=202,
            responses=errors(404, 409, 502, 503),
            dependencies=[ctx.allowed("run:finish")],
            name=f"{name}_finish",
            summary=f"after a run that succeeded: {kind.finish_help} (the server does it)",
        )
        def finish(run: str) -> dict[str, Any]:
            """The run is final from then on: its rollback is refused (``latest``: the
            latest run that succeeded)."""
            return ctx.driven.act(name, run, "finish")

    return routes
