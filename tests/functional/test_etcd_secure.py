"""Ephyra on an etcd run as production should run it: TLS only, client certificates
required, authentication on (a real etcd 3.4 from the testbed, ``secure_etcd``).

The versions store's suite runs on it too (tests/functional/versions/conftest.py). Here:
a run lock held by one process and refused to another, a run posted on the board and
driven by a real ``ephyra conductor``, an ``ephyra agent`` updating its host, an expired
token replaced, and every way of getting in wrong refused with a clear error and no
fallback to plain HTTP.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
import yaml

from ephyra.engine.board import Board
from ephyra.engine.journal import Journal
from ephyra.engine.locks import RunLock, holding
from ephyra.errors import BoardError, EphyraError, LockHeld, StoreError
from ephyra.etcd import ENV_PASSWORD, LoginSession
from ephyra.versions.store import Store, open_store
from testbed.etcd import Etcd
from tests.functional.ephyra_cli import EPHYRA, Ephyra
from tests.functional.test_conductor import Conductor
from tests.functional.versions.test_agent import Fleet

pytestmark = pytest.mark.functional

WRONG = "not-the-password-42"


def with_url(url: str, path: str = "", drop: tuple[str, ...] = (), **options: object) -> str:
    """``url`` with ``path``, without the options ``drop``, with ``options`` added."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in drop]
    query += [(k, str(v)) for k, v in options.items()]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query, safe="/"), ""))


@pytest.fixture
def store(secure_etcd: Etcd) -> Iterator[Store]:
    with open_store(secure_etcd.url) as opened:
        yield opened


def _wrong_password_file(tmp_path: Path) -> Path:
    path = tmp_path / "wrong.password"
    path.write_text(WRONG)
    path.chmod(0o600)
    return path


# -- the store -----------------------------------------------------------------------
def test_the_store_reads_and_writes_as_its_user_with_its_certificate(
    store: Store, secure_etcd: Etcd
) -> None:
    key = f"/secure-{uuid.uuid4().hex[:8]}/k"
    store.put(key, "v1")
    assert store.get(key) == "v1"
    session = store.client.session  # type: ignore[attr-defined]
    assert isinstance(session, LoginSession) and session.logins == 1
    assert session.cert == (str(secure_etcd.pki.client_cert), str(secure_etcd.pki.client_key))


def _rejected(etcd: Etcd, token: str) -> bool:
    """Whether etcd refuses ``token`` now (a check that uses it: it resets its idle time)."""
    with requests.Session() as raw:
        raw.trust_env = False
        raw.verify = str(etcd.pki.ca)
        raw.cert = (str(etcd.pki.client_cert), str(etcd.pki.client_key))
        reply = raw.post(
            f"{etcd.endpoint}/v3/kv/range",
            json={"key": base64.b64encode(b"/").decode()},
            headers={"Authorization": token},
            timeout=10,
        )
    return reply.status_code == 401


def wait_until_rejected(etcd: Etcd, token: str, timeout: float = 60) -> None:
    """Until etcd has forgotten ``token``: simple tokens expire after ``--auth-token-ttl``
    seconds unused, so each look waits twice as long as the one before."""
    pause, waited, idle = 0.5, 0.0, threading.Event()
    while not _rejected(etcd, token):
        assert waited < timeout, f"etcd still takes the token after {waited:.0f} s"
        idle.wait(pause)
        waited, pause = waited + pause, pause * 2


def test_an_expired_token_is_replaced_by_a_new_login_and_a_watch_goes_on(
    store: Store, secure_etcd: Etcd
) -> None:
    prefix = f"/secure-{uuid.uuid4().hex[:8]}/"
    store.put(prefix + "a", "1")
    session = store.client.session  # type: ignore[attr-defined]
    assert isinstance(session, LoginSession)
    watch = store.watch(prefix)  # a watch logs in afresh
    assert watch.wait(0)  # the first wait returns at once
    first, logins = session.token, session.logins
    assert first is not None and logins == 2

    wait_until_rejected(secure_etcd, first)
    assert store.get(prefix + "a") == "1"  # refused once, logged in again, answered
    assert session.logins == logins + 1 and session.token != first
    with open_store(secure_etcd.url) as other:
        other.put(prefix + "b", "2")
    assert watch.wait(10), "the watch opened under the expired token saw no change"
    watch.cancel()


# -- refusals ------------------------------------------------------------------------
def test_a_wrong_password_is_a_clear_error_naming_the_user_not_the_password(
    secure_etcd: Etcd, tmp_path: Path
) -> None:
    url = with_url(secure_etcd.url, password_file=_wrong_password_file(tmp_path))
    with open_store(url) as store, pytest.raises(StoreError) as caught:
        store.get("/anything")
    text = str(caught.value)
    assert "login as 'ephyra' refused" in text
    assert "authentication failed, invalid user ID or password" in text
    assert text.startswith(f"etcd at etcd3+https://ephyra@127.0.0.1:{secure_etcd.port}")
    assert WRONG not in text and secure_etcd.password not in text


def test_a_wrong_password_stops_the_locks_and_the_board_too(
    secure_etcd: Etcd, tmp_path: Path
) -> None:
    url = with_url(secure_etcd.url, password_file=_wrong_password_file(tmp_path))
    with pytest.raises(EphyraError) as locks:
        RunLock("upgrade -", with_url(url, lock_timeout=5))
    journal = Journal(f"sqlite:///{tmp_path / 'journal.db'}")
    with pytest.raises(BoardError) as board:
        Board(with_url(url, "/secure"), journal).connect()
    for caught in (locks, board):
        text = str(caught.value)
        assert "login as 'ephyra' refused" in text, text
        assert WRONG not in text and secure_etcd.password not in text


def test_without_a_client_certificate_etcd_refuses_the_connection(secure_etcd: Etcd) -> None:
    url = with_url(secure_etcd.url, drop=("cert_cert", "cert_key"))
    with open_store(url) as store, pytest.raises(StoreError) as caught:
        store.get("/anything")
    text = str(caught.value)
    assert "TLS failed" in text and f"127.0.0.1:{secure_etcd.port}" in text
    assert secure_etcd.password not in text


@pytest.mark.parametrize("user", ["", "ephyra@"])
def test_plain_http_to_the_tls_etcd_fails_and_never_falls_back(
    secure_etcd: Etcd, user: str
) -> None:
    url = f"etcd3+http://{user}127.0.0.1:{secure_etcd.port}"
    with open_store(url) as store, pytest.raises(StoreError) as caught:
        store.get("/anything")
    assert str(caught.value).startswith(f"etcd at {url}: ")
    with pytest.raises(EphyraError):
        RunLock("upgrade -", f"{url}?lock_timeout=5")


# -- locks ---------------------------------------------------------------------------
HOLDER = """\
import sys
from ephyra.engine.locks import RunLock
lock = RunLock(sys.argv[1], sys.argv[2])
print("held" if lock.try_acquire() else "refused", flush=True)
sys.stdin.read()
lock.close()
print("released", flush=True)
"""


def test_a_lock_held_by_one_process_is_refused_to_another_until_released(
    secure_etcd: Etcd,
) -> None:
    url = with_url(secure_etcd.url, lock_timeout=5)
    name = f"upgrade secure-{uuid.uuid4().hex[:6]}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, name, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match="is locked: the other process"):  # noqa: SIM117
            with holding([name], url, lambda _: "the other process"):
                pass
        holder.stdin.close()
        assert holder.stdout.readline().strip() == "released"
        assert holder.wait(30) == 0
        with RunLock(name, url) as mine:
            assert mine.try_acquire()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


# -- the board and a conductor -------------------------------------------------------
def _spec(root: Path, hosts: Path) -> tuple[Path, Path]:
    """An upgrade of two hosts to 2.0 by a command writing files; its spec and inventory."""
    spec = {
        "release": "2.0",
        "strategy": "cmd",
        "strategies": {
            "cmd": {
                "type": "command",
                "upgrade": f"echo {{version}} > {hosts}/{{host}}.version",
                "version": f"cat {hosts}/{{host}}.version 2>/dev/null || echo 1.0",
            }
        },
        "roles": {"worker": {"max_at_once": 1}},
    }
    inventory = {
        "hosts": [
            {"name": h, "roles": ["worker"], "services": [{"name": "app", "project": "app"}]}
            for h in ("h1", "h2")
        ]
    }
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    (root / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    return root / "spec.yaml", root / "inventory.yaml"


def test_a_run_posted_on_the_secure_board_is_driven_by_a_conductor(
    secure_etcd: Etcd, tmp_path: Path
) -> None:
    hosts = tmp_path / "hosts"
    hosts.mkdir()
    spec, inventory = _spec(tmp_path, hosts)
    board = with_url(secure_etcd.url, f"/t-{uuid.uuid4().hex[:10]}", ttl=6)
    ephyra = Ephyra(tmp_path / "no-clouds.yaml", tmp_path / "state")
    ephyra.env["EPHYRA_LOCKS"] = with_url(secure_etcd.url, lock_timeout=5)
    assert ephyra.env[ENV_PASSWORD] == secure_etcd.password  # the password from the env only
    argv = [*EPHYRA, "-v", "conductor", "--board", board, "--name", "c1", "--retry-delay", "1"]
    conductor = Conductor("c1", argv, ephyra.env, tmp_path / "c1.err")
    try:
        conductor.wait_for("waiting for jobs", timeout=30)
        posted = ephyra(
            "upgrade",
            "start",
            "--yes",
            "--spec",
            str(spec),
            "--source",
            f"static:{inventory}",
            "--board",
            board,
        )
        assert posted.code == 0, posted.err
        run_id = posted.out.split()[1]
        assert "cert_key=***" in posted.out and secure_etcd.password not in posted.out
        conductor.wait_for(f"finished upgrade run {run_id}: run succeeded", timeout=60)
        shown = ephyra("--format", "json", "upgrade", "status", run_id)
        assert shown.code == 0, shown.err
        assert json.loads(shown.out)["state"] == "succeeded"
        for host in ("h1", "h2"):
            assert (hosts / f"{host}.version").read_text().strip() == "2.0"
        listed = ephyra("--format", "json", "conductor", "--board", board, "--list")
        assert listed.code == 0, listed.err
        assert json.loads(listed.out) == []
        assert secure_etcd.password not in conductor.output()
    finally:
        conductor.stop()


# -- an agent ------------------------------------------------------------------------
def test_an_agent_updates_its_host_through_the_secure_store(
    secure_etcd: Etcd, tmp_path: Path
) -> None:
    fleet = Fleet(tmp_path, secure_etcd.url, f"/fleet-{uuid.uuid4().hex[:8]}")
    try:
        assert fleet("version", "trigger", "2.0")[0] == 0
        agent = fleet.start("cmp-1", "compute", sleep=0.1, once=True)
        assert agent.finish(60).code == 0
        assert [v for v, _, _ in fleet.effects("cmp-1")] == ["2.0"]
        assert fleet.status()["cmp-1"]["state"] == "validated/success"
        assert not any(secure_etcd.password in line for line in agent.lines)
    finally:
        fleet.stop()


def test_the_testbeds_keys_and_passwords_are_its_owners_only(secure_etcd: Etcd) -> None:
    pki = secure_etcd.pki
    for path in (pki.server_key, pki.client_key, secure_etcd.password_file):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert pki.root.stat().st_mode & 0o077 == 0
