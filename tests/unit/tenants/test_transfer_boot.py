"""A server's copy on B is left as the original was before the run: a resumed run reads
A after its own stops, and must not stop on B the copy of a server it stopped on A."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest import mock

from ephyra.tenants import transfer
from ephyra.tenants.mapping import Mapping
from ephyra.tenants.transfer import Move


class Compute:
    def __init__(self) -> None:
        self.status = "ACTIVE"
        self.stopped: list[str] = []

    def get_server(self, ident: str) -> Any:
        return SimpleNamespace(id=ident, status=self.status, fault=None)

    def stop_server(self, ident: str) -> None:
        self.stopped.append(ident)
        self.status = "SHUTOFF"


def booted(status_on_a: str, stopped_by_run: bool) -> list[str]:
    b = Compute()
    mapping = Mapping({}, lambda: None)
    mapping.created("server", "a-1", "b-1")  # booted by an earlier process of the run
    if stopped_by_run:
        mapping.created("stopped", "a-1", "a-1")
    move = Move(
        run_id="run-1",
        project="p",
        source="a",
        target="b",
        a=SimpleNamespace(),
        b=SimpleNamespace(compute=b),
        mapping=mapping,
        users={},
        scoped=lambda: SimpleNamespace(compute=b),
    )
    with mock.patch.object(transfer, "check"):
        transfer.boot(move, {"id": "a-1", "name": "vm", "status": status_on_a}, "img")
    return b.stopped


def test_the_copy_of_a_server_the_run_stopped_on_a_runs_on() -> None:
    assert booted("SHUTOFF", stopped_by_run=True) == []


def test_the_copy_of_a_server_off_before_the_run_is_stopped_too() -> None:
    assert booted("SHUTOFF", stopped_by_run=False) == ["b-1"]
    assert booted("ACTIVE", stopped_by_run=False) == []
