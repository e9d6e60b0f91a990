"""What the command line imports to start: building the parser and every ``--help``
imports none of the heavy libraries (the commands import them when they run).

Structural, not timed: ``bench/startup.py`` measures the time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ephyra.cli import agent, audit, conductor, env
from ephyra.cli.main import build_parser
from ephyra.engine.audit import MAX_READ
from ephyra.engine.conductor import RETRY_DELAY
from ephyra.netscheme.serializers import MODES
from ephyra.strategies.base import CHECK_TIMEOUT

#: Libraries a command imports when it runs, never to build the parser or show help.
HEAVY = (
    "alembic",
    "ansible",
    "ansible_runner",
    "etcd3gw",
    "eventlet",
    "fastapi",
    "httpx",
    "jinja2",
    "keystoneauth1",
    "networkx",
    "openstack",
    "prometheus_client",
    "psycopg2",
    "pydantic",
    "requests",
    "rich",
    "sqlalchemy",
    "starlette",
    "taskflow",
    "tooz",
    "urllib3",
    "uvicorn",
    "yaml",
)

#: Runs every command's --help in one fresh process; prints each one's exit code and
#: what heavy modules were imported by then.
EVERY_HELP = """
import argparse, contextlib, io, json, sys
from ephyra.cli.main import build_parser, main

HEAVY = set(sys.argv[1].split(","))

def paths(parser, before=()):
    yield before
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from paths(sub, (*before, name))

def heavy():
    top = {name.split(".")[0] for name, mod in sys.modules.items() if mod is not None}
    return sorted(n for n in top if n in HEAVY or n.startswith("oslo_"))

codes = {}
for path in paths(build_parser()):
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            main([*path, "--help"])
        code = "returned"
    except SystemExit as exc:
        code = exc.code
    codes[" ".join(path)] = [code, heavy(), len(out.getvalue())]
print(json.dumps(codes))
"""


def fresh_python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    src = str(Path(__file__).resolve().parents[3] / "src")
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, *args],
        env={**os.environ, **(env or {}), "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_every_help_imports_nothing_heavy() -> None:
    done = fresh_python("-c", EVERY_HELP, ",".join(HEAVY))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert len(found) >= 50  # ephyra, each group and each of their actions
    assert {"", "forklift start", "upgrade status", "run list", "serve", "agent"} <= set(found)
    for command, (code, heavy, length) in found.items():
        shown = " ".join(["ephyra", *command.split(), "--help"])
        assert (code, heavy) == (0, []), f"{shown}: exit {code}, imported {heavy}"
        assert length > 100, f"ephyra {command} --help printed {length} characters"


def test_the_program_help_in_its_own_process() -> None:
    code = "import sys; from ephyra.cli.main import run; sys.argv[1:] = ['--help']; run()"
    done = fresh_python("-X", "importtime", "-c", code)
    assert done.returncode == 0, done.stderr
    assert "forklift" in done.stdout and "exit codes:" in done.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()}
    assert "ephyra" in imported
    assert not {n for n in imported if n in HEAVY or n.startswith("oslo_")}


def test_the_program_never_imports_eventlet(tmp_path: Path) -> None:
    """``run list`` opens the journal (TaskFlow, whose futurist looks for eventlet): it
    answers, and eventlet stays out of the process."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('eventlet loaded:', sys.modules.get('eventlet') "
        "is not None, file=sys.stderr))\n"
        "from ephyra.cli.main import run\n"
        "sys.argv[1:] = ['--format', 'json', 'run', 'list']\n"
        "run()\n"
    )
    variables = {
        "EPHYRA_JOURNAL": f"sqlite:///{tmp_path / 'journal.db'}",
        "EPHYRA_LOCKS": f"file://{tmp_path / 'locks'}",
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    done = fresh_python("-c", code, env=variables)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    assert "eventlet loaded: False" in done.stderr


def help_of(*command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*command, "--help"])
    assert exited.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_the_numbers_help_shows_are_the_engines(capsys: pytest.CaptureFixture[str]) -> None:
    """Help states these without importing where they live; they must agree."""
    assert audit.MAX_READ_SHOWN == MAX_READ
    assert f"1 to {MAX_READ})" in help_of("audit", "list", capsys=capsys)
    assert conductor.RETRY_DELAY_SHOWN == RETRY_DELAY
    assert f"({RETRY_DELAY:g})" in help_of("conductor", capsys=capsys)
    assert agent.CHECK_TIMEOUT_SHOWN == CHECK_TIMEOUT
    assert f"(default {CHECK_TIMEOUT:g})" in help_of("agent", capsys=capsys)
    assert ", ".join(MODES) == env.MODES_SHOWN
    assert f"({', '.join(MODES)})" in help_of("env", "apply", capsys=capsys)


def test_a_mode_is_checked_when_given(capsys: pytest.CaptureFixture[str]) -> None:
    for mode in MODES:
        args = build_parser().parse_args(["env", "deployment-info", "e", "n", "--mode", mode])
        assert args.mode == mode
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["env", "apply", "e", "n", "--mode", "sideways"])
    assert exited.value.code == 2
    assert "'sideways' is not a mode: default, isolated, cutover" in capsys.readouterr().err


def test_defaults_left_to_the_engine(tmp_path: Path) -> None:
    """--retry-delay and --validate-timeout unset: the engine's values apply."""
    assert build_parser().parse_args(["conductor"]).retry_delay is None
    host = ["agent", "--host", "h1", "--address", "127.0.0.1", "--role", "r"]
    host += ["--upgrade", "true", "--log-dir", str(tmp_path)]
    assert agent.config(build_parser().parse_args(host)).validate_timeout == CHECK_TIMEOUT
    given = build_parser().parse_args([*host, "--validate-timeout", "5"])
    assert agent.config(given).validate_timeout == 5.0
