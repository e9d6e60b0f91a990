"""Where ``ephyra --url`` sends a token: one found on this machine only over https or to this
machine; one given (EPHYRA_TOKEN, --token-file) to plain http elsewhere only with
--insecure-http; never one on the command line."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from ephyra.api.auth import make_tokens_file
from ephyra.cli.backend import backend, token
from ephyra.cli.main import build_parser, warn_secrets_in_argv
from ephyra.errors import UsageError
from ephyra.operations.remote import Remote, plain_and_far

GIVEN = "given-token-0123456789"


@pytest.fixture
def admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """This machine's admin token of ``ephyra serve``, where the client finds it."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("EPHYRA_TOKEN", raising=False)
    monkeypatch.delenv("OS_CLOUD", raising=False)
    return make_tokens_file(tmp_path / "state" / "ephyra" / "api-tokens.yaml")


def args(url: str, *more: str) -> argparse.Namespace:
    return build_parser().parse_args(["--url", url, *more, "run", "list"])


@pytest.mark.parametrize(
    "url",
    [
        "https://ephyra.example.org:8780",
        "https://10.0.0.5",
        "http://127.0.0.1:8780",
        "http://127.3.4.5:8780/",
        "http://[::1]:8780",
        "http://localhost:8780",
    ],
)
def test_safe_urls(url: str) -> None:
    assert not plain_and_far(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:8780",
        "http://ephyra.example.org",
        "http://127.0.0.1.nip.io:8780",  # a name that only looks like loopback
        "http://[::2]:8780",
        "http://localhost.example.org",
    ],
)
def test_plain_http_elsewhere(url: str) -> None:
    assert plain_and_far(url)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "127.0.0.1:8780", "http://"])
def test_not_an_http_url(url: str) -> None:
    with pytest.raises(UsageError, match="expected http"):
        plain_and_far(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8780", "https://ephyra.example.org"])
def test_the_admin_token_goes_over_https_or_to_this_machine(admin: str, url: str) -> None:
    assert token(args(url)) == admin
    remote = backend(args(url))
    assert isinstance(remote, Remote) and remote._http.headers["X-Auth-Token"] == admin


def test_the_admin_token_never_goes_in_clear_elsewhere(admin: str) -> None:
    with pytest.raises(UsageError, match="will not send this machine's admin token"):
        token(args("http://10.0.0.5:8780"))
    with pytest.raises(UsageError, match="in clear"):  # not even when asked
        backend(args("http://10.0.0.5:8780", "--insecure-http"))


def test_a_keystone_token_never_goes_in_clear_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("EPHYRA_TOKEN", raising=False)
    monkeypatch.setenv("OS_CLOUD", "no-such-cloud")  # refused before any cloud is asked
    with pytest.raises(UsageError, match="a Keystone token in clear"):
        token(args("http://ephyra.example.org"))


def test_no_token_found_none_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("EPHYRA_TOKEN", raising=False)
    monkeypatch.delenv("OS_CLOUD", raising=False)
    remote = backend(args("http://10.0.0.5:8780"))
    assert isinstance(remote, Remote) and "X-Auth-Token" not in remote._http.headers


def test_a_given_token_to_plain_http_elsewhere_needs_insecure_http(
    admin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPHYRA_TOKEN", GIVEN)
    with pytest.raises(UsageError, match="--insecure-http"):
        backend(args("http://10.0.0.5:8780"))
    remote = backend(args("http://10.0.0.5:8780", "--insecure-http"))
    assert isinstance(remote, Remote) and remote._http.headers["X-Auth-Token"] == GIVEN
    remote = backend(args("https://10.0.0.5:8780"))  # the given token wins over the admin's
    assert isinstance(remote, Remote) and remote._http.headers["X-Auth-Token"] == GIVEN


def test_a_token_file_or_standard_input(
    admin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPHYRA_TOKEN", "not-this-one-0123456789")
    path = tmp_path / "token"
    path.write_text(f"  {GIVEN}\n")
    assert token(args("https://h", "--token-file", str(path))) == GIVEN
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{GIVEN}\nignored\n"))
    assert token(args("https://h", "--token-file", "-")) == GIVEN
    path.write_text("\n")
    with pytest.raises(UsageError, match="is empty"):
        token(args("https://h", "--token-file", str(path)))
    with pytest.raises(UsageError, match="cannot read the token file"):
        token(args("https://h", "--token-file", str(tmp_path / "nope")))


def test_no_token_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--url", "https://h", "--token", GIVEN, "run", "list"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--token is not taken" in err and "EPHYRA_TOKEN" in err and GIVEN not in err


def test_a_ca_certificate_checks_https(tmp_path: Path, admin: str) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    remote = backend(args("https://h:8780", "--cacert", str(ca)))
    assert isinstance(remote, Remote) and remote._http.verify == str(ca)
    with pytest.raises(UsageError, match="no CA certificate file"):
        backend(args("https://h:8780", "--cacert", str(tmp_path / "missing.pem")))
    default = backend(args("https://h:8780"))
    assert isinstance(default, Remote) and default._http.verify  # never off


def test_a_password_in_argv_is_warned_of(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+psycopg2://ephyra:pw@db/ephyra"
    monkeypatch.delenv("EPHYRA_JOURNAL", raising=False)
    warn_secrets_in_argv(build_parser().parse_args(["--journal", url, "run", "list"]))
    err = capsys.readouterr().err
    assert "--journal holds a password" in err and "EPHYRA_JOURNAL" in err and "pw" not in err
    monkeypatch.setenv("EPHYRA_JOURNAL", url)  # from the environment: nothing to say
    warn_secrets_in_argv(build_parser().parse_args(["run", "list"]))
    plain = "postgresql+psycopg2://ephyra@db/ephyra"  # no password: nothing to say
    warn_secrets_in_argv(build_parser().parse_args(["--journal", plain, "run", "list"]))
    assert capsys.readouterr().err == ""
