"""etcd URLs: TLS stays TLS, a user has a password from a private place, every refusal
says what is wrong and shows no credential."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ephyra import etcd as etcd_module
from ephyra.engine.board import BoardURL
from ephyra.engine.locks import RunLock
from ephyra.errors import UsageError
from ephyra.etcd import ENV_PASSWORD, EtcdURL, LoginSession
from ephyra.versions.store import open_store

SECRET = "hunter2-s3cret"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    """Files standing for a CA, a client certificate and its key (parsing reads no PEM)."""
    files = {}
    for name in ("ca_cert", "cert_cert", "cert_key"):
        path = tmp_path / f"{name}.pem"
        path.write_text("-----BEGIN-----\n")
        files[name] = str(path)
    return files


def _query(pki: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in pki.items())


def parse(url: str, env: dict[str, str] | None = None, **kw: object) -> EtcdURL:
    return EtcdURL.parse(url, environ=env or {}, **kw)  # type: ignore[arg-type]


def refused(url: str, env: dict[str, str] | None = None, **kw: object) -> str:
    with pytest.raises(UsageError) as caught:
        parse(url, env, **kw)
    text = str(caught.value)
    assert SECRET not in text
    return text


def test_a_tls_url_with_a_user_takes_the_password_from_the_environment(
    pki: dict[str, str],
) -> None:
    url = parse(
        f"etcd3+https://ephyra@etcd.example:2379/prod?{_query(pki)}", {ENV_PASSWORD: SECRET}
    )
    assert (url.protocol, url.host, url.port, url.path) == ("https", "etcd.example", 2379, "/prod")
    assert (url.user, url.password) == ("ephyra", SECRET)
    assert (url.ca_cert, url.cert_cert, url.cert_key) == (
        pki["ca_cert"],
        pki["cert_cert"],
        pki["cert_key"],
    )
    assert SECRET not in repr(url)
    session = url.session(5.0)
    assert isinstance(session, LoginSession)
    assert session.verify == pki["ca_cert"]
    assert session.cert == (pki["cert_cert"], pki["cert_key"])
    assert session.trust_env is False
    client = url.client(5.0)
    assert client.base_url == "https://etcd.example:2379"


def test_the_password_file_is_read_and_stripped(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    url = parse(f"etcd3+https://ephyra@etcd.example?password_file={secret}", {ENV_PASSWORD: "x"})
    assert url.password == SECRET
    assert url.port == 2379


def test_a_password_file_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "open-pw"
    secret.write_text(SECRET)
    secret.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="ephyra.etcd"):
        parse(f"etcd3+https://ephyra@etcd.example?password_file={secret}")
    assert "readable by others (chmod 600)" in caplog.text
    assert SECRET not in caplog.text


def test_a_password_in_the_url_works_but_is_warned_about_without_showing_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    etcd_module._warned.clear()
    with caplog.at_level(logging.WARNING, logger="ephyra.etcd"):
        url = parse(f"etcd3+https://ephyra:{SECRET}@etcd.example:2379")
    assert url.password == SECRET
    assert "visible in process lists; use EPHYRA_ETCD_PASSWORD" in caplog.text
    assert SECRET not in caplog.text
    assert "ephyra:***@etcd.example" in caplog.text
    assert url.shown == "etcd3+https://ephyra:***@etcd.example:2379"


def test_a_plain_url_on_loopback_may_carry_a_user() -> None:
    url = parse("etcd3+http://root@127.0.0.1:2379", {ENV_PASSWORD: SECRET})
    assert (url.protocol, url.user) == ("http", "root")
    url = parse("etcd3+http://root@localhost:2379", {ENV_PASSWORD: SECRET})
    assert url.user == "root"


def test_a_plain_url_without_user_is_a_plain_session() -> None:
    url = parse("etcd3+http://10.0.0.5:2379")
    session = url.session(1.0)
    assert not isinstance(session, LoginSession)
    assert url.client(1.0).base_url == "http://10.0.0.5:2379"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://etcd.example:2379", "or etcd3+https://[USER@]HOST:PORT"),
        ("etcd3://etcd.example:2379", "expected etcd3+http://HOST:PORT (plain)"),
        ("etcd3+https:///prefix", "no host"),
        ("etcd3+https://etcd.example:99999", "Port out of range"),
        ("etcd3+https://etcd.example?protocol=http", "unknown option(s) protocol"),
        ("etcd3+https://etcd.example?verify=false", "unknown option(s) verify"),
        ("etcd3+https://etcd.example?ttl=5", "unknown option(s) ttl"),
        ("etcd3+https://etcd.example?ca_cert=/nonexistent/ca.pem", "ca_cert: no such file"),
        ("etcd3+https://etcd.example?ca_cert=", "ca_cert: no such file"),
        ("etcd3+https://et;cd.example", "etcd host"),
        ("etcd3+https://ephyra@etcd.example", f"needs a password: set {ENV_PASSWORD}"),
        (f"etcd3+https://:{SECRET}@etcd.example", "a password without a user"),
        (f"etcd3+http://ephyra:{SECRET}@10.0.0.5:2379", "use etcd3+https://"),
    ],
)
def test_a_wrong_url_is_refused_saying_what_and_showing_no_secret(url: str, says: str) -> None:
    assert says in refused(url)


def test_a_user_over_plain_http_off_loopback_is_refused() -> None:
    says = refused("etcd3+http://ephyra@etcd.example:2379", {ENV_PASSWORD: SECRET})
    assert "would send its password in clear" in says


def test_a_client_certificate_needs_its_key_and_its_key_the_certificate(
    pki: dict[str, str],
) -> None:
    assert "go together" in refused(f"etcd3+https://etcd.example?cert_cert={pki['cert_cert']}")
    assert "go together" in refused(f"etcd3+https://etcd.example?cert_key={pki['cert_key']}")


@pytest.mark.parametrize("host", ["127.0.0.1", "etcd.example"])
def test_certificates_with_plain_http_are_refused_even_on_loopback(
    pki: dict[str, str], host: str
) -> None:
    says = refused(f"etcd3+http://{host}:2379?{_query(pki)}")
    assert "ca_cert, cert_cert, cert_key with etcd3+http" in says
    assert "etcd3+https:// for TLS" in says


def test_two_passwords_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(SECRET)
    says = refused(f"etcd3+https://ephyra:{SECRET}@etcd.example?password_file={secret}")
    assert "two passwords" in says
    assert "ephyra:***@" in says


def test_an_empty_or_missing_password_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert "is empty" in refused(f"etcd3+https://ephyra@etcd.example?password_file={empty}")
    missing = tmp_path / "missing"
    says = refused(f"etcd3+https://ephyra@etcd.example?password_file={missing}")
    assert "password_file: no such file" in says


def test_an_option_given_twice_is_refused(pki: dict[str, str]) -> None:
    ca = pki["ca_cert"]
    assert "option ca_cert given twice" in refused(
        f"etcd3+https://e.example?ca_cert={ca}&ca_cert={ca}"
    )


def test_a_caller_reads_its_own_options() -> None:
    url = parse("etcd3+https://etcd.example?lock_timeout=5", own=("lock_timeout",))
    assert dict(url.options) == {"lock_timeout": "5"}


def test_the_board_keeps_its_ttl_and_path_and_shows_no_password(pki: dict[str, str]) -> None:
    board = BoardURL.parse(f"etcd3+https://ephyra:{SECRET}@etcd.example/prod?ttl=30&{_query(pki)}")
    assert (board.path, board.ttl, board.protocol) == ("prod", 30, "https")
    assert SECRET not in board.url and "ephyra:***@" in board.url
    conf = board.conf()
    assert conf["protocol"] == "https" and "password" not in conf
    session = conf["session"]()
    assert isinstance(session, LoginSession) and session.cert == (pki["cert_cert"], pki["cert_key"])


def test_the_board_refuses_what_every_etcd_url_refuses(pki: dict[str, str]) -> None:
    with pytest.raises(UsageError, match=r"^board etcd3\+http://127\.0\.0\.1:2379"):
        BoardURL.parse(f"etcd3+http://127.0.0.1:2379?{_query(pki)}")


def test_the_store_refuses_certificates_over_plain_http(pki: dict[str, str]) -> None:
    with pytest.raises(UsageError, match=r"^store etcd3\+http://.*with etcd3\+http"):
        open_store(f"etcd3+http://127.0.0.1:2379?{_query(pki)}")


def test_the_locks_refuse_a_user_over_plain_http_and_show_no_password() -> None:
    with pytest.raises(UsageError) as caught:
        RunLock("cp1-cp2", f"etcd3+http://ephyra:{SECRET}@10.1.2.3:2379?lock_timeout=5")
    text = str(caught.value)
    assert text.startswith("locks etcd3+http://ephyra:***@10.1.2.3:2379")
    assert SECRET not in text


def test_the_locks_refuse_an_unknown_option() -> None:
    with pytest.raises(UsageError, match="unknown option\\(s\\) ttl"):
        RunLock("cp1-cp2", "etcd3+https://127.0.0.1:2379?ttl=5")
