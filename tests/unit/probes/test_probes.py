"""The probe plugins against real sockets on loopback, and ``probes:`` of a specification:
read and checked, and through the server only configured names."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from ephyra.api.config import Named, ServeConfig
from ephyra.errors import UsageError
from ephyra.probes.base import Unreachable
from ephyra.probes.http import HttpProbe
from ephyra.probes.tcp import TcpProbe, split
from ephyra.upgrade.probing import Probes, Target, read, with_targets


@pytest.fixture
def endpoint() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(int(self.path.strip("/")))
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_tcp_answers_while_a_listener_is_open_and_is_refused_once_closed() -> None:
    listening = socket.create_server(("127.0.0.1", 0))
    target = f"127.0.0.1:{listening.getsockname()[1]}"
    probe = TcpProbe(target, 1.0, None)
    probe.ask()
    listening.close()
    with pytest.raises(Unreachable, match=r"^connection refused$"):
        probe.ask()
    assert split("[::1]:443") == ("::1", 443)
    for bad in ("host", "host:0", "host:99999", ":80", "http://h:80", "a b:80"):
        with pytest.raises(UsageError, match="host:port"):
            split(bad)


@pytest.mark.parametrize(("status", "reachable"), [(200, True), (404, True), (503, False)])
def test_http_is_reachable_below_500(endpoint: str, status: int, reachable: bool) -> None:
    probe = HttpProbe(f"{endpoint}/{status}", 2.0, None)
    if reachable:
        probe.ask()
    else:
        with pytest.raises(Unreachable, match=f"^answered {status}$"):
            probe.ask()


def test_http_says_only_the_kind_of_a_failed_connection() -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(Unreachable, match=r"^ConnectionError$"):
        HttpProbe(f"http://127.0.0.1:{port}/", 2.0, None).ask()


def test_probes_are_read_with_their_targets_checked_by_their_plugin() -> None:
    data = {
        "interval": 0.5,
        "targets": [
            {"name": "vip", "type": "tcp", "target": "192.0.2.10:443"},
            {"name": "keystone", "type": "http", "target": "https://k.example:5000/v3"},
            {"name": "nova", "type": "compute"},
        ],
    }
    assert read(data) == Probes(
        0.5,
        2.0,
        (
            Target("vip", "tcp", "192.0.2.10:443"),
            Target("keystone", "http", "https://k.example:5000/v3"),
            Target("nova", "compute"),
        ),
    )
    assert read(None) == Probes()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"targets": [], "every": 1}, r"probes: unknown key\(s\) every"),
        ({"interval": 0.01}, r"probes.interval: at least 0.1 seconds"),
        ({"targets": [{"name": "a b", "type": "tcp"}]}, r"targets\[0\].name: a name"),
        ({"targets": [{"name": "a", "type": "ping", "target": "h"}]}, "no ephyra.probes plugin"),
        ({"targets": [{"name": "a", "type": "tcp"}]}, r"targets\[0\].target: required"),
        ({"targets": [{"name": "a", "type": "tcp", "target": "h"}]}, "host:port"),
        ({"targets": [{"name": "a", "type": "http", "target": "h:1"}]}, "an http"),
        ({"targets": [{"name": "a", "type": "compute", "target": "h:1"}]}, "takes none"),
        (
            {"targets": [{"name": "a", "type": "compute"}, {"name": "a", "type": "compute"}]},
            r"targets\[1\].name: 'a' twice",
        ),
    ],
)
def test_a_mistake_in_probes_names_its_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        read(data)


def test_through_the_server_a_target_is_a_configured_name() -> None:
    config = ServeConfig.model_validate(
        {"probes": {"vip": "192.0.2.10:443", "keystone": "https://k.example:5000/v3"}}
    )
    named = Named(config)
    spec = {
        "release": "2.0",
        "probes": {
            "targets": [
                {"name": "a", "type": "tcp", "target": "vip"},
                {"name": "b", "type": "http", "target": "keystone"},
                {"name": "c", "type": "compute"},
            ]
        },
    }
    resolved = with_targets(spec, named.probe)
    assert [t.get("target") for t in resolved["probes"]["targets"]] == [
        "192.0.2.10:443",
        "https://k.example:5000/v3",
        None,
    ]
    for theirs in ("192.0.2.10:443", "http://127.0.0.1:9/", "elsewhere"):
        with pytest.raises(UsageError, match=r"probe target .* refused: name a configured one"):
            named.probe(theirs)
    with pytest.raises(ValidationError, match="an http"):
        ServeConfig.model_validate({"probes": {"x": "/etc/passwd"}})


def test_a_configured_target_is_a_url_an_address_and_port_or_a_host() -> None:
    targets = {"a": "https://k.example/", "b": "[::1]:443", "c": "::1", "d": "vip.example"}
    assert ServeConfig.model_validate({"probes": targets}).probes == targets
    for bad in ("a b", "/etc/passwd", "h;id"):
        with pytest.raises(ValidationError, match=r"an http\(s\) URL, host:port or a host"):
            ServeConfig.model_validate({"probes": {"x": bad}})
