"""The ``log`` notifier: each notification a line on the ``ephyra.notifications`` logger
(INFO, or ERROR for errors), for whatever the process's logging sends on."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from ephyra.notifiers.base import ERROR, Notification, Notifier

LOGGER = logging.getLogger("ephyra.notifications")


class LogNotifier(Notifier):
    options: ClassVar[Mapping[str, str]] = {"logger": "the logger's name (ephyra.notifications)"}

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self._log = logging.getLogger(str(options.get("logger") or LOGGER.name))

    def send(self, note: Notification) -> None:
        level = logging.ERROR if note.priority == ERROR else logging.INFO
        body = json.dumps(note.body(), sort_keys=True, default=str)
        self._log.log(level, "%s %s %s", note.event_type, note.id, body)
