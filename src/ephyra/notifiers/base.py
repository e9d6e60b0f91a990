"""What a notifier is told, and what a notifier plugin implements.

A :class:`Notification` is made from one event of a run's journal; its ``id`` (the run and
the event's ``seq``) is the same every time the event is delivered, so a receiver that gets
one twice (at least once: a process killed between a send and the record of it) drops the
second. A payload holds names, states and seconds: never a secret or a raw exception.
"""

from __future__ import annotations

import abc
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: The entry-point group of notifier plugins.
NAMESPACE = "ephyra.notifiers"
#: The priorities of a notification (oslo.messaging's words).
INFO, ERROR = "INFO", "ERROR"


@dataclass(frozen=True)
class Notification:
    id: str
    event_type: str
    run: str
    kind: str
    time: float
    seq: int
    payload: Mapping[str, Any] = field(default_factory=dict)
    priority: str = INFO

    def body(self) -> dict[str, Any]:
        """What every notifier sends: the run, its kind, the event's seq, and the payload."""
        return {"run": self.run, "kind": self.kind, "seq": self.seq, **self.payload}


class Notifier(abc.ABC):
    """One configured notifier: made once per process that delivers to it, with the
    ``options`` its configuration gives (checked by :meth:`check`)."""

    #: The options it takes, with their help (any other is refused).
    options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name

    @classmethod
    def check(cls, options: Mapping[str, Any]) -> None:
        """Refuse (ValueError) a configuration this notifier cannot work with."""
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            known = ", ".join(sorted(cls.options)) or "none"
            raise ValueError(f"unknown option(s) {', '.join(unknown)} (known: {known})")

    @abc.abstractmethod
    def send(self, note: Notification) -> None:
        """Deliver ``note``, or raise :class:`NotifyFailed` (it is sent again later)."""

    def close(self) -> None:  # noqa: B027 (most notifiers have nothing to let go of)
        """Let go of connections (the end of a delivery)."""


@dataclass(frozen=True)
class Backoff:
    """Retries with jittered exponential backoff, bounded: ``attempts`` tries at most, the
    n-th wait drawn between half and all of ``first * 2**n`` capped at ``most`` seconds."""

    attempts: int = 5
    first: float = 0.5
    most: float = 8.0

    def delay(self, attempt: int, draw: Callable[[float, float], float] = random.uniform) -> float:
        """The wait after the ``attempt``-th failure (from 0)."""
        ceiling = min(self.most, self.first * (2**attempt))
        return draw(ceiling / 2, ceiling)

    def run(
        self,
        attempt: Callable[[], None],
        retried: Callable[[Exception], bool],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Call ``attempt`` until it returns, raises an error ``retried`` says is final, or
        has failed ``attempts`` times (the last error is raised)."""
        for n in range(self.attempts):
            try:
                attempt()
                return
            except Exception as exc:
                if not retried(exc) or n == self.attempts - 1:
                    raise
                sleep(self.delay(n))
