"""The state directory and its files: readable by their owner only."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ephyra import paths
from ephyra.engine.journal import Journal
from ephyra.engine.locks import RunLock
from ephyra.versions.sqlite import SqliteStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(paths, "_told", set())
    old = os.umask(0o022)  # the usual umask: what a file gets unless Ephyra says otherwise
    yield tmp_path / "xdg" / "ephyra"
    os.umask(old)


def test_state_dir_follows_xdg(state: Path) -> None:
    assert paths.state_dir() == state


def test_journal_and_its_wal_are_private(state: Path) -> None:
    journal = Journal()
    journal.create_run("test", {"state": "running", "created": 1}, {})
    db = state / "journal.db"
    assert mode(state) == 0o700
    assert mode(db) == 0o600
    assert (state / "journal.db-wal").exists()
    assert {mode(state / f"journal.db{s}") for s in ("-wal", "-shm")} == {0o600}
    journal.close()


def test_an_open_state_dir_and_old_files_are_tightened_once(
    state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state.mkdir(parents=True, mode=0o755)
    os.chmod(state, 0o755)
    for name in ("journal.db", "journal.db-wal"):
        (state / name).touch()
        os.chmod(state / name, 0o644)
    with caplog.at_level(logging.WARNING, logger="ephyra.paths"):
        Journal().close()
        Journal().close()
    assert mode(state) == 0o700
    assert mode(state / "journal.db") == 0o600 and mode(state / "journal.db-wal") == 0o600
    told = [r.getMessage() for r in caplog.records]
    assert told.count(f"{state} was mode 0755, readable by others: now 0700") == 1
    assert f"{state / 'journal.db'} was mode 0644, readable by others: now 0600" in told


def test_store_and_locks_are_private(state: Path) -> None:
    store = SqliteStore(f"sqlite:///{state / 'versions.db'}")
    store.put("/current_version", "2026.2")
    store.close()
    assert mode(state) == 0o700 and mode(state / "versions.db") == 0o600
    with RunLock("forklift cp1 -> cp2") as lock:
        assert lock.try_acquire()
    assert mode(state / "locks") == 0o700


def test_a_directory_the_operator_chose_keeps_its_mode(tmp_path: Path, state: Path) -> None:
    chosen = tmp_path / "shared"
    chosen.mkdir(mode=0o755)
    os.chmod(chosen, 0o755)
    journal = Journal(f"sqlite:///{chosen / 'journal.db'}")
    journal.close()
    assert mode(chosen) == 0o755  # not ours to change
    assert mode(chosen / "journal.db") == 0o600
    made = tmp_path / "new" / "dir"
    Journal(f"sqlite:///{made / 'journal.db'}").close()
    assert mode(made) == 0o700
    assert not state.exists()


def test_private_file_is_never_open_to_others(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = paths.private_file(tmp_path / "secret")
    finally:
        os.umask(old)
    assert mode(path) == 0o600 and path.read_bytes() == b""
    path.write_text("kept")
    os.chmod(path, 0o640)
    paths.private_file(path)
    assert path.read_text() == "kept" and mode(path) == 0o600  # kept, only its mode changes


def test_sqlite_path_of_urls() -> None:
    assert paths.sqlite_path("sqlite:////var/lib/j.db") == Path("/var/lib/j.db")
    assert paths.sqlite_path("sqlite:///rel.db?timeout=5") == Path("rel.db")
    assert paths.sqlite_path("sqlite:///:memory:") is None
    assert paths.sqlite_path("postgresql://u:p@h/db") is None
