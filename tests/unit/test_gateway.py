"""The gateway session against a local HTTP server: what etcd3gw sees of a reply, kept
connections, a connection closed meanwhile, errors as requests' own, calls in flight."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import etcd3gw
import pytest
import requests
import urllib3

from ephyra import gateway
from ephyra.gateway import GatewaySession


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as etcd's gateway

    def do_POST(self) -> None:
        server: Server = self.server  # type: ignore[assignment]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.seen.append(
            (self.path, body, self.headers.get("Authorization"), self.client_address)
        )
        if body.get("hold"):
            server.holding.release()
            server.go.wait(10)
        status, reply = (404, {"error": "no such thing"}) if body.get("missing") else (200, body)
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[tuple[str, Any, str | None, tuple[str, int]]] = []
        self.holding = threading.Semaphore(0)
        self.go = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    found = Server()
    thread = threading.Thread(target=found.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield found
    found.go.set()
    found.shutdown()
    found.server_close()


def test_a_post_carries_its_body_and_headers_and_the_reply_reads_as_requests_does(
    server: Server,
) -> None:
    session = GatewaySession()
    reply = session.post(f"{server.url}/v3/kv/txn", json={"a": 1}, headers={"Authorization": "t"})
    assert (reply.status_code, reply.json(), reply.text) == (200, {"a": 1}, '{"a": 1}')
    reply.close()  # as LoginSession does with a refusal
    reply = session.post(f"{server.url}/v3/kv/range", data=json.dumps({"b": 2}), timeout=5)
    assert reply.json() == {"b": 2}
    assert [(path, body, auth) for path, body, auth, _ in server.seen] == [
        ("/v3/kv/txn", {"a": 1}, "t"),
        ("/v3/kv/range", {"b": 2}, None),
    ]


def test_calls_share_a_kept_connection(server: Server) -> None:
    session = GatewaySession()
    for i in range(5):
        session.post(f"{server.url}/v3/kv/put", json={"i": i}, timeout=5)
    assert len({peer for *_, peer in server.seen}) == 1


def test_a_connection_closed_meanwhile_is_not_reused(server: Server) -> None:
    session = GatewaySession()
    session.post(f"{server.url}/x", json={}, timeout=5)
    for conns in session._idle.values():  # as etcd does when it restarts
        for conn in conns:
            assert conn.sock is not None
            conn.sock.shutdown(socket.SHUT_RDWR)
    assert session.post(f"{server.url}/x", json={"again": True}, timeout=5).json() == {
        "again": True
    }


def test_etcd3gw_reads_its_errors_from_the_reply(server: Server) -> None:
    client = etcd3gw.Etcd3Client(port=server.server_address[1], session=GatewaySession())
    client._api_path = "/v3/"  # no version discovery: the server answers only POSTs
    with pytest.raises(etcd3gw.exceptions.Etcd3Exception) as raised:
        client.post(client.get_url("/kv/range"), json={"missing": True})
    assert "no such thing" in str(raised.value.detail_text)


def test_a_refused_connection_and_a_timeout_are_requests_errors(server: Server) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(requests.exceptions.ConnectionError, match="refused"):
        GatewaySession().post(f"http://127.0.0.1:{port}/x", json={}, timeout=5)
    with pytest.raises(requests.exceptions.Timeout):
        GatewaySession().post(f"{server.url}/x", json={"hold": True}, timeout=0.2)


def test_a_streamed_request_goes_through_requests(server: Server) -> None:
    reply = GatewaySession().post(f"{server.url}/x", json={"w": 1}, stream=True, timeout=5)
    assert isinstance(reply.raw, urllib3.HTTPResponse)  # urllib3's, read as it comes
    assert reply.json() == {"w": 1}


def test_calls_in_flight_are_bounded(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway, "CONNECTIONS", 2)
    session = GatewaySession()
    threads = [
        threading.Thread(
            target=session.post, args=(f"{server.url}/x",), kwargs={"json": {"hold": True}}
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    assert server.holding.acquire(timeout=10) and server.holding.acquire(timeout=10)
    assert not server.holding.acquire(timeout=0.5)  # the third waits for a connection
    server.go.set()
    assert server.holding.acquire(timeout=10)
    for thread in threads:
        thread.join(10)
    assert len(server.seen) == 3
