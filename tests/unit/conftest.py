"""Services a unit test may need, started once per test run: a PostgreSQL server (the
testbed's, on a free loopback port), for the suites that run on every journal backend."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

if TYPE_CHECKING:  # imported by the fixture: a run without it does not pay for the testbed
    from testbed.postgres import Postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    from testbed.postgres import Postgres

    scratch = Path(tempfile.mkdtemp(prefix="ephyra-unit-pg-"))
    scratch.chmod(0o755)  # PostgreSQL runs as its own user
    server = Postgres(scratch / "pg", scratch / "postgres.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def new_database(postgres: Postgres) -> Callable[[], str]:
    """A new, empty database on the session's server: its SQLAlchemy URL."""

    def make() -> str:
        name = f"t{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(postgres.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return postgres.url(name)

    return make
