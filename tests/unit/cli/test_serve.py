"""``ephyra serve --workers``: bad counts and a port already taken are refused before any
worker starts (exit 2), and the option is in the help."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from ephyra.cli.main import build_parser, main
from ephyra.cli.serve import listening
from ephyra.errors import UsageError


def test_the_help_names_workers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    shown = capsys.readouterr().out
    assert "--workers N" in shown and "Workers (--workers N, default 1)" in shown


def test_no_worker_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"t" * 20: {"user": "a", "project": "a", "roles": []}}))
    journal = f"sqlite:///{tmp_path}/journal.db"
    code = main(["--journal", journal, "serve", "--tokens", str(tokens), "--workers", "0"])
    assert code == 2
    assert "--workers: 1 or more" in capsys.readouterr().err


def test_a_port_taken_is_refused_before_any_worker() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        with pytest.raises(UsageError, match=r"cannot listen on 127\.0\.0\.1:"):
            listening("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_the_socket_is_bound_and_inherited_not_yet_listening() -> None:
    sock = listening("127.0.0.1", 0)
    try:
        assert sock.get_inheritable()
        probe = socket.socket()
        with pytest.raises(ConnectionRefusedError):  # until a worker is ready
            probe.connect(sock.getsockname())
        probe.close()
    finally:
        sock.close()
