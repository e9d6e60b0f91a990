"""Finishing a moved tenant: A's originals deleted, and the run's own things on both sides
(its snapshots on A, its transfer images and the key pairs its user held for the boots on
B), and nothing else."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest import mock

from ephyra.tenants import takeback
from ephyra.tenants.mapping import CREATED, DELETED, REUSED, Mapping
from ephyra.tenants.transfer import Move


class Compute:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []

    def delete_server(self, ident: str) -> None:
        self.deleted.append(("server", ident))

    def get_server(self, ident: str) -> Any:
        from openstack import exceptions

        raise exceptions.NotFoundException(f"no server {ident}")

    def delete_keypair(self, name: str) -> None:
        self.deleted.append(("keypair", name))


def move(entries: dict[str, dict[str, Any]]) -> tuple[Move, Compute, Compute]:
    a, b = Compute(), Compute()
    made = Move(
        run_id="run-1",
        project="p",
        source="a",
        target="b",
        a=SimpleNamespace(compute=a),
        b=SimpleNamespace(compute=b),
        mapping=Mapping(entries, lambda: None),
        users={},
        scoped=lambda: None,
    )
    return made, a, b


def test_finish_deletes_the_originals_and_the_key_pairs_held_for_the_boots() -> None:
    m, a, b = move({})
    m.mapping.created("server", "a-1", "b-1")
    m.mapping.created("transfer_keypair", "key1", "key1")
    m.mapping.reused("transfer_keypair", "key2", "key2", "key2")  # the user's own: kept
    with mock.patch.object(takeback, "_images") as images:
        takeback.delete_originals(m)
    assert a.deleted == [("server", "a-1")]
    assert b.deleted == [("keypair", "key1")]
    assert m.mapping.state("transfer_keypair", "key1") == DELETED
    assert m.mapping.state("transfer_keypair", "key2") == REUSED
    assert m.mapping.get("original", "a-1") == {"kind": "original", "a": "a-1", "state": DELETED}
    assert [c.args[1] for c in images.call_args_list] == ["snapshot", "transfer"]


def test_a_finish_run_again_deletes_nothing_twice() -> None:
    m, a, b = move({})
    m.mapping.created("server", "a-1", "b-1")
    m.mapping.created("transfer_keypair", "key1", "key1")
    with mock.patch.object(takeback, "_images"):
        takeback.delete_originals(m)
        takeback.delete_originals(m)  # a finish killed after it, run again
    assert a.deleted == [("server", "a-1")]
    assert b.deleted == [("keypair", "key1")]
    assert m.mapping.state("server", "a-1") == CREATED  # its copy runs on B
