"""Slots on ``file://`` locks: N slots, N+1 takers in processes of their own, at most N
hold one at once; a holder killed (-9) frees its slot; in one process, the threads of one
``Slots`` never share a slot, and a stop request ends a wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ephyra.engine.locks import RunLock, started
from ephyra.engine.slots import Slots
from ephyra.errors import PauseRequested, UsageError

NAME = "tenant-migration into b"
LIMIT = 300.0  # seconds: a bound on waiting for another process (a busy machine), never a proof

#: One taker: takes a slot, writes ``enter-K`` (the slot, a monotonic time), waits for
#: ``go-K``, writes ``leave-K`` (a monotonic time) and gives the slot back. It writes
#: ``waiting-K`` (what it said) when it finds every slot held.
TAKER = """
import sys, time
from pathlib import Path
from ephyra.engine.slots import Slots

url, count, here, k = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]

def said(text):
    (here / f"waiting-{k}.tmp").write_text(text)
    (here / f"waiting-{k}.tmp").rename(here / f"waiting-{k}")

with Slots(sys.argv[5], count, url, message=said, poll=0.05) as slots:
    index = slots.take()
    (here / f"enter-{k}.tmp").write_text(f"{index} {time.monotonic()}")
    (here / f"enter-{k}.tmp").rename(here / f"enter-{k}")
    while not (here / f"go-{k}").exists():
        time.sleep(0.02)
    (here / f"leave-{k}.tmp").write_text(str(time.monotonic()))
    (here / f"leave-{k}.tmp").rename(here / f"leave-{k}")
    slots.give(index)
"""


def wait_until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + LIMIT
    while not check():
        assert time.monotonic() < deadline, f"still not {what} after {LIMIT:.0f} s"
        time.sleep(0.02)


class Takers:
    def __init__(self, here: Path, count: int) -> None:
        self.here, self.count = here, count
        self.url = f"file://{here / 'locks'}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, k: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        argv = [sys.executable, "-c", TAKER, self.url, str(self.count), str(self.here), k, NAME]
        with (self.here / f"err-{k}").open("wb") as err:
            self.procs[k] = subprocess.Popen(argv, env=env, stderr=err)

    def said(self, k: str) -> str:
        return (self.here / f"err-{k}").read_text()

    def marked(self, mark: str) -> set[str]:
        return {k for k in self.procs if (self.here / f"{mark}-{k}").exists()}

    def entered(self, k: str) -> tuple[int, float]:
        index, at = (self.here / f"enter-{k}").read_text().split()
        return int(index), float(at)

    def left(self, k: str) -> float:
        return float((self.here / f"leave-{k}").read_text())

    def exited(self, k: str) -> int:
        return self.procs[k].wait(LIMIT)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(LIMIT)


@pytest.fixture
def takers(tmp_path: Path) -> Iterator[Callable[[int], Takers]]:
    made: list[Takers] = []

    def make(count: int) -> Takers:
        (tmp_path / "locks").mkdir(exist_ok=True)
        made.append(Takers(tmp_path, count))
        return made[-1]

    yield make
    for t in made:
        t.stop()


def test_n_slots_hold_n_takers_of_n_plus_1_processes_at_once(
    takers: Callable[[int], Takers],
) -> None:
    t = takers(2)
    for k in ("1", "2", "3"):
        t.start(k)
    wait_until("two in", lambda: len(t.marked("enter")) == 2)
    first = t.marked("enter")
    (last,) = {"1", "2", "3"} - first
    wait_until(f"{last} waiting", lambda: t.marked("waiting") == {last})
    assert (t.here / f"waiting-{last}").read_text() == (
        f"waiting for a slot of {NAME}: 2 of 2 held by other runs"
    )
    assert t.marked("enter") == first  # it waits while both are held
    assert {t.entered(k)[0] for k in first} == {0, 1}

    gone = min(first)
    (t.here / f"go-{gone}").touch()
    wait_until(f"{last} in", lambda: last in t.marked("enter"))
    assert t.exited(gone) == 0
    index, entered = t.entered(last)
    assert index == t.entered(gone)[0]  # the slot given back
    assert entered > t.left(gone)  # not before it was given back
    for k in ("1", "2", "3"):
        (t.here / f"go-{k}").touch()
    assert [t.exited(k) for k in ("1", "2", "3")] == [0, 0, 0]
    assert "Unreleased lock" not in t.said(last)  # refused slots were not thought held
    # at most 2 at once over the whole run: every enter saw at most 1 other inside
    spans = [(t.entered(k)[1], t.left(k)) for k in ("1", "2", "3")]
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2


def test_a_holder_killed_9_frees_its_slot(takers: Callable[[int], Takers]) -> None:
    t = takers(1)
    t.start("holder")
    wait_until("holder in", lambda: t.marked("enter") == {"holder"})
    t.start("next")
    wait_until("next waiting", lambda: t.marked("waiting") == {"next"})
    assert t.marked("enter") == {"holder"}
    t.procs["holder"].send_signal(signal.SIGKILL)
    assert t.exited("holder") == -signal.SIGKILL
    wait_until("next in", lambda: "next" in t.marked("enter"))
    assert t.entered("next")[0] == 0
    (t.here / "go-next").touch()
    assert t.exited("next") == 0


def test_threads_of_one_slots_never_share_a_slot(tmp_path: Path) -> None:
    url = f"file://{tmp_path}"
    with Slots(NAME, 2, url) as slots:
        got: list[int] = []
        threads = [threading.Thread(target=lambda: got.append(slots.take())) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(LIMIT)
        assert sorted(got) == [0, 1]
        assert slots.held() == 2
        assert slots.try_take() is None
        slots.give(0)
        assert slots.try_take() == 0


def test_another_slots_of_this_process_waits_and_a_stop_request_ends_the_wait(
    tmp_path: Path,
) -> None:
    url = f"file://{tmp_path}"
    said: list[str] = []
    polls = 0

    def checkpoint() -> None:
        nonlocal polls
        polls += 1
        if polls == 3:
            raise PauseRequested("pause requested")

    with Slots(NAME, 1, url) as mine:
        assert mine.take() == 0
        other = Slots(NAME, 1, url, checkpoint=checkpoint, message=said.append, poll=0)
        with other, pytest.raises(PauseRequested):
            other.take()
        assert said == [f"waiting for a slot of {NAME}: 1 of 1 held by other runs"]
        assert polls == 3
    with Slots(NAME, 3, url) as wider:  # slots 0..2: the first is free again
        assert [wider.take() for _ in range(3)] == [0, 1, 2]


def test_at_least_one_slot() -> None:
    with pytest.raises(UsageError, match="at least 1 slot"):
        Slots(NAME, 0)


def test_locks_sharing_a_coordinator_leave_it_to_its_owner(tmp_path: Path) -> None:
    url = f"file://{tmp_path}"
    coord = started(url)
    try:
        first, second = RunLock("x", url, coord), RunLock("y", url, coord)
        assert first.try_acquire() and second.try_acquire()
        first.close()  # released; the coordinator goes on for the other
        assert second.still_held() and not first.held
        with RunLock("x", url) as again:
            assert again.try_acquire()
        second.close()
    finally:
        coord.stop()


# -- the tenant migration's numbers: N slots of B, bytes shared by them --------------------
def body(**numbers: int) -> object:
    from ephyra.tenants.migrate_body import TenantMigrationBody

    return TenantMigrationBody.build(source="a", target="b", project="p", **numbers)


def test_a_migration_needs_one_slot_and_one_chunk_per_slot() -> None:
    from ephyra.tenants.migrate_body import CHUNK

    body(concurrency=4, bytes_in_flight=4 * CHUNK)
    with pytest.raises(UsageError, match=r"at least one chunk .* 262144 for concurrency 4"):
        body(concurrency=4, bytes_in_flight=4 * CHUNK - 1)
    for wrong in (0, 65):
        with pytest.raises(UsageError, match="concurrency"):
            body(concurrency=wrong)


def test_a_resumed_migration_keeps_its_bytes_and_checks_its_new_concurrency() -> None:
    from ephyra.engine.journal import RunInfo
    from ephyra.engine.states import RunState
    from ephyra.tenants.migrate_body import CHUNK
    from ephyra.tenants.migrate_kind import TenantMigrationKind

    kind = TenantMigrationKind()
    run = RunInfo("r1", kind.name, RunState.PAUSED, {"settings": {"bytes_in_flight": 2 * CHUNK}})
    assert kind.resumed(run, {"concurrency": 2}) == {
        "settings": {"bytes_in_flight": 2 * CHUNK, "concurrency": 2}
    }
    with pytest.raises(UsageError, match="at least one chunk"):
        kind.resumed(run, {"concurrency": 3})
    with pytest.raises(UsageError, match="from 1 to 64 slots"):
        kind.resumed(run, {"concurrency": 0})
