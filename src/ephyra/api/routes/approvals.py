"""An upgrade run's approvals and steps (:mod:`ephyra.upgrade.approvals`): approve the
stage a run waits at, or run its next stage alone; either way the server resumes the run.
Admins only by default (``run:approve``, ``run:step``); the approver is the caller, kept
in the run's record and in the audit trail."""

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from ephyra.api.policy import Identity
from ephyra.api.routes.common import Context, errors


class ApproveBody(BaseModel):
    """Which stage to approve (none: the first stage still to do that waits for one)."""

    model_config = ConfigDict(extra="forbid")

    stage: str | None = Field(
        default=None, min_length=1, max_length=200, description="a stage's name, as in the plan"
    )


def router(ctx: Context) -> APIRouter:
    routes = APIRouter()
    local, driven = ctx.local, ctx.driven

    @routes.post(
        "/v1/upgrade/runs/{run}/approve",
        tags=["upgrade"],
        status_code=202,
        responses=errors(400, 404, 409, 502, 503),
        name="upgrade_approve",
        summary="approve the stage an upgrade run waits at, and resume it (the server drives it)",
    )
    def approve(
        run: str,
        who: Annotated[Identity, ctx.allowed("run:approve")],
        body: Annotated[ApproveBody | None, Body()] = None,
    ) -> dict[str, Any]:
        """``stage``: the stage approved (none: the first stage still to do that waits for
        an approval; ``latest``: the latest unfinished run). Who approved, when, is kept
        in the run's record; refused (409) while a process drives the run."""
        done = local.approve_stage(run, body.stage if body else None, who.user, "api")
        answer = driven.act("upgrade", done.run.id, "resume")
        return {**answer, "message": f"{done.message}; {answer['message']}"}

    @routes.post(
        "/v1/upgrade/runs/{run}/step",
        tags=["upgrade"],
        status_code=202,
        responses=errors(404, 409, 502, 503),
        dependencies=[ctx.allowed("run:step")],
        name="upgrade_step",
        summary="run an upgrade run's next stage, then pause it again (the server drives it)",
    )
    def step(run: str) -> dict[str, Any]:
        """The next stage still to do, alone (``latest``: the latest unfinished run);
        refused (409) while a process drives the run."""
        done = local.mark_step(run)
        answer = driven.act("upgrade", done.run.id, "resume")
        return {**answer, "message": f"{done.message}; {answer['message']}"}

    return routes
