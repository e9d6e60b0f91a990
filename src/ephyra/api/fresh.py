"""Answers of the read routes that many clients poll (run lists and statuses), kept for a
moment: made again once they are ``ttl`` seconds old, by one request while the others
are answered with the one before (so an answer is at most ttl plus one computation old,
and no poller waits behind another's computation)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Hashable
from typing import Any

import anyio

#: Answers kept at most (the oldest half is dropped beyond it).
SIZE = 1000


class Fresh:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._answers: dict[Hashable, tuple[float, bytes]] = {}
        self._making: dict[Hashable, asyncio.Lock] = {}

    async def _make(self, key: Hashable, compute: Callable[[], Any]) -> bytes:
        body = json.dumps(await anyio.to_thread.run_sync(compute), default=str).encode()
        if len(self._answers) >= SIZE:
            for old in sorted(self._answers, key=lambda k: self._answers[k][0])[: SIZE // 2]:
                self._answers.pop(old, None)
        self._answers[key] = (time.monotonic(), body)
        return body

    async def get(self, key: Hashable, compute: Callable[[], Any]) -> bytes:
        """The JSON of ``compute()`` (run in a thread), made at most ttl ago, or the one
        before it while another request makes the next."""
        found = self._answers.get(key)
        if found is not None and time.monotonic() - found[0] < self.ttl:
            return found[1]
        lock = self._making.setdefault(key, asyncio.Lock())
        if found is not None and lock.locked():
            return found[1]
        async with lock:
            again = self._answers.get(key)
            if again is not None and time.monotonic() - again[0] < self.ttl:
                return again[1]
            try:
                return await self._make(key, compute)
            finally:
                if len(self._making) > SIZE:
                    self._making.clear()
