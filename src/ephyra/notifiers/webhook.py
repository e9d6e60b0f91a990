"""The ``webhook`` notifier: each notification a CloudEvent 1.0 (structured JSON) in an
HTTP POST to the configured URL.

A connection error, a timeout, a 5xx, 408 or 429 answer is retried with jittered
exponential backoff, a bounded number of times; then the notification stays undelivered,
and is sent again later (from the journal). Another 4xx answer is final: the receiver
refused it, and it is not sent again. The CloudEvent's ``id`` is the notification's: the
same on every delivery, so that a receiver drops one it has seen.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import requests

from ephyra.errors import NotifyFailed, NotifyRefused
from ephyra.notifiers.base import Backoff, Notification, Notifier
from ephyra.urls import redact

LOG = logging.getLogger(__name__)
#: The 4xx answers that say "try again later".
RETRIED_4XX = frozenset({408, 429})
SOURCE = "/ephyra"


def event_of(note: Notification) -> tuple[dict[str, str], bytes]:
    """The notification as a structured CloudEvent: HTTP headers and body."""
    from cloudevents.core.bindings import http
    from cloudevents.core.v1.event import CloudEvent

    event = CloudEvent(
        attributes={
            "id": note.id,
            "source": f"{SOURCE}/{note.kind}",
            "type": note.event_type,
            "subject": note.run,
            "time": datetime.datetime.fromtimestamp(note.time, datetime.UTC),
            "datacontenttype": "application/json",
        },
        data={"priority": note.priority, **note.body()},
    )
    message = http.to_structured_event(event)
    return dict(message.headers), message.body


def verdict(status: int) -> str:
    """What an answer means: ``ok``, ``retry`` or ``refused``."""
    if 200 <= status < 300:
        return "ok"
    if status >= 500 or status in RETRIED_4XX:
        return "retry"
    return "refused"


class WebhookNotifier(Notifier):
    options: ClassVar[Mapping[str, str]] = {
        "url": "where to POST (http:// or https://)",
        "timeout": "seconds to connect and to read the answer (5)",
        "attempts": "tries per delivery, at most (5)",
        "backoff": "the first wait between tries, in seconds, doubled each time (0.5)",
        "backoff_max": "the longest wait between tries, in seconds (8)",
        "headers": "headers to send (a token: this file is private)",
    }

    @classmethod
    def check(cls, options: Mapping[str, Any]) -> None:
        super().check(options)
        url = options.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError("url: an http:// or https:// URL is needed")
        for key in ("timeout", "backoff", "backoff_max"):
            value = options.get(key, 1)
            if not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{key}: a number of seconds above 0")
        attempts = options.get("attempts", 5)
        if not isinstance(attempts, int) or not 1 <= attempts <= 100:
            raise ValueError("attempts: a whole number from 1 to 100")
        headers = options.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ValueError("headers: a mapping of names to text")

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(name, options)
        self.url = str(options["url"])
        self.timeout = float(options.get("timeout", 5))
        self.backoff = Backoff(
            attempts=int(options.get("attempts", 5)),
            first=float(options.get("backoff", 0.5)),
            most=float(options.get("backoff_max", 8)),
        )
        self.headers = dict(options.get("headers", {}))
        self._session = requests.Session()
        self._sleep = sleep

    def _post(self, headers: dict[str, str], body: bytes) -> None:
        try:
            answer = self._session.post(
                self.url, data=body, headers={**self.headers, **headers}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise NotifyFailed(type(exc).__name__) from None
        answer.close()
        said = verdict(answer.status_code)
        if said == "retry":
            raise NotifyFailed(f"HTTP {answer.status_code}")
        if said == "refused":
            raise NotifyRefused(
                f"{self.name}: {redact(self.url)} refused it: HTTP {answer.status_code}"
            )

    def send(self, note: Notification) -> None:
        headers, body = event_of(note)
        retried = lambda exc: type(exc) is NotifyFailed  # noqa: E731  (not NotifyRefused)
        try:
            if self._sleep is None:
                self.backoff.run(lambda: self._post(headers, body), retried)
            else:
                self.backoff.run(lambda: self._post(headers, body), retried, self._sleep)
        except NotifyRefused:
            raise
        except NotifyFailed as exc:
            raise NotifyFailed(
                f"{self.name}: not delivered to {redact(self.url)} after "
                f"{self.backoff.attempts} tries: {exc}"
            ) from None

    def close(self) -> None:
        self._session.close()
