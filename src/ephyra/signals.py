"""Ctrl-C and SIGTERM, handled the same way by every long-running command."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

STOPPING = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def on_stop(handler: Callable[[signal.Signals], None]) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM call ``handler`` with the signal instead of ending
    the process. Only the main thread can take signals: elsewhere nothing changes (a server
    driving runs in threads keeps its own)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: Any) -> None:
        handler(signal.Signals(signum))

    previous = {s: signal.signal(s, on_signal) for s in STOPPING}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
