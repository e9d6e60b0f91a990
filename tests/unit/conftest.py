"""A new database on the test run's PostgreSQL (tests/conftest.py), for the suites that
run on every journal backend."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported by the fixture: a run without it does not pay for the testbed
    from testbed.postgres import Postgres


@pytest.fixture
def new_database(postgres: Postgres) -> Callable[[], str]:
    """A new, empty database on the session's server: its SQLAlchemy URL."""

    def make() -> str:
        name = f"t{uuid.uuid4().hex[:12]}"
        postgres.create_databases(name)
        return postgres.url(name)

    return make
