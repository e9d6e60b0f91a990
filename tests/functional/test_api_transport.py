"""A live ``ephyra serve`` over TLS with its journal on PostgreSQL (a URL with a password): the
command line works over https with ``--cacert`` and refuses an unknown certificate, the
dashboard's cookie carries HttpOnly, SameSite=Strict and Secure, a 404 and a 500 show neither
the journal's password nor an exception's text, and the server's log keeps the detail under
the request id."""

from __future__ import annotations

import datetime
import ipaddress
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ephyra.api.auth import admin_token
from testbed.ironic import free_port
from testbed.postgres import Postgres
from tests.functional.ephyra_cli import EPHYRA, Ephyra

pytestmark = pytest.mark.functional

SECRET = "pg-s3cret-4c9e"  # PostgreSQL trusts loopback here: any password is taken
REQUEST_ID = re.compile(r"^req-[0-9a-f-]{36}$")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (readable by its owner only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ephyra test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsServer:
    """``ephyra serve --tls-cert --tls-key``, its journal in a database of its own whose URL
    (given in EPHYRA_JOURNAL, not in argv) holds a password."""

    def __init__(self, postgres: Postgres, tmp: Path) -> None:
        self.database = f"j_{uuid.uuid4().hex[:12]}"
        postgres.create_databases(self.database)
        self.postgres = postgres
        journal = postgres.url(self.database).replace("://postgres@", f"://postgres:{SECRET}@")
        assert SECRET in journal
        clouds = tmp / "clouds.yaml"
        clouds.write_text("clouds: {}\n")
        self.ephyra = Ephyra(clouds, tmp / "state")  # the client shares the machine's state
        self.cert, key = self_signed(tmp)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.log_path = tmp / "serve.log"
        self.log = self.log_path.open("w")
        tls = ["--tls-cert", str(self.cert), "--tls-key", str(key)]
        self.proc = subprocess.Popen(
            [*EPHYRA, "serve", "--port", str(self.port), *tls],
            env={**self.ephyra.env, "EPHYRA_JOURNAL": journal},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1, verify=str(self.cert)).ok:
                    break
            except requests.ConnectionError:
                assert self.proc.poll() is None, self.log_path.read_text()
                assert time.monotonic() < deadline, "no https /healthz within 60 s"
                time.sleep(0.1)
        token = admin_token(tmp / "state" / "ephyra" / "api-tokens.yaml")
        assert token
        self.token = token

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = kw.pop("headers", {"X-Auth-Token": self.token})
        return requests.request(
            method, self.url + path, headers=headers, timeout=60, verify=str(self.cert), **kw
        )

    def execute(self, sql: str) -> None:
        conn = psycopg2.connect(
            host="127.0.0.1", port=self.postgres.port, user="postgres", dbname=self.database
        )
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql)
        conn.close()

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()
        return self.log_path.read_text()


@pytest.fixture
def served(postgres: Postgres, tmp_path: Path) -> Iterator[TlsServer]:
    server = TlsServer(postgres, tmp_path)
    yield server
    log = server.stop()
    assert SECRET not in log, log


def error_of(answer: requests.Response) -> dict[str, str]:
    error: dict[str, str] = answer.json()["error"]
    assert REQUEST_ID.match(error["request_id"])
    assert answer.headers["X-Request-Id"] == error["request_id"]
    return error


def test_the_command_line_over_https(served: TlsServer) -> None:
    https = ["--url", served.url, "--cacert", str(served.cert)]
    # this machine's admin token goes by itself, over https
    listed = served.ephyra(*https, "--format", "json", "run", "list")
    assert listed.code == 0, listed.err
    assert listed.out.strip() == "[]"
    # an unknown certificate is refused (the system's CAs do not know it)
    unknown = served.ephyra("--url", served.url, "run", "list")
    assert unknown.code == 1 and "certificate verify failed" in unknown.err, unknown.err
    # plain http to this server's port gets no answer it could take for one
    plain = served.ephyra("--url", f"http://127.0.0.1:{served.port}", "run", "list")
    assert plain.code != 0
    # a given token from a file, the CA from the environment
    token_file = served.ephyra.state / "token"
    token_file.write_text(served.token)
    by_file = served.ephyra(
        "--url",
        served.url,
        "--token-file",
        str(token_file),
        "run",
        "list",
        env={"EPHYRA_CACERT": str(served.cert), "XDG_STATE_HOME": str(token_file.parent / "x")},
    )
    assert by_file.code == 0, by_file.err
    # a given token is refused over plain http to another machine's name
    far = served.ephyra(
        "--url", "http://ephyra.invalid:8780", "run", "list", env={"EPHYRA_TOKEN": served.token}
    )
    assert far.code == 2 and "--insecure-http" in far.err and served.token not in far.err


def test_the_session_cookie_in_a_real_answer(served: TlsServer) -> None:
    opened = served.call("POST", "/v1/session")
    assert opened.status_code == 200 and opened.json()["user"] == "admin"
    cookie = opened.headers["Set-Cookie"]
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert cookie.startswith("ephyra_token=")
    assert {"httponly", "samesite=strict", "secure", "path=/"} <= flags, cookie
    jar = {"ephyra_token": opened.cookies["ephyra_token"]}
    assert served.call("GET", "/v1/whoami", headers={}, cookies=jar).status_code == 200
    pause = "/v1/forklift/runs/latest/pause"
    assert served.call("POST", pause, headers={}, cookies=jar).status_code == 401
    by_page = served.call("POST", pause, headers={"X-Ephyra-Session": "1"}, cookies=jar)
    assert (by_page.status_code, error_of(by_page)["code"]) == (404, "run_not_found")
    closed = served.call("DELETE", "/v1/session", headers={}, cookies=jar)
    assert closed.status_code == 204
    assert "max-age=0" in closed.headers["Set-Cookie"].lower()


def test_an_unknown_run_shows_no_password(served: TlsServer) -> None:
    answer = served.call("GET", "/v1/runs/0123abcd")
    assert answer.status_code == 404
    error = error_of(answer)
    assert error["code"] == "run_not_found"
    assert SECRET not in answer.text and "postgres:***@127.0.0.1" in error["message"]
    shown = served.ephyra(
        "--url", served.url, "--cacert", str(served.cert), "run", "show", "0123abcd"
    )
    assert shown.code == 2 and "no run '0123abcd'" in shown.err and SECRET not in shown.err


def test_a_500_shows_no_exception_text(served: TlsServer) -> None:
    assert served.call("GET", "/v1/runs/0123abcd").status_code == 404
    served.execute("DROP TABLE logbooks CASCADE")  # the journal broken under the server
    answer = served.call("GET", "/v1/runs/4567cdef")  # an answer not kept from before
    assert answer.status_code == 500
    error = error_of(answer)
    assert error == {
        "code": "internal",
        "message": f"internal error; see the server log, request id {error['request_id']}",
        "request_id": error["request_id"],
    }
    for leaked in ("logbooks", "relation", "psycopg2", "Traceback", "SELECT", SECRET):
        assert leaked not in answer.text
    log = served.stop()
    assert f"request {error['request_id']}: unexpected error" in log
    assert "logbooks" in log and SECRET not in log
