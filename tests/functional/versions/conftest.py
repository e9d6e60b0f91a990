"""Every test here runs twice: against a real etcd and against the SQLite file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ephyra.versions.keys import Keys
from ephyra.versions.store import Store, open_store
from testbed.etcd import Etcd


@pytest.fixture(params=["etcd", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "etcd":
        server: Etcd = request.getfixturevalue("etcd")
        return server.url
    return f"sqlite:///{tmp_path / 'versions.db'}"


@pytest.fixture
def keys() -> Keys:
    """A prefix of its own for every test: tests share the session's etcd."""
    return Keys(f"/t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened
