"""A private PostgreSQL server (Debian's ``postgresql`` package) on a free loopback port.

Nova runs several processes against one database, which SQLite cannot serve ("database is
locked"). The cluster is created fresh by every :meth:`Postgres.start` with trust
authentication and no durability (``fsync = off``), in ``data_dir``, and runs as the
``postgres`` user when the testbed runs as root (PostgreSQL refuses root).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from testbed.daemon import Daemon, give_to, run, service_user
from testbed.ironic import LOOPBACK, TestbedError, free_port

BIN_ROOT = Path("/usr/lib/postgresql")

#: Server settings: loopback only, fast rather than durable, enough connections for Nova.
SETTINGS = {
    "listen_addresses": LOOPBACK,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


def pg_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory."""
    versions = sorted(
        (p for p in BIN_ROOT.glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise TestbedError("PostgreSQL is not installed (scripts/bootstrap.sh installs it)")
    return versions[-1]


class Postgres:
    """One PostgreSQL cluster: ``data_dir`` must be reachable by the ``postgres`` user."""

    user = "postgres"

    def __init__(self, data_dir: Path, log: Path, port: int = 0) -> None:
        self.data_dir = data_dir
        self.log = log
        self.port = port or free_port()
        self.owner = service_user(self.user)
        bin_dir = pg_bin_dir()
        self._initdb = str(bin_dir / "initdb")
        settings = {**SETTINGS, "port": str(self.port), "unix_socket_directories": str(data_dir)}
        argv = [str(bin_dir / "postgres"), "-D", str(data_dir / "data")]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave.
        self.daemon = Daemon(
            "postgres", argv, log, cwd=data_dir, owner=self.owner, stop_signal=signal.SIGINT
        )

    def url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg2://{self.user}@{LOOPBACK}:{self.port}/{database}"

    def start(self, databases: Iterable[str] = (), timeout: float = 30.0) -> None:
        """Create a fresh cluster, start the server, create ``databases``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        give_to(self.data_dir, self.owner)
        initdb = [self._initdb, "-D", str(self.data_dir / "data"), "-U", self.user, "-A", "trust"]
        initdb += ["-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]
        run(initdb, self.log, cwd=self.data_dir, owner=self.owner)
        self.daemon.start()
        self.daemon.wait_until(self._answers, timeout, "accepting connections")
        self.create_databases(*databases)

    def create_databases(self, *names: str) -> None:
        """Create empty databases ``names`` (tests sharing one server make their own)."""
        conn = self._connect("postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                for name in names:
                    cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def query(self, database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement (the testbed checks Nova's progress with it)."""
        conn = self._connect(database)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return [tuple(row) for row in cursor.fetchall()]
        finally:
            conn.close()

    def execute(self, database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement and commit it; the rows it returns (``RETURNING``)."""
        conn = self._connect(database)
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(sql, params)
                return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        finally:
            conn.close()

    def _connect(self, database: str) -> Any:
        import psycopg2

        return psycopg2.connect(
            host=LOOPBACK, port=self.port, user=self.user, dbname=database, connect_timeout=2
        )

    def _answers(self) -> bool:
        import psycopg2

        try:
            self._connect("postgres").close()
        except psycopg2.OperationalError:
            time.sleep(0.05)
            return False
        return True

    def stop(self) -> None:
        self.daemon.stop()
