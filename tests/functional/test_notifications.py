"""Notifications of a real run (the files kind of ``tests.kinds.files``, which needs no
cloud) on a real RabbitMQ and to a webhook receiver on 127.0.0.1, through the ``ephyra``
command line.

What an operator (or the receiving system) checks: every notification arrives, in the
order of the run's events, the same sequence on the bus and on the webhook; a run killed
-9 and resumed loses none (a duplicate at the kill point carries the same id); a receiver
answering 503 gets the notification again until it takes it; a receiver that is down
does not stop the run; a name nobody configured is refused before anything runs."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from ephyra.engine import events
from ephyra.engine.journal import Journal
from ephyra.engine.notify import notification
from testbed.ironic import free_port
from testbed.nova import NovaTestbed
from testbed.rabbitmq import RabbitMQ
from tests.functional.ephyra_cli import Ephyra, Result
from tests.functional.test_compute_fate import MICROVERSION

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
#: How long a test waits for a notification to arrive (an event, not a speed).
ARRIVAL = 60.0


# -- receivers -----------------------------------------------------------------------------
class Inbox:
    """What a receiver got, in arrival order; a test waits until it holds enough."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self._seen = threading.Condition()

    def add(self, item: dict[str, Any]) -> None:
        with self._seen:
            self.got.append(item)
            self._seen.notify_all()

    def wait_until(
        self, enough: Callable[[list[dict[str, Any]]], bool], timeout: float = ARRIVAL
    ) -> list[dict[str, Any]]:
        """Block until what arrived is ``enough``; what arrived, in order."""
        with self._seen:
            assert self._seen.wait_for(lambda: enough(self.got), timeout=timeout), self.got
            return list(self.got)

    def wait_for(self, ids: list[str], timeout: float = ARRIVAL) -> list[dict[str, Any]]:
        """Block until every id of ``ids`` has arrived; what arrived, in order."""
        with self._seen:
            arrived = self._seen.wait_for(
                lambda: set(ids) <= {g["id"] for g in self.got}, timeout=timeout
            )
            assert arrived, f"missing {sorted(set(ids) - {g['id'] for g in self.got})}"
            return list(self.got)


class Webhook:
    """An HTTP receiver of CloudEvents on 127.0.0.1: it answers each POST with the next
    status of ``script`` (then 200), and keeps the events it answered 2xx."""

    def __init__(self, port: int | None = None) -> None:
        self.inbox = Inbox()
        self.script: list[int] = []
        self.posts: list[str] = []  # the id of every POST, whatever the answer
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                from cloudevents.core.bindings import http

                body = self.rfile.read(int(self.headers["Content-Length"]))
                message = http.HTTPMessage(headers=dict(self.headers.items()), body=body)
                event = http.from_http_event(message)
                status = hook.script.pop(0) if hook.script else 200
                hook.posts.append(event.get_id())
                if status < 300:
                    data = event.get_data()
                    assert isinstance(data, dict)
                    hook.inbox.add({"id": event.get_id(), "type": event.get_type(), "data": data})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Bus:
    """An oslo.messaging notification listener on the topic ``notifications``."""

    def __init__(self, url: str) -> None:
        import oslo_messaging
        from oslo_config import cfg

        self.inbox = Inbox()
        inbox = self.inbox

        class Endpoint:
            def _got(self, priority: str, publisher: str, event_type: str, payload: Any) -> None:
                inbox.add(
                    {
                        "id": payload["id"],
                        "type": event_type,
                        "priority": priority,
                        "publisher": publisher,
                        "data": payload,
                    }
                )

            def info(
                self, ctxt: Any, publisher: str, event_type: str, payload: Any, meta: Any
            ) -> None:
                self._got("INFO", publisher, event_type, payload)

            def error(
                self, ctxt: Any, publisher: str, event_type: str, payload: Any, meta: Any
            ) -> None:
                self._got("ERROR", publisher, event_type, payload)

        conf = cfg.ConfigOpts()
        conf([], project="ephyra-test", default_config_files=[], default_config_dirs=[])
        self.transport = oslo_messaging.get_notification_transport(conf, url=url)
        self.listener = oslo_messaging.get_notification_listener(
            self.transport,
            [oslo_messaging.Target(topic="notifications")],
            [Endpoint()],
            executor="threading",
        )
        self.listener.start()

    def close(self) -> None:
        self.listener.stop()
        self.listener.wait()
        self.transport.cleanup()


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQ]:
    """One broker for the module (its own user cannot reach pytest's private directory: a
    scratch directory of its own)."""
    scratch = Path(tempfile.mkdtemp(prefix="ephyra-notify-"))
    scratch.chmod(0o755)
    broker = RabbitMQ(scratch / "rabbitmq", tmp_path_factory.mktemp("rabbit-logs"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def bus(rabbit: RabbitMQ) -> Iterator[Bus]:
    found = Bus(rabbit.transport_url)
    yield found
    found.close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    found = Webhook()
    yield found
    found.close()


@pytest.fixture(scope="module")
def kinds_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The installed metadata of a distribution registering the files kind."""
    where = tmp_path_factory.mktemp("testkinds")
    dist = where / "ephyra_testkinds-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ephyra-testkinds\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[ephyra.runs]\nfiles = tests.kinds.files:FilesKind\n")
    return where


def configure(path: Path, notifiers: dict[str, Any], **more: Any) -> Path:
    """The operator's notifier configuration, owner-only."""
    path.write_text(yaml.safe_dump({"notifiers": notifiers, **more}))
    path.chmod(0o600)
    return path


@pytest.fixture
def ephyra(tmp_path: Path, kinds_path: Path) -> Ephyra:
    found = Ephyra(tmp_path / "no-clouds.yaml", tmp_path / "state")
    paths = [str(kinds_path), str(ROOT), found.env.get("PYTHONPATH", "")]
    found.env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    found.env["EPHYRA_NOTIFIERS"] = str(tmp_path / "notifiers.yaml")
    return found


@pytest.fixture
def files(tmp_path: Path) -> Path:
    made = tmp_path / "files"
    made.mkdir()
    return made


# -- what an operator reads ----------------------------------------------------------------
def ok(result: Result, code: int = 0) -> Result:
    assert result.code == code, f"exit {result.code}\n{result.out}\n{result.err}"
    return result


def run_id(result: Result) -> str:
    """``run RUN STATE``, the last line a start or a resume prints."""
    return result.out.split()[1]


def expected(ephyra: Ephyra, run: str) -> list[tuple[str, str]]:
    """The (id, event type) of every notification of the run, from its journal."""
    journal = Journal(f"sqlite:///{ephyra.journal_file}")
    found = [notification(e) for e in events.read(journal.engine, run)]
    return [(n.id, n.event_type) for n in found if n is not None]


def first_of_each(got: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """What a receiver keeps when it drops an id it has seen: (id, type), in order."""
    seen: set[str] = set()
    kept = []
    for item in got:
        if item["id"] not in seen:
            seen.add(item["id"])
            kept.append((item["id"], item["type"]))
    return kept


def of_run(got: list[dict[str, Any]], run: str) -> list[dict[str, Any]]:
    return [g for g in got if g["data"]["run"] == run]


# -- the tests -----------------------------------------------------------------------------
def test_every_notification_in_order_on_the_bus_and_the_webhook(
    ephyra: Ephyra, tmp_path: Path, files: Path, rabbit: RabbitMQ, bus: Bus, webhook: Webhook
) -> None:
    configure(
        tmp_path / "notifiers.yaml",
        {
            "bus": {"type": "messaging", "url": rabbit.transport_url},
            "hook": {"type": "webhook", "url": webhook.url},
        },
        default=["bus"],
    )
    started = ok(ephyra("files", "start", "--dir", str(files), "--steps", "3", "--yes",
                        "--notify", "bus", "--notify", "hook"))  # fmt: skip
    run = run_id(started)
    wanted = expected(ephyra, run)
    ids = [i for i, _ in wanted]
    assert [t for _, t in wanted] == ["ephyra.run.start", "ephyra.run.state", "ephyra.run.end"]
    on_bus = of_run(bus.inbox.wait_for(ids), run)
    on_hook = of_run(webhook.inbox.wait_for(ids), run)
    assert first_of_each(on_bus) == wanted
    assert first_of_each(on_hook) == wanted
    end = on_hook[-1]["data"]
    assert (end["kind"], end["state"]) == ("files", "succeeded")
    assert on_bus[-1]["data"]["state"] == "succeeded"
    assert {g["publisher"] for g in on_bus} == {f"ephyra.{os.uname().nodename}"}
    assert "guest:guest" not in json.dumps(on_bus + on_hook)


def test_killed_run_resumed_loses_no_notification(
    ephyra: Ephyra, tmp_path: Path, files: Path, rabbit: RabbitMQ, bus: Bus, webhook: Webhook
) -> None:
    configure(
        tmp_path / "notifiers.yaml",
        {
            "bus": {"type": "messaging", "url": rabbit.transport_url},
            "hook": {"type": "webhook", "url": webhook.url},
        },
        default=["bus", "hook"],  # the run names none: the default, kept with the run
    )
    first = ephyra.background("files", "start", "--dir", str(files), "--steps", "3", "--hold",
                              "--yes")  # fmt: skip
    (files / "begin-0").touch()
    (files / "end-0").touch()
    first.wait_for(lambda line: "waiting for begin-1" in line)
    first.kill()  # kill -9 between two steps
    journal = Journal(f"sqlite:///{ephyra.journal_file}")
    run = journal.runs("files")[-1].id
    for gate in ("begin-1", "end-1", "begin-2", "end-2"):
        (files / gate).touch()
    configure(  # the default changed since: the run keeps the notifiers it started with
        tmp_path / "notifiers.yaml",
        {
            "bus": {"type": "messaging", "url": rabbit.transport_url},
            "hook": {"type": "webhook", "url": webhook.url},
        },
    )
    resumed = ok(ephyra("files", "resume", run))
    assert run_id(resumed) == run
    wanted = expected(ephyra, run)
    types = [t for _, t in wanted]
    assert types.count("ephyra.run.start") == 2  # one per process
    assert types[-2:] == ["ephyra.run.state", "ephyra.run.end"]
    ids = [i for i, _ in wanted]
    for inbox in (bus.inbox, webhook.inbox):
        got = of_run(inbox.wait_for(ids), run)
        assert first_of_each(got) == wanted  # every one, in order
        assert len(got) <= len(wanted) + 1  # a duplicate at most, at the kill point


def test_webhook_answering_503_twice_gets_the_event_again(
    ephyra: Ephyra, tmp_path: Path, files: Path, webhook: Webhook
) -> None:
    configure(
        tmp_path / "notifiers.yaml",
        {"hook": {"type": "webhook", "url": webhook.url, "backoff": 0.05, "attempts": 5}},
    )
    webhook.script = [503, 503]
    run = run_id(ok(ephyra("files", "start", "--dir", str(files), "--steps", "2", "--yes",
                           "--notify", "hook")))  # fmt: skip
    wanted = expected(ephyra, run)
    got = webhook.inbox.wait_for([i for i, _ in wanted])
    assert first_of_each(got) == wanted
    assert webhook.posts[:3] == [wanted[0][0]] * 3  # the first event, tried three times
    assert len(webhook.posts) == len(wanted) + 2


def test_a_receiver_down_does_not_stop_the_run(ephyra: Ephyra, tmp_path: Path, files: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/events"  # nothing listens there
    configure(
        tmp_path / "notifiers.yaml",
        {"hook": {"type": "webhook", "url": down, "attempts": 2, "backoff": 0.05}},
        flush_seconds=1,
    )
    started = ok(ephyra("files", "start", "--dir", str(files), "--steps", "3", "--yes",
                        "--notify", "hook"))  # fmt: skip
    assert started.out.split()[2] == "succeeded"
    assert sorted(p.name for p in files.glob("step-*")) == ["step-0", "step-1", "step-2"]
    assert "not all delivered to hook" in started.err
    assert "wait in the journal" in started.err


def test_unknown_notifier_is_refused_before_anything_runs(
    ephyra: Ephyra, tmp_path: Path, files: Path
) -> None:
    configure(tmp_path / "notifiers.yaml", {"hook": {"type": "webhook", "url": "http://x/"}})
    refused = ephyra("files", "start", "--dir", str(files), "--steps", "1", "--yes",
                     "--notify", "nope")  # fmt: skip
    assert refused.code == 2
    assert "no notifier named 'nope' (configured: hook, log)" in refused.err
    assert list(files.iterdir()) == []
    assert ok(ephyra("files", "list", "-f", "json")).out.strip() == "[]"


def test_configuration_readable_by_others_is_refused(
    ephyra: Ephyra, tmp_path: Path, files: Path
) -> None:
    path = configure(tmp_path / "notifiers.yaml", {"hook": {"type": "webhook", "url": "http://x/"}})
    path.chmod(0o644)
    refused = ephyra("files", "start", "--dir", str(files), "--steps", "1", "--yes")
    assert refused.code == 2
    assert "readable by others" in refused.err and "chmod 600" in refused.err


def test_host_maintenance_notices_by_hand_and_by_an_evacuation(
    clean_nova: NovaTestbed, tmp_path: Path, webhook: Webhook
) -> None:
    """``ephyra host maintenance on|off`` and an evacuation and its rollback tell the
    configured default notifiers of each host put in and out of maintenance, and the
    evacuation of each server left running on its host as its owner asked (``notify``)."""
    ephyra = Ephyra(clean_nova.clouds_yaml, tmp_path / "state")
    hook = {"hook": {"type": "webhook", "url": webhook.url}}
    path = configure(tmp_path / "notifiers.yaml", hook, default=["hook"])
    ephyra.env["EPHYRA_NOTIFIERS"] = str(path)
    ok(ephyra("host", "maintenance", "on", "compute-3", "--os-cloud", "nova"))
    ok(ephyra("host", "maintenance", "off", "compute-3", "--os-cloud", "nova"))
    moved, left = clean_nova.boot("compute-1", 2)
    compute = clean_nova.connect().compute
    asked = compute.post(
        f"/servers/{left}/metadata",
        json={"metadata": {"ephyra:maintenance": "notify"}},
        microversion=MICROVERSION,
    )
    assert asked.status_code == 200, asked.text
    ok(ephyra("host", "evacuate", "--os-cloud", "nova", "--yes", "compute-1"))
    assert {s.id for s in clean_nova.servers_on("compute-1")} == {left}  # the other moved
    ok(ephyra("host", "rollback"))
    host = "ephyra.host.maintenance."

    def notices(got: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        return [
            (g["type"].removeprefix(host), g["data"]["host"], g["data"]["kind"])
            for g in got
            if g["type"].startswith(host)
        ]

    got = webhook.inbox.wait_until(lambda got: len(notices(got)) >= 4)
    assert notices(got) == [
        ("start", "compute-3", "maintenance"),
        ("end", "compute-3", "maintenance"),
        ("start", "compute-1", "evacuate"),
        ("end", "compute-1", "evacuate"),
    ]
    by_hand = [g for g in got if g["data"]["kind"] == "maintenance"]
    assert by_hand[0]["data"]["run"] == by_hand[1]["data"]["run"]  # the record of the maintenance
    assert {g["data"]["cloud"] for g in got if g["type"].startswith(host)} == {"nova"}
    runs = [g for g in got if g["data"]["kind"] == "evacuate" and g["type"] == "ephyra.run.end"]
    assert [r["data"]["state"] for r in runs] == ["succeeded", "rolled-back"]
    [told] = [g["data"] for g in got if g["type"] == "ephyra.server.maintenance.notify"]
    server = compute.get(f"/servers/{left}", microversion=MICROVERSION).json()["server"]
    assert (told["server"], told["name"], told["project"]) == (
        left,
        server["name"],
        server["tenant_id"],
    )
    assert (told["host"], told["cloud"], told["by"], told["kind"]) == (
        "compute-1",
        "nova",
        "evacuate",
        "evacuate",
    )
    assert moved not in {g["data"].get("server") for g in got}
