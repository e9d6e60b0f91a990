"""What the API's unit tests share: a journal and locks under the test's directory, and the
app served over them to the callers a test names by token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI

from ephyra.api.app import create_app
from ephyra.api.auth import StaticTokens
from ephyra.api.policy import Policy
from ephyra.operations.local import Local


@pytest.fixture
def local(tmp_path: Path) -> Local:
    return Local(f"sqlite:///{tmp_path}/journal.db", f"file://{tmp_path}/locks")


def app_for(local: Local, tmp_path: Path, callers: dict[str, dict[str, Any]]) -> FastAPI:
    """The app over ``local``, with ``callers`` (token: user, project, roles) its tokens."""
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump(callers))
    return create_app(local, StaticTokens(tokens), Policy())
