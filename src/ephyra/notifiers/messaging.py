"""The ``messaging`` notifier: oslo.messaging notifications on a transport URL (RabbitMQ),
as OpenStack's services send theirs: message format 2.0 on the topics ``TOPIC.info`` and
``TOPIC.error`` (default topic ``notifications``), publisher ``ephyra.<host>``.

oslo.messaging's Notifier logs a failed send and goes on; this one sends through the same
transport and raises, so that a notification not sent is sent again later from the journal.
The message id is derived from the notification's id: the same on every delivery.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from ephyra.errors import NotifyFailed
from ephyra.notifiers.base import Notification, Notifier
from ephyra.urls import redact, redact_text

#: The namespace of the message ids (uuid5 of the notification's id).
IDS = uuid.UUID("5c0b7d2e-6f7c-4c1e-9a61-2f0e3a9d4b11")


def _oslo_messaging() -> Any:
    """oslo.messaging, imported with oslo.service's threading backend (not eventlet's).

    It brings eventlet (through oslo.service and futurist), whose import in a thread other
    than the one that imports Ephyra breaks that thread: the notifier is made, and this
    imported, in the thread that drives the run, before the delivery's threads start."""
    from oslo_service import backend

    with contextlib.suppress(Exception):  # already chosen in this process: as it is
        backend.init_backend(backend.BackendType.THREADING)
    import oslo_messaging

    return oslo_messaging


class MessagingNotifier(Notifier):
    options: ClassVar[Mapping[str, str]] = {
        "url": "the transport URL (rabbit://USER:PASSWORD@HOST:PORT/VHOST)",
        "topics": "the topics (default: [notifications])",
        "retry": "connection retries per send (default 1; -1 would wait forever: refused)",
    }

    @classmethod
    def check(cls, options: Mapping[str, Any]) -> None:
        super().check(options)
        if not isinstance(options.get("url"), str) or "://" not in options["url"]:
            raise ValueError("url: a transport URL is needed (rabbit://...)")
        topics = options.get("topics", ["notifications"])
        if not (isinstance(topics, list) and topics and all(isinstance(t, str) for t in topics)):
            raise ValueError("topics: a list of topic names")
        retry = options.get("retry", 1)
        if not isinstance(retry, int) or retry < 0:
            raise ValueError("retry: a whole number, 0 or more")

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.url = str(options["url"])
        self.topics = [str(t) for t in options.get("topics", ["notifications"])]
        self.retry = int(options.get("retry", 1))
        self.publisher = f"ephyra.{socket.gethostname()}"
        self._messaging = _oslo_messaging()  # here, not in the thread that sends
        self._transport: Any = None

    def _connected(self) -> Any:
        if self._transport is None:
            from oslo_config import cfg

            conf = cfg.ConfigOpts()
            conf([], project="ephyra", default_config_files=[], default_config_dirs=[])
            self._transport = self._messaging.get_notification_transport(conf, url=self.url)
        return self._transport

    def message(self, note: Notification) -> dict[str, Any]:
        """The message as oslo.messaging's Notifier makes it."""
        when = datetime.datetime.fromtimestamp(note.time, datetime.UTC).replace(tzinfo=None)
        return {
            "message_id": str(uuid.uuid5(IDS, note.id)),
            "publisher_id": self.publisher,
            "event_type": note.event_type,
            "priority": note.priority,
            "payload": {"id": note.id, **note.body()},
            "timestamp": str(when),
        }

    def send(self, note: Notification) -> None:
        message = self.message(note)
        try:
            transport = self._connected()
            for topic in self.topics:
                target = self._messaging.Target(topic=f"{topic}.{note.priority.lower()}")
                transport._send_notification(target, {}, message, version=2.0, retry=self.retry)
        except Exception as exc:
            raise NotifyFailed(
                f"{self.name}: not sent to {redact(self.url)}: "
                f"{redact_text(type(exc).__name__ + ': ' + str(exc))[:300]}"
            ) from exc

    def close(self) -> None:
        if self._transport is not None:
            self._transport.cleanup()
            self._transport = None
