"""The app as its routers make it: one router per registered kind for its plan and start,
the routers in the order of the OpenAPI document, every operation naming the policy action
it asks for, and only logging out, liveness and the dashboard's pages (which answer a login
page) let through the body guard without a token."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute

from ephyra.api.app import context, create_app, routers
from ephyra.api.auth import StaticTokens
from ephyra.api.background import Driven
from ephyra.api.guard import Guard, is_open, route_of
from ephyra.api.policy import Policy
from ephyra.engine.kinds import registered
from ephyra.operations.local import Local


@pytest.fixture
def local(tmp_path: Path) -> Local:
    return Local(f"sqlite:///{tmp_path}/journal.db", f"file://{tmp_path}/locks")


@pytest.fixture
def app(local: Local) -> FastAPI:
    return create_app(local, StaticTokens.empty(), Policy())


@pytest.fixture
def made(local: Local) -> list[list[BaseRoute]]:
    """The routes of each router, in order."""
    guard = Guard(StaticTokens.empty(), Policy())
    return [r.routes for r in routers(context(local, guard, Driven(local), 4))]


def scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def test_each_registered_kind_has_its_plan_and_start(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    kinds = registered()
    assert {k.name for k in kinds} >= {"forklift", "evacuate", "upgrade"}
    for kind in kinds:
        plan, start = paths[f"/v1/{kind.name}/plan"]["post"], paths[f"/v1/{kind.name}/runs"]["post"]
        assert (plan["operationId"], plan["x-ephyra-action"]) == (
            re.sub(r"\W", "_", f"{kind.name}_plan/v1/{kind.name}/plan") + "_post",
            "run:plan",
        )
        assert (start["tags"], start["x-ephyra-action"]) == ([kind.name], kind.start_action)


def test_one_router_per_capability_in_the_order_of_the_document(
    made: list[list[BaseRoute]], app: FastAPI
) -> None:
    firsts = [getattr(routes[0], "path", "") for routes in made]
    assert firsts == [
        "/healthz",
        "/v1/runs",
        "/v1/{kind}/runs/{run}/pause",
        *[f"/v1/{k.name}/plan" for k in registered()],
        "/v1/upgrade/runs/{run}/approve",
        "/v1/hosts",
        "/v1/inventory",
        "/v1/versions/status",
        "/v1/clusters",
        "/v1/tenants",
        "/",
    ]
    documented = list(app.openapi()["paths"])
    listed = [getattr(r, "path", "") for routes in made for r in routes]
    in_schema = [p for p in dict.fromkeys(listed) if p in documented]
    assert documented == ["/v1/audit", *in_schema]  # the audit trail's route comes first


def test_every_operation_but_four_asks_for_an_action(app: FastAPI) -> None:
    without = {
        (path, method)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if "x-ephyra-action" not in operation
    }
    assert without == {
        ("/healthz", "get"),
        ("/v1/whoami", "get"),  # a token, any role
        ("/v1/session", "post"),  # a token, any role
        ("/v1/session", "delete"),
    }


def test_only_logging_out_liveness_and_pages_pass_the_guard_without_a_token(
    made: list[list[BaseRoute]],
) -> None:
    every = [r for routes in made for r in routes]
    assert is_open(every, scope("DELETE", "/v1/session"))
    assert is_open(every, scope("GET", "/healthz"))
    assert is_open(every, scope("GET", "/"))  # the page itself answers the login page
    for method, path in [
        ("POST", "/v1/session"),
        ("GET", "/v1/whoami"),
        ("POST", "/v1/forklift/runs"),
        ("POST", "/v1/upgrade/runs/latest/abort"),
        ("PUT", "/v1/hosts/cmp-1/maintenance"),
    ]:
        assert not is_open(every, scope(method, path)), (method, path)
    assert route_of(every, scope("GET", "/nowhere")) is None
