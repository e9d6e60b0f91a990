"""One error tree: every error under EphyraError, drawn in errors.py, with its exit code."""

from __future__ import annotations

import ast
import inspect
import re
import socket
from pathlib import Path

import pytest

import ephyra
from ephyra import errors
from ephyra.cli.main import EXIT_CODES, main

SRC = Path(ephyra.__file__).parent

CLASSES = {
    name: cls
    for name, cls in vars(errors).items()
    if inspect.isclass(cls) and cls.__module__ == errors.__name__
}


def test_every_error_is_reachable_from_the_root() -> None:
    assert len(CLASSES) > 30
    for name, cls in CLASSES.items():
        assert issubclass(cls, errors.EphyraError), name


def test_the_docstring_draws_every_error_under_its_parent() -> None:
    """Each line ``├── Name`` of the drawing sits under its own base class."""
    doc = errors.__doc__ or ""
    drawn: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        found = re.match(r"^\s*([│ ]*[├└]── |\s*)(EphyraError|[A-Z]\w+)\s", line + " ")
        if not found or found.group(2) not in CLASSES:
            continue
        depth = len(found.group(1))
        name = found.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        drawn[name] = stack[-1][1] if stack else ""
        stack.append((depth, name))
    assert set(drawn) == set(CLASSES)
    for name, parent in drawn.items():
        assert CLASSES[name].__bases__ == ((CLASSES[parent],) if parent else (Exception,)), name


def test_exit_codes() -> None:
    assert errors.EphyraError.exit_code == 1
    assert errors.UsageError.exit_code == errors.PluginError.exit_code == 2
    assert errors.LockHeld.exit_code == 3
    backends = (errors.StoreError, errors.LeaseExpired, errors.BoardError, errors.EtcdAuthError)
    assert {cls.exit_code for cls in backends} == {errors.BackendError.exit_code} == {4}
    assert not issubclass(errors.BackendError, errors.UsageError)
    assert errors.Interrupted.exit_code == 130
    for code in (0, 1, 2, 3, 4, 130):
        assert re.search(rf"^  {code} +\S", EXIT_CODES, re.MULTILINE), code


def _error_bases(node: ast.ClassDef) -> list[str]:
    return [ast.unparse(base).rpartition(".")[2] for base in node.bases]


def test_no_error_class_is_defined_outside_errors_py() -> None:
    """Outside errors.py, the only error classes are adapters that are also a library's
    own exception (so that library handles them), under a class of errors.py."""
    roots = {*CLASSES, "Exception", "BaseException"}
    outside: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = _error_bases(node)
            ours = [b for b in bases if b in CLASSES]
            if not (set(bases) & roots or node.name.endswith(("Error", "Exception"))):
                continue
            if ours and len(bases) > len(ours):  # an adapter: ours and a library's
                continue
            outside.append(f"{path.relative_to(SRC)}: {node.name}")
    assert outside == []


def test_the_etcd_login_error_is_ours_and_etcd3gws() -> None:
    from etcd3gw.exceptions import Etcd3Exception

    from ephyra.etcd import LoginRefused

    refused = LoginRefused("login as 'u' refused")
    assert isinstance(refused, errors.EtcdAuthError) and isinstance(refused, Etcd3Exception)
    assert refused.detail_text == "login as 'u' refused" == str(refused)
    assert refused.exit_code == 4


def _closed_port() -> int:
    with socket.socket() as sock:  # bound, never listening, then closed: refused
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_journal_that_cannot_be_reached_exits_4(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ephyra.engine.journal.time.sleep", lambda _: None)
    url = f"postgresql+psycopg2://ephyra:secret@127.0.0.1:{_closed_port()}/ephyra"
    monkeypatch.setenv("EPHYRA_JOURNAL", url)
    assert main(["forklift", "status"]) == 4
    err = capsys.readouterr().err
    assert "ephyra: error: cannot open journal postgresql+psycopg2://ephyra:***@127.0.0.1" in err
    assert "secret" not in err


def test_a_lock_service_that_cannot_be_reached_is_a_backend_error() -> None:
    from ephyra.engine.locks import RunLock

    with pytest.raises(errors.BackendError, match=r"^cannot use lock backend etcd3") as caught:
        RunLock("forklift a b", f"etcd3+http://127.0.0.1:{_closed_port()}?timeout=2")
    assert caught.value.exit_code == 4


def test_a_journal_url_ephyra_cannot_use_is_bad_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--journal", "nosuch://x", "forklift", "status"]) == 2
    assert "ephyra: error: cannot use journal nosuch://x" in capsys.readouterr().err


def test_an_unknown_workload_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["forklift", "plan", "--from", "a", "--to", "b", "--workload", "nosuch"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no ephyra.workloads plugin named 'nosuch' (known: command, hadoop, noop)" in err


def test_an_unknown_strategy_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OS_CLOUD", raising=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text('release: "29.0.0"\nstrategies: {rpm: {type: rpm}}\nstrategy: rpm\n')
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text("hosts: {cmp-1: {roles: [compute]}}\n")
    code = main(["upgrade", "plan", "--spec", str(spec), "--source", f"static:{hosts}"])
    assert code == 2
    assert "no ephyra.strategies plugin named 'rpm'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "answer", "exit_code"),
    [
        (
            errors.StoreError("etcd at etcd3+http://127.0.0.1:9: refused"),
            (503, "backend_unavailable"),
            4,
        ),
        (errors.BoardError("cannot reach the board"), (503, "backend_unavailable"), 4),
        (errors.BackendError("cannot open journal"), (503, "backend_unavailable"), 4),
        (errors.PluginError("no ephyra.workloads plugin named 'x'"), (400, "plugin_error"), 2),
    ],
)
def test_the_api_answers_a_backend_or_plugin_error_and_the_client_raises_it_again(
    error: errors.EphyraError, answer: tuple[int, str], exit_code: int
) -> None:
    from ephyra.operations.codes import classify, raise_for

    assert classify(error) == answer
    with pytest.raises(errors.EphyraError) as again:
        raise_for(answer[0], (answer[1], str(error)))
    assert again.value.exit_code == exit_code and str(again.value) == str(error)
