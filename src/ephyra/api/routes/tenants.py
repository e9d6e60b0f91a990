"""Tenants (projects) as the tenant maintenance and migration runs in the journal left
them: frozen, being changed, or not frozen (any more), with since when and the runs that
did it (a migration freezes its project on A while it moves it)."""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Response

from ephyra.api.routes.common import Context, errors, json_answer
from ephyra.engine import events
from ephyra.engine.kinds import names
from ephyra.operations.local import Local
from ephyra.tenants.records import Outcome
from ephyra.tenants.runner import END, START

KIND = "tenant-maintenance"
MIGRATION = "tenant-migration"
FROZEN, NOT_FROZEN, CHANGING = "frozen", "not frozen", "changing"
#: Outcomes of a phase under way, or stopped half way: the project is partly changed.
UNSETTLED = frozenset({Outcome.RUNNING, Outcome.FAILED, Outcome.INTERRUPTED})


def standing(project: Mapping[str, Any]) -> str:
    """What one run did to its project: ``holds`` it frozen, ``restored`` it, left it
    ``changing`` (a phase under way or stopped half way), or ``nothing`` yet."""
    forward, rollback = project.get("forward") or "", project.get("rollback") or ""
    if rollback == Outcome.RESTORED:
        return "restored"
    if forward in UNSETTLED or rollback in UNSETTLED:
        return "changing"
    return "holds" if forward == Outcome.FROZEN else "nothing"


def summary(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A project's state from its runs (oldest first), each with its ``row`` (as the kind
    lists it), its ``standing`` and the ``times`` of its notices (start, end)."""
    found = list(runs)
    last = found[-1]["row"]
    holding = [r for r in found if r["standing"] == "holds"]
    changing = [r for r in found if r["standing"] == "changing"]
    restored = [r for r in found if r["standing"] == "restored"]
    state, since, by = NOT_FROZEN, None, found[-1]
    if changing:
        state, by = CHANGING, changing[-1]
    elif holding:
        starts = [t for r in holding for t in r["times"][START]]
        state, since, by = FROZEN, min(starts, default=None), holding[0]
    elif restored:
        ends = [t for r in restored for t in r["times"][END]]
        since, by = max(ends, default=None), restored[-1]
    return {
        "cloud": last["cloud"],
        "project": last["project"],
        "project_id": last["project_id"],
        "state": state,
        "frozen": state != NOT_FROZEN,
        "since": since,
        "run": by["row"]["id"],
        "run_state": by["row"]["state"],
        "error": by["error"],
        "runs": [r["row"]["id"] for r in found],
    }


def notice_times(local: Local, run_id: str) -> dict[str, list[float]]:
    """When the run told its freeze (``START``) and its end (``END``)."""
    times: dict[str, list[float]] = {START: [], END: []}
    for event in events.read(local.journal.engine, run_id, limit=10_000, types=(events.NOTICE,)):
        if event.get("event") in times:
            times[event["event"]].append(float(event["time"]))
    return times


def moving(project: Mapping[str, Any]) -> str:
    """What one tenant migration did to its project on A: left it frozen half way
    (``changing``: its move or its rollback under way or stopped), gave it back by its
    rollback (``restored``), or nothing that lasts (moved: unfrozen at the end)."""
    forward, rollback = project.get("forward") or "", project.get("rollback") or ""
    if rollback == Outcome.RESTORED:
        return "restored"
    return "changing" if forward in UNSETTLED or rollback in UNSETTLED else "nothing"


#: The kinds that freeze a project: their name, the row's cloud column, each run's standing.
FREEZERS: tuple[tuple[str, str, Callable[[Mapping[str, Any]], str]], ...] = (
    (KIND, "cloud", standing),
    (MIGRATION, "source", moving),
)


def tenants(local: Local) -> list[dict[str, Any]]:
    """Every project a tenant maintenance or migration run names, by cloud (a migration's
    A) and project id."""
    by_project: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for kind, cloud, stands in FREEZERS:
        if kind not in names():
            continue
        for row in local.kind_runs(kind):
            project = local.status(kind, row["id"])["projects"][0]
            run = {
                "row": {**row, "cloud": row[cloud]},
                "standing": stands(project),
                "error": project.get("error") or "",
                "times": notice_times(local, row["id"]),
            }
            by_project.setdefault((row[cloud], row["project_id"]), []).append(run)
    oldest_first = (sorted(runs, key=lambda r: r["row"]["created"]) for runs in by_project.values())
    return [summary(runs) for runs in oldest_first]


def router(ctx: Context) -> APIRouter:
    routes = APIRouter()

    @routes.get(
        "/v1/tenants", tags=["tenants"], responses=errors(), dependencies=[ctx.allowed("run:list")]
    )
    async def list_tenants() -> Response:
        """Every project a tenant maintenance or migration run named: ``frozen`` (a
        freeze holds it and none gave it back: ``since`` its first freeze), ``changing``
        (a freeze, an unfreeze, a move or its rollback under way or stopped half way) or
        ``not frozen`` (``since`` it was given back), with the run that decides it and
        every run of the project."""
        compute = lambda: {"tenants": tenants(ctx.local)}  # noqa: E731
        return json_answer(await ctx.fresh.get(("tenants",), compute))

    return routes
