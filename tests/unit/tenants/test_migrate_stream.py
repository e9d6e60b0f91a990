"""An image's bytes on their way from A to B: sent whole, with their length, and never
more than the run's budget of bytes read from A and not yet sent."""

from __future__ import annotations

import threading

from ephyra.tenants.transfer import CHUNK, Budget, Stream


def test_a_stream_reads_every_byte_once_and_holds_one_chunk_at_a_time() -> None:
    data = bytes(range(256)) * 1000
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    budget = Budget(CHUNK)
    body = Stream(budget, iter(chunks), len(data))
    assert len(body) == len(data)  # sent with a Content-Length
    got = b""
    while piece := body.read(8192):  # as http.client reads a body
        got += piece
        assert budget.used <= CHUNK
    body.close()
    assert got == data
    assert budget.used == 0 and budget.peak == CHUNK


def test_copies_at_once_wait_for_the_budget() -> None:
    budget = Budget(2 * CHUNK)
    bodies = [Stream(budget, iter([b"x" * CHUNK] * 8), 8 * CHUNK) for _ in range(4)]
    seen: list[int] = []

    def send(body: Stream) -> None:
        while body.read(CHUNK):
            seen.append(budget.used)
        body.close()

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert max(seen) <= 2 * CHUNK and budget.peak <= 2 * CHUNK
    assert budget.used == 0
