"""The jobboard: runs posted as TaskFlow jobs on etcd, for ``ephyra conductor`` workers.

A board URL is ``etcd3+http://HOST:PORT[/PATH][?ttl=SECONDS]`` (``etcd3+https`` too):
TaskFlow's :class:`EtcdJobBoard` keeping its jobs under ``/taskflow/jobs/PATH`` (PATH
defaults to ``ephyra``), a claim lasting ``ttl`` seconds (default 10) unless its holder
extends it.

A posted run is a job named ``KIND RUN-ID`` whose book is the run's logbook in the
journal and whose flow detail (``job:<token>``, added to that logbook, one per posting)
holds the factory that rebuilds the job's flow: TaskFlow's ``flow_from_detail``
convention, with :func:`ephyra.engine.jobflow.run_flow` as the factory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from taskflow import engines
from taskflow.jobs.backends.impl_etcd import EtcdJobBoard
from taskflow.persistence import models

from ephyra.engine.jobflow import run_flow
from ephyra.engine.journal import Journal, RunInfo
from ephyra.errors import EphyraError, UsageError
from ephyra.urls import redact

DEFAULT_PATH = "ephyra"
DEFAULT_TTL = 10
SCHEMES = {"etcd3+http": "http", "etcd3+https": "https"}
#: Seconds one etcd request may take before the board gives up on it.
REQUEST_TIMEOUT = 10.0


class BoardError(EphyraError):
    """The board (etcd) could not be reached or refused a change."""


@dataclass(frozen=True)
class BoardURL:
    url: str
    protocol: str
    host: str
    port: int
    path: str
    ttl: int

    @classmethod
    def parse(cls, url: str) -> BoardURL:
        """Read a board URL; UsageError naming what is wrong with it."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise UsageError(
                f"board {redact(url)!r}: expected etcd3+http://HOST:PORT[/PATH][?ttl=SECONDS]"
            )
        try:
            port = parts.port or 2379
        except ValueError as exc:
            raise UsageError(f"board {redact(url)!r}: {exc}") from exc
        if not parts.hostname:
            raise UsageError(f"board {redact(url)!r}: no host")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(options) - {"ttl"})
        if unknown:
            shown = ", ".join(unknown)
            raise UsageError(f"board {redact(url)!r}: unknown option(s) {shown} (ttl only)")
        try:
            ttl = int(options.get("ttl", DEFAULT_TTL))
        except ValueError as exc:
            raise UsageError(f"board {redact(url)!r}: ttl must be whole seconds") from exc
        if ttl < 2:
            raise UsageError(f"board {redact(url)!r}: ttl must be at least 2 seconds")
        path = parts.path.strip("/") or DEFAULT_PATH
        return cls(url, SCHEMES[parts.scheme], parts.hostname, port, path, ttl)

    def conf(self) -> dict[str, Any]:
        """TaskFlow's EtcdJobBoard configuration."""
        return {
            "host": self.host,
            "port": self.port,
            "protocol": self.protocol,
            "path": self.path,
            "ttl": self.ttl,
            "timeout": REQUEST_TIMEOUT,
        }


def job_name(run: RunInfo) -> str:
    return f"{run.kind} {run.id}"


@dataclass(frozen=True)
class Posted:
    """A job on the board, as an operator reads it."""

    name: str
    kind: str
    run: str
    owner: str | None
    sequence: int


class Board:
    """One connection to a jobboard, with the journal as its persistence."""

    def __init__(self, url: str, journal: Journal, name: str = "ephyra") -> None:
        self.url = BoardURL.parse(url)
        self.journal = journal
        self.jobboard: Any = EtcdJobBoard(name, self.url.conf(), persistence=journal.backend)

    @property
    def ttl(self) -> int:
        return self.url.ttl

    def connect(self) -> Board:
        try:
            self.jobboard.connect()  # watches the board: fails unless etcd answers
        except Exception as exc:
            self.close()
            raise BoardError(f"cannot reach the board {redact(self.url.url)}: {exc}") from exc
        return self

    def close(self) -> None:
        if self.jobboard.connected:
            self.jobboard.close()

    def __enter__(self) -> Board:
        return self.connect()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- posting -------------------------------------------------------------------
    def add_job_detail(self, run: RunInfo) -> str:
        """Add to the run's logbook the flow detail of one job driving it; its uuid.

        The run's locks must be held: the logbook's record is written back as read.
        """
        name = f"job:{uuid.uuid4()}"
        detail = models.FlowDetail(name, Journal.detail_id(run.id, name))
        engines.save_factory_details(detail, run_flow, [], {"kind": run.kind, "run_id": run.id})
        conn = self.journal.backend.get_connection()
        try:
            book = conn.get_logbook(run.id, lazy=True)
            book.add(detail)
            conn.save_logbook(book)
        except Exception as exc:
            raise BoardError(f"cannot record the job of run {run.short}: {exc}") from exc
        finally:
            conn.close()
        return str(detail.uuid)

    def post(self, run: RunInfo, flow_uuid: str) -> Any:
        """Post the job of ``run`` (its flow detail ``flow_uuid``); the TaskFlow job."""
        book = models.LogBook(f"{run.kind} run", uuid=run.id)
        details = {"flow_uuid": flow_uuid, "run": run.id, "kind": run.kind}
        try:
            return self.jobboard.post(job_name(run), book=book, details=details)
        except Exception as exc:
            where = redact(self.url.url)
            raise BoardError(f"cannot post run {run.short} on {where}: {exc}") from exc

    def queued(self, run: RunInfo) -> Posted | None:
        """The job of ``run`` already on the board, if any."""
        for job in self.jobs():
            if job.run == run.id:
                return job
        return None

    # -- reading -------------------------------------------------------------------
    def jobs(self) -> list[Posted]:
        try:
            return list(self._jobs())
        except Exception as exc:
            raise BoardError(f"cannot read the board {redact(self.url.url)}: {exc}") from exc

    def _jobs(self) -> Iterator[Posted]:
        for job in self.jobboard.iterjobs(ensure_fresh=True):
            details = job.details or {}
            yield Posted(
                job.name,
                str(details.get("kind", "?")),
                str(details.get("run", "?")),
                self.jobboard.find_owner(job),
                int(job.sequence),
            )
