"""The webhook notifier: CloudEvents 1.0 in a POST, retried on connection errors, 5xx, 408
and 429, not on another 4xx; against a receiver on 127.0.0.1 (no real waits between tries)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cloudevents.core.bindings import http

from ephyra.errors import NotifyFailed, NotifyRefused
from ephyra.notifiers.base import ERROR, Notification
from ephyra.notifiers.webhook import WebhookNotifier, event_of, verdict

NOTE = Notification(
    id="run-1.7",
    event_type="ephyra.run.end",
    run="run-1",
    kind="evacuate",
    time=1_700_000_000.5,
    seq=7,
    payload={"state": "failed"},
    priority=ERROR,
)


class Receiver:
    def __init__(self) -> None:
        self.script: list[int] = []
        self.got: list[Any] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                message = http.HTTPMessage(headers=dict(self.headers.items()), body=body)
                receiver.got.append(http.from_http_event(message))
                self.send_response(receiver.script.pop(0) if receiver.script else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


def notifier(url: str, slept: list[float], **options: Any) -> WebhookNotifier:
    return WebhookNotifier("hook", {"url": url, **options}, sleep=slept.append)


@pytest.mark.parametrize(
    ("status", "said"),
    [(200, "ok"), (204, "ok"), (500, "retry"), (503, "retry"), (408, "retry"), (429, "retry"),
     (400, "refused"), (401, "refused"), (404, "refused"), (410, "refused")],
)  # fmt: skip
def test_what_an_answer_means(status: int, said: str) -> None:
    assert verdict(status) == said


def test_a_structured_cloudevent_with_the_notifications_id() -> None:
    headers, body = event_of(NOTE)
    assert headers["content-type"].startswith("application/cloudevents+json")
    event = http.from_http_event(http.HTTPMessage(headers=headers, body=body))
    assert event.get_specversion() == "1.0"
    assert (event.get_id(), event.get_type(), event.get_subject()) == (
        "run-1.7",
        "ephyra.run.end",
        "run-1",
    )
    assert event.get_source() == "/ephyra/evacuate"
    assert event.get_data() == {
        "priority": "ERROR",
        "run": "run-1",
        "kind": "evacuate",
        "seq": 7,
        "state": "failed",
    }


def test_503_twice_then_200_is_delivered_on_the_third_try(receiver: Receiver) -> None:
    receiver.script = [503, 503]
    slept: list[float] = []
    notifier(receiver.url, slept).send(NOTE)
    assert [e.get_id() for e in receiver.got] == ["run-1.7"] * 3
    assert len(slept) == 2


@pytest.mark.parametrize("status", [408, 429, 502])
def test_retried_answers(receiver: Receiver, status: int) -> None:
    receiver.script = [status]
    notifier(receiver.url, []).send(NOTE)
    assert len(receiver.got) == 2


@pytest.mark.parametrize("status", [400, 403, 404])
def test_another_4xx_is_refused_without_a_retry(receiver: Receiver, status: int) -> None:
    receiver.script = [status]
    slept: list[float] = []
    with pytest.raises(NotifyRefused, match=f"refused it: HTTP {status}"):
        notifier(receiver.url, slept).send(NOTE)
    assert len(receiver.got) == 1 and slept == []


def test_5xx_every_time_fails_after_the_bounded_tries(receiver: Receiver) -> None:
    receiver.script = [500] * 10
    slept: list[float] = []
    with pytest.raises(NotifyFailed, match="after 3 tries: HTTP 500") as caught:
        notifier(receiver.url, slept, attempts=3).send(NOTE)
    assert not isinstance(caught.value, NotifyRefused)
    assert len(receiver.got) == 3 and len(slept) == 2


def test_nothing_listening_fails_after_the_bounded_tries_without_the_password() -> None:
    from testbed.ironic import free_port

    url = f"http://user:s3cret@127.0.0.1:{free_port()}/hook"
    slept: list[float] = []
    with pytest.raises(NotifyFailed, match="after 2 tries: ConnectionError") as caught:
        notifier(url, slept, attempts=2, timeout=2).send(NOTE)
    assert "s3cret" not in str(caught.value)
    assert len(slept) == 1


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "http://x/", "attempts": 0}, "attempts"),
        ({"url": "http://x/", "timeout": -1}, "timeout"),
        ({"url": "http://x/", "headers": ["a"]}, "headers"),
        ({"url": "http://x/", "verify": False}, "unknown option"),
    ],
)
def test_a_bad_configuration_is_refused(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        WebhookNotifier.check(options)
