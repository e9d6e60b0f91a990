"""Every test here runs twice: against a real etcd and against the SQLite file; the
store's contract and the lifecycle's races run a third time, against an etcd with TLS,
client certificates and authentication (``secure_etcd``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ephyra.versions.keys import Keys
from ephyra.versions.store import Store, open_store
from testbed.etcd import Etcd

BACKENDS = ["etcd", "sqlite"]
#: The modules also run against the secure etcd (the agents' suite is long: once is enough).
ALSO_SECURE = {"test_store", "test_lifecycle"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_url" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rpartition(".")[2]
    backends = [*BACKENDS, "secure-etcd"] if module in ALSO_SECURE else BACKENDS
    metafunc.parametrize("store_url", backends, indirect=True)


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "etcd":
        server: Etcd = request.getfixturevalue("etcd")
        return server.url
    if request.param == "secure-etcd":
        secure: Etcd = request.getfixturevalue("secure_etcd")
        return secure.url
    return f"sqlite:///{tmp_path / 'versions.db'}"


@pytest.fixture
def keys() -> Keys:
    """A prefix of its own for every test: tests share the session's etcd."""
    return Keys(f"/t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened
