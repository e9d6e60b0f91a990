"""The messaging notifier's message: oslo.messaging's format, a stable message id."""

from __future__ import annotations

import socket

import pytest

from ephyra.notifiers.base import Notification
from ephyra.notifiers.messaging import MessagingNotifier

NOTE = Notification("run-1.3", "ephyra.step.error", "run-1", "upgrade", 0.0, 3,
                    {"node": "c1", "step": "drain"}, "ERROR")  # fmt: skip


def test_the_message_is_as_oslo_messaging_makes_it() -> None:
    notifier = MessagingNotifier("bus", {"url": "rabbit://guest:guest@127.0.0.1:1/"})
    message = notifier.message(NOTE)
    assert message["publisher_id"] == f"ephyra.{socket.gethostname()}"
    assert (message["event_type"], message["priority"]) == ("ephyra.step.error", "ERROR")
    assert message["payload"] == {
        "id": "run-1.3",
        "run": "run-1",
        "kind": "upgrade",
        "seq": 3,
        "node": "c1",
        "step": "drain",
    }
    assert message["timestamp"] == "1970-01-01 00:00:00"
    assert message["message_id"] == notifier.message(NOTE)["message_id"]  # on every delivery


@pytest.mark.parametrize(
    "options",
    [{}, {"url": "localhost"}, {"url": "rabbit://h/", "topics": []},
     {"url": "rabbit://h/", "retry": -1}, {"url": "rabbit://h/", "exchange": "x"}],
)  # fmt: skip
def test_a_bad_configuration_is_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MessagingNotifier.check(options)
