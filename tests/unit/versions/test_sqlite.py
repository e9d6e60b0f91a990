"""The SQLite store opened by many threads at once on a new file: none is refused."""

from __future__ import annotations

import threading
from pathlib import Path

from ephyra.versions.sqlite import SqliteStore

THREADS = 8
ROUNDS = 200


def test_stores_opened_at_once_on_a_new_file_are_all_opened(tmp_path: Path) -> None:
    """Switching a new file to WAL answers "locked" at once to the others (no busy
    timeout), and a side file can vanish between a look and its chmod: each round opens
    ``THREADS`` stores on a fresh file at the same moment."""
    failed: list[str] = []
    for n in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'{n}.db'}"
        barrier = threading.Barrier(THREADS, timeout=60)

        def opener(url: str = url, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                SqliteStore(url).put("k", "v")
            except Exception as exc:
                failed.append(repr(exc))

        threads = [threading.Thread(target=opener) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failed == []
