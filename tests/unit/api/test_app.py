"""What an error answer tells its caller: a request id (in ``X-Request-Id`` and the body), a
redacted message, never an unexpected exception's text (that goes to the server's log, under
the same id); and the dashboard's session cookie, which scripts cannot read."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI

from ephyra.api.app import create_app
from ephyra.api.auth import StaticTokens
from ephyra.api.policy import Policy
from ephyra.errors import CloudError, EphyraError, RunNotFound, StepFailed
from ephyra.operations.codes import MESSAGE_MAX, public
from ephyra.operations.local import Local

ADMIN = "admin-token-0123456789"
READER = "reader-token-0123456789"
SECRET = "s3cret-pw"
DB_URL = f"postgresql+psycopg2://ephyra:{SECRET}@db.example:5432/ephyra"
REQUEST_ID = re.compile(r"^req-[0-9a-f-]{36}$")


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    cookies: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    app: FastAPI,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    scheme: str = "http",
) -> Answer:
    """One request through the ASGI app, as a server would pass it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8780),
    }
    sent: list[dict[str, Any]] = []
    given = [False]

    async def receive() -> dict[str, Any]:
        if given[0]:
            await asyncio.sleep(3600)
        given[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    raw = [(k.decode().lower(), v.decode()) for k, v in start["headers"]]
    data = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], raw, data, [v for k, v in raw if k == "set-cookie"])


def boom(exc: Exception) -> Any:
    def route() -> None:
        raise exc

    return route


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        yaml.safe_dump(
            {
                ADMIN: {"user": "ada", "project": "ops", "roles": ["admin"]},
                READER: {"user": "rea", "project": "ops", "roles": ["reader"]},
            }
        )
    )
    local = Local(f"sqlite:///{tmp_path}/journal.db", f"file://{tmp_path}/locks")
    made = create_app(local, StaticTokens(tokens), Policy())
    for path, exc in {
        "/test/ephyra": EphyraError(f"cannot open journal {DB_URL}: connection refused"),
        "/test/cloud": CloudError(f"PuppetDB https://puppet:{SECRET}@pdb.example: unreachable"),
        "/test/missing": RunNotFound(f"no run 'abc' in {DB_URL}"),
        "/test/raw": ValueError(f"bad line in /etc/shadow, from {DB_URL}"),
        "/test/long": StepFailed("x" * (MESSAGE_MAX * 2)),
    }.items():
        made.add_api_route(path, boom(exc), methods=["GET"])
    return made


def error_of(answer: Answer) -> dict[str, str]:
    error: dict[str, str] = answer.json()["error"]
    assert set(error) == {"code", "message", "request_id"}
    assert REQUEST_ID.match(error["request_id"])
    assert answer.header("x-request-id") == error["request_id"]
    return error


def test_every_answer_has_a_request_id_of_its_own(app: FastAPI) -> None:
    ok = call(app, "GET", "/healthz")
    again = call(app, "GET", "/healthz")
    assert ok.status == 200 and ok.json() == {"status": "ok"}
    first, second = ok.header("x-request-id"), again.header("x-request-id")
    assert first and second and REQUEST_ID.match(first) and first != second


def test_a_refusal_names_its_request(app: FastAPI) -> None:
    answer = call(app, "GET", "/v1/runs")
    assert answer.status == 401
    assert error_of(answer)["code"] == "unauthorized"
    answer = call(app, "POST", "/v1/versions/trigger", {"X-Auth-Token": READER})
    assert answer.status == 403
    assert error_of(answer)["code"] == "forbidden"


def test_an_unknown_route_and_a_bad_body_name_their_request(app: FastAPI) -> None:
    answer = call(app, "GET", "/v1/nothing-here", {"X-Auth-Token": ADMIN})
    assert answer.status == 404
    assert error_of(answer)["code"] == "not_found"
    answer = call(
        app,
        "POST",
        "/v1/versions/trigger",
        {"X-Auth-Token": ADMIN, "Content-Type": "application/json"},
        b'{"version": 3}',
    )
    assert answer.status == 422
    assert error_of(answer)["code"] == "invalid_request"


def test_an_unknown_run_of_a_real_journal_is_a_404(app: FastAPI) -> None:
    answer = call(app, "GET", "/v1/runs/0123abcd", {"X-Auth-Token": READER})
    assert answer.status == 404
    assert error_of(answer)["code"] == "run_not_found"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/test/ephyra", 500, "failed"),
        ("/test/cloud", 502, "cloud_error"),
        ("/test/missing", 404, "run_not_found"),
    ],
)
def test_credentials_in_an_error_are_redacted(
    app: FastAPI, caplog: pytest.LogCaptureFixture, path: str, status: int, code: str
) -> None:
    with caplog.at_level(logging.INFO, logger="ephyra.api"):
        answer = call(app, "GET", path)
    assert answer.status == status
    error = error_of(answer)
    assert error["code"] == code
    assert SECRET not in answer.body.decode() and ":***@" in error["message"]
    assert SECRET not in caplog.text
    assert error["request_id"] in caplog.text


def test_an_unexpected_exception_answers_a_fixed_message(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="ephyra.api"):
        answer = call(app, "GET", "/test/raw")
    assert answer.status == 500
    error = error_of(answer)
    assert error == {
        "code": "internal",
        "message": f"internal error; see the server log, request id {error['request_id']}",
        "request_id": error["request_id"],
    }
    for leaked in (SECRET, "shadow", "ValueError", "Traceback"):
        assert leaked not in answer.body.decode()
    # the detail is in the log, under the id, with the URL's password hidden
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert error["request_id"] in logged and "Traceback" in logged and "ValueError" in logged
    assert "ephyra:***@db.example" in logged and SECRET not in logged


def test_a_long_message_is_cut_short(app: FastAPI) -> None:
    answer = call(app, "GET", "/test/long")
    message = error_of(answer)["message"]
    assert len(message) == MESSAGE_MAX and message.endswith("...")


def test_public_keeps_an_ephyra_message_and_hides_any_other() -> None:
    assert public(RunNotFound("no run 'x'"), "req-1") == (404, "run_not_found", "no run 'x'")
    assert public(KeyError("secret"), "req-1") == (
        500,
        "internal",
        "internal error; see the server log, request id req-1",
    )


# -- the dashboard's session cookie -------------------------------------------------------
def cookie_flags(answer: Answer) -> tuple[str, set[str]]:
    (cookie,) = answer.cookies
    value, *flags = (part.strip() for part in cookie.split(";"))
    return value, {f.split("=")[0].lower() if "=" not in f else f.lower() for f in flags}


def test_log_in_sets_a_cookie_scripts_cannot_read(app: FastAPI) -> None:
    answer = call(app, "POST", "/v1/session", {"X-Auth-Token": READER})
    assert answer.status == 200 and answer.json()["user"] == "rea"
    value, flags = cookie_flags(answer)
    assert value == f"ephyra_token={READER}"
    assert {"httponly", "samesite=strict", "path=/"} <= flags and "secure" not in flags


def test_under_tls_the_cookie_is_secure(app: FastAPI) -> None:
    answer = call(app, "POST", "/v1/session", {"X-Auth-Token": READER}, scheme="https")
    _, flags = cookie_flags(answer)
    assert {"httponly", "samesite=strict", "secure"} <= flags


def test_log_in_with_a_wrong_token_sets_no_cookie(app: FastAPI) -> None:
    answer = call(app, "POST", "/v1/session", {"X-Auth-Token": "not-a-token-0123456789"})
    assert answer.status == 401 and not answer.cookies


def test_log_out_deletes_the_cookie(app: FastAPI) -> None:
    answer = call(app, "DELETE", "/v1/session")
    assert answer.status == 204
    value, flags = cookie_flags(answer)
    assert value == 'ephyra_token=""' and "max-age=0" in flags and "httponly" in flags


def test_a_change_by_cookie_needs_the_session_header(app: FastAPI) -> None:
    cookie = {"Cookie": f"ephyra_token={ADMIN}"}
    assert call(app, "GET", "/v1/whoami", cookie).status == 200  # a page, an event stream
    # a form of another page on the same site sends the cookie, not the header: refused
    assert call(app, "POST", "/v1/forklift/runs/latest/pause", cookie).status == 401
    pause = call(app, "POST", "/v1/forklift/runs/latest/pause", {**cookie, "X-Ephyra-Session": "1"})
    assert pause.status == 404  # authenticated: there is no run to pause
    assert error_of(pause)["code"] == "run_not_found"


# -- the dashboard's pages ------------------------------------------------------------------
def test_without_a_token_only_the_login_page_and_its_assets_are_served(app: FastAPI) -> None:
    login = call(app, "GET", "/")
    assert login.status == 401 and b"api-tokens.yaml" in login.body  # says where the token is
    for asset in ("login.js", "login.css"):
        assert call(app, "GET", f"/ui/{asset}").status == 200
    for asset in ("app.js", "style.css", "index.html", "versions.js"):
        assert call(app, "GET", f"/ui/{asset}").status == 401
    assert call(app, "GET", "/ui/login.html").status == 404
    assert call(app, "GET", "/ui/nosuch.js", {"X-Auth-Token": READER}).status == 404
    page = call(app, "GET", "/", {"Cookie": f"ephyra_token={READER}"})
    assert page.status == 200 and b"/ui/app.js" in page.body


def test_every_page_forbids_inline_scripts_and_other_origins(app: FastAPI) -> None:
    reader = {"Cookie": f"ephyra_token={READER}"}
    for answer in (
        call(app, "GET", "/"),
        call(app, "GET", "/", reader),
        call(app, "GET", "/ui/app.js", reader),
        call(app, "GET", "/ui/login.js"),
    ):
        policy = answer.header("content-security-policy") or ""
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert answer.header("x-content-type-options") == "nosniff"
    static = Path(__file__).parents[3] / "src/ephyra/api/static"
    for html in static.glob("*.html"):  # nothing the policy would block
        assert "<script>" not in html.read_text() and "<style" not in html.read_text()
        assert " style=" not in html.read_text()
