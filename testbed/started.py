"""A testbed service as a context manager: ``with Service(...) as s`` starts it, and
stops it on the way out, whatever happened inside."""

from __future__ import annotations

from typing import Any, Self


class Started:
    """Mixed into a testbed service that has ``start()`` and ``stop()``."""

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
