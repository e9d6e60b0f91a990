"""The jobboard: runs posted as TaskFlow jobs on etcd, for ``ephyra conductor`` workers.

A board URL is ``etcd3+https://[USER@]HOST:PORT[/PATH]?ca_cert=FILE&cert_cert=FILE&
cert_key=FILE[&ttl=SECONDS]`` (:mod:`ephyra.etcd`; ``etcd3+http://HOST:PORT`` for a plain
etcd): TaskFlow's :class:`EtcdJobBoard` keeping its jobs under ``/taskflow/jobs/PATH``
(PATH defaults to ``ephyra``), a claim lasting ``ttl`` seconds (default 10) unless its
holder extends it.

A posted run is a job named ``KIND RUN-ID`` whose book is the run's logbook in the
journal and whose flow detail (``job:<token>``, added to that logbook, one per posting)
holds the factory that rebuilds the job's flow: TaskFlow's ``flow_from_detail``
convention, with :func:`ephyra.engine.jobflow.run_flow` as the factory.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import requests
from taskflow import engines
from taskflow.jobs.backends.impl_etcd import EtcdJobBoard
from taskflow.persistence import models

from ephyra.engine.jobflow import run_flow
from ephyra.engine.journal import Journal, RunInfo
from ephyra.errors import BoardError, UsageError
from ephyra.etcd import EtcdURL, describe
from ephyra.urls import redact

DEFAULT_PATH = "ephyra"
DEFAULT_TTL = 10
#: Seconds one etcd request may take before the board gives up on it.
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class BoardURL:
    url: str  # as messages show it (no credential)
    etcd: EtcdURL
    path: str
    ttl: int

    @classmethod
    def parse(cls, url: str) -> BoardURL:
        """Read a board URL; UsageError naming what is wrong with it."""
        etcd = EtcdURL.parse(url, own=("ttl",), what="board")
        try:
            ttl = int(etcd.options.get("ttl", DEFAULT_TTL))
        except ValueError:
            raise UsageError(f"board {etcd.shown}: ttl must be whole seconds") from None
        if ttl < 2:
            raise UsageError(f"board {etcd.shown}: ttl must be at least 2 seconds")
        path = etcd.path.strip("/") or DEFAULT_PATH
        return cls(etcd.shown, etcd, path, ttl)

    @property
    def protocol(self) -> str:
        return self.etcd.protocol

    @property
    def host(self) -> str:
        return self.etcd.host

    @property
    def port(self) -> int:
        return self.etcd.port

    def conf(self) -> dict[str, Any]:
        """TaskFlow's EtcdJobBoard configuration (see :class:`_EtcdJobBoard`)."""
        return {
            **self.etcd.client_options(REQUEST_TIMEOUT),
            "session": lambda: self.etcd.session(REQUEST_TIMEOUT),
            "path": self.path,
            "ttl": self.ttl,
        }


def _made(factory: Callable[[], requests.Session]) -> requests.Session:
    return factory()


class _EtcdJobBoard(EtcdJobBoard):  # type: ignore[misc]
    """TaskFlow's etcd jobboard, its client's session (certificates, login) made by
    :mod:`ephyra.etcd` at each connect: given a client instead, its ``connect`` would
    never start the watch that tells it of new jobs."""

    ETCD_CONFIG_OPTIONS = (
        ("host", str),
        ("port", int),
        ("protocol", str),
        ("timeout", float),
        ("session", _made),
    )


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
        self.jobboard: Any = _EtcdJobBoard(name, self.url.conf(), persistence=journal.backend)

    @property
    def ttl(self) -> int:
        return self.url.ttl

    def connect(self) -> Board:
        try:
            self.jobboard.connect()  # watches the board: fails unless etcd answers
        except Exception as exc:
            self.close()
            raise BoardError(f"cannot reach the board {self.url.url}: {describe(exc)}") from exc
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
