"""A migration's mapping: what the run made on B, written before it is made, kept in the
journal record, and read back by a resumed run or a rollback."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from ephyra.tenants.mapping import CREATED, DELETED, INTENT, REUSED, Mapping, tag


def mapping() -> tuple[Mapping, list[str]]:
    record: dict[str, Any] = {"mapping": {}}
    saved: list[str] = []
    return Mapping(record["mapping"], lambda: saved.append(json.dumps(record))), saved


def test_an_intent_is_saved_before_the_thing_exists_and_has_no_id_on_b() -> None:
    m, saved = mapping()
    m.intend("network", "a-net", "net")
    assert m.state("network", "a-net") == INTENT
    assert m.b_of("network", "a-net") == ""  # a resume must look for it, not trust it
    assert json.loads(saved[-1])["mapping"]["network:a-net"]["state"] == INTENT
    m.created("network", "a-net", "b-net")
    assert m.b_of("network", "a-net") == "b-net"
    assert len(saved) == 2


def test_what_is_on_b_already_cannot_be_meant_again() -> None:
    m, _ = mapping()
    m.created("server", "a-1", "b-1")
    with pytest.raises(ValueError, match="on B already"):
        m.intend("server", "a-1", "vm")
    m.reused("flavor", "a-f", "m1", "b-f")
    with pytest.raises(ValueError):
        m.intend("flavor", "a-f", "m1")


def test_entries_by_kind_and_state_in_the_order_they_were_made() -> None:
    m, _ = mapping()
    m.created("image", "a-2", "b-2")
    m.reused("image", "a-1", "img1", "b-1")
    m.intend("image", "a-3", "img3")
    m.created("server", "a-s", "b-s")
    m.deleted("image", "a-2")
    assert [e["a"] for e in m.entries("image")] == ["a-2", "a-1", "a-3"]
    assert [e["a"] for e in m.entries("image", CREATED, INTENT)] == ["a-3"]
    assert m.b_of("image", "a-2") == ""  # deleted: not on B
    assert m.counts() == {"image": {DELETED: 1, REUSED: 1, INTENT: 1}, "server": {CREATED: 1}}


def test_a_note_keeps_what_b_had_before() -> None:
    m, _ = mapping()
    m.intend("quota", "compute", "compute", before={"cores": 20})
    m.created("quota", "compute", "compute")
    (entry,) = m.entries("quota", CREATED)
    assert entry["before"] == {"cores": 20}


def test_servers_moved_at_once_keep_every_entry() -> None:
    m, saved = mapping()

    def move(n: int) -> None:
        m.intend("server", f"a-{n}", f"vm{n}")
        m.created("server", f"a-{n}", f"b-{n}")

    threads = [threading.Thread(target=move, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {m.b_of("server", f"a-{n}") for n in range(16)} == {f"b-{n}" for n in range(16)}
    assert len(json.loads(saved[-1])["mapping"]) == 16


def test_neutron_marks_name_the_run_and_the_id_on_a() -> None:
    assert tag("run-1", "a-net") == ["ephyra_run:run-1", "ephyra_from:a-net"]
    assert all(len(t) <= 60 for t in tag("8" * 36, "f" * 36))  # Neutron's tag length
