"""A run's stop requests (pause, abort), checked at step boundaries and between polls."""

from __future__ import annotations

import threading
from enum import StrEnum

from ephyra.errors import AbortRequested, PauseRequested


class Request(StrEnum):
    PAUSE = "pause"
    ABORT = "abort"


class Control:
    """The run's stop requests, checked between polls of every long wait."""

    def __init__(self) -> None:
        self._request: Request | None = None
        self._event = threading.Event()

    @property
    def request(self) -> Request | None:
        return self._request

    def ask(self, request: Request) -> None:
        if self._request is None or request is Request.ABORT:
            self._request = request
        self._event.set()

    def checkpoint(self) -> None:
        if self._request is Request.ABORT:
            raise AbortRequested("abort requested")
        if self._request is Request.PAUSE:
            raise PauseRequested("pause requested")

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early (and raising) on a stop request."""
        self._event.wait(seconds)
        self.checkpoint()
