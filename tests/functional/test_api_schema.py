"""Schemathesis against the real server, with real Ironic control planes behind it: every
operation of the OpenAPI document, with generated input, answers no 5xx and only
documented status codes, content types and bodies; the document kept in the repository
is the one the server serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.ironic import Testbed
from tests.functional.ephyra_cli import EPHYRA, Ephyra
from tests.functional.test_api import ADMIN, Server

pytestmark = pytest.mark.functional
ROOT = Path(__file__).resolve().parents[2]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance," + (
    "response_schema_conformance"
)


def test_the_kept_document_is_the_served_one(clean_testbed: Testbed, tmp_path: Path) -> None:
    ephyra = Ephyra(clean_testbed.clouds_yaml, tmp_path / "state")
    printed = subprocess.run(
        [*EPHYRA, "serve", "--openapi"], env=ephyra.env, capture_output=True, text=True, check=True
    ).stdout
    kept = (ROOT / "docs" / "openapi.json").read_text()
    assert json.loads(printed) == json.loads(kept), (
        "run: ephyra serve --openapi > docs/openapi.json"
    )
    server = Server(ephyra, tmp_path)
    try:
        assert server.call("GET", "/openapi.json").json() == json.loads(kept)
    finally:
        server.stop()


def test_generated_requests_get_documented_answers(clean_testbed: Testbed, tmp_path: Path) -> None:
    ephyra = Ephyra(clean_testbed.clouds_yaml, tmp_path / "state")
    server = Server(ephyra, tmp_path)
    try:
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "st"),
                "run",
                str(ROOT / "docs" / "openapi.json"),
                "--url",
                server.url,
                "--header",
                f"X-Auth-Token: {ADMIN}",
                "--checks",
                CHECKS,
                "--max-examples",
                "25",
                "--exclude-path-regex",
                "/stream$",  # an event stream never ends: test_api reads them
                "--request-timeout",
                "30",
                "--seed",
                "20261122",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
    finally:
        server.stop()
    out = done.stdout
    summary = out[out.find("=== ERRORS") :][:6000] if "=== ERRORS" in out else out[-3000:]
    assert done.returncode == 0, summary
    assert "generated" in summary and " passed" in summary
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log, log[-5000:]
