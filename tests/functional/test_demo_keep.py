"""``scripts/demo.sh --keep``: the demo leaves its control planes, journal and ``ephyra
serve`` running, prints how to use them, and its stop command ends every process.

The demo runs as ``python -m testbed.demo`` (what scripts/demo.sh runs once installed) from
a directory other than the repository's, with a private directory under tmp_path
(``EPHYRA_DEMO_DIR``); the test then follows the printed instructions as a user would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from testbed.daemon import read_pids, stop_recorded, write_pids
from testbed.demo import DIR_ENV, INSTRUCTIONS, SCRIPT_ENV, Demo, keep, stop
from testbed.ironic import _group_members
from testbed.supervise import process_alive

ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 300


@dataclass(frozen=True)
class Printed:
    """What the kept demo told its user."""

    text: str
    dashboard: str
    token: str
    token_file: Path
    export: str
    commands: list[str]
    stop: str


def _parse(text: str) -> Printed:
    def one(pattern: str) -> str:
        found = re.search(pattern, text, re.MULTILINE)
        assert found, f"no {pattern!r} in:\n{text}"
        return found.group(1)

    commands = re.findall(r"^  (ephyra .*)$", text, re.MULTILINE)
    return Printed(
        text=text,
        dashboard=one(r"^  dashboard:\s+(http://127\.0\.0\.1:\d+/)$"),
        token=one(r"^  log in with the admin token (\S+)$"),
        token_file=Path(one(r"^  \(it is in (\S+)\)$")),
        export=one(r"^  (export .*)$"),
        commands=commands,
        stop=one(r"^To stop it all and remove its state:\n\n  (.+)$"),
    )


def _shell(line: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``line`` run by bash as a user types it."""
    return subprocess.run(
        ["bash", "-c", line],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _get(url: str, token: str | None = None, cookie: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("X-Auth-Token", token)
    if cookie:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _login(url: str, token: str) -> str:
    """The dashboard's log in: POST /v1/session with the token; the cookie it sets."""
    request = urllib.request.Request(
        f"{url}v1/session", method="POST", headers={"X-Auth-Token": token}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status == 200
        cookie = reply.headers["Set-Cookie"]
    return str(cookie).split(";", 1)[0]


def _port_open(url: str) -> bool:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=5):
            return True
    except ConnectionRefusedError:
        return False


@pytest.fixture
def demo_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a user running the demo from tmp_path, its directory private;
    whatever the test leaves running is stopped at the end."""
    home = tmp_path / "demo"
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, DIR_ENV: str(home), "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
    env.pop(SCRIPT_ENV, None)
    env.pop("XDG_STATE_HOME", None)
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    yield env
    if home.exists():
        stop(Demo(home))


def _keep(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The kept demo, to its end: it returns once its instructions are printed (a process
    it leaves running that held its output would keep it from ending)."""
    argv = [sys.executable, "-m", "testbed.demo", "--keep", "--nodes", "2", "--concurrency", "2"]
    return subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_kept_demo_is_explored_then_stopped(demo_env: dict[str, str], tmp_path: Path) -> None:
    home = Path(demo_env[DIR_ENV])
    kept = _keep(demo_env, tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    printed = _parse(kept.stdout)
    assert printed.token_file == home / "state" / "ephyra" / "api-tokens.yaml"
    assert printed.token in yaml.safe_load(printed.token_file.read_text())
    assert printed.export.startswith("export PATH=")
    assert f"OS_CLIENT_CONFIG_FILE={home / 'clouds.yaml'}" in printed.export
    assert "ephyra forklift status" in printed.commands
    assert "ephyra forklift list -f json" in printed.commands
    assert "ephyra forklift rollback    # moves the nodes back to cp1" in printed.commands
    assert any(c.startswith("ephyra forklift plan --from cp2 --to cp1") for c in printed.commands)

    # The dashboard and the API, with the printed token.
    url = printed.dashboard
    assert _get(f"{url}v1/whoami")[0] == 401
    status, body = _get(f"{url}v1/whoami", printed.token)
    assert status == 200
    assert "admin" in json.loads(body)["roles"]
    status, body = _get(f"{url}v1/runs", printed.token)
    assert status == 200
    (run,) = json.loads(body)["runs"]
    assert (run["kind"], run["state"]) == ("forklift", "succeeded")
    assert _get(url, cookie=_login(url, printed.token))[0] == 200  # the dashboard's page

    # The printed commands, in a shell with the printed environment.
    shell_env = {k: v for k, v in demo_env.items() if k != DIR_ENV}
    listed = _shell(f"{printed.export}; ephyra forklift list -f json", shell_env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    (forklift,) = json.loads(listed.stdout)
    assert forklift["id"] == run["id"]
    assert (forklift["state"], forklift["from"], forklift["to"], forklift["nodes"]) == (
        "succeeded",
        "cp1",
        "cp2",
        2,
    )
    (through_api,) = [c for c in printed.commands if c.startswith(f"ephyra --url {url} ")]
    remote = _shell(f"{printed.export}; {through_api}", shell_env, tmp_path)
    assert remote.returncode == 0, remote.stderr
    assert run["id"] in remote.stdout

    # A second --keep while it runs says so and prints the same instructions.
    again = _keep(demo_env, tmp_path)
    assert again.returncode == 0, again.stderr
    instructions = (home / "instructions.txt").read_text()
    assert kept.stdout.endswith(f"\n{instructions}")
    assert again.stdout == f"a kept demo is already running in {home}\n\n{instructions}"

    # The stop command ends every process and closes every port.
    pids = read_pids(home)
    assert pids is not None and set(pids) == {"cp1", "cp2", "serve"}
    clouds = yaml.safe_load((home / "clouds.yaml").read_text())["clouds"]
    urls = [url, *(cloud["baremetal_endpoint_override"] for cloud in clouds.values())]
    assert all(_port_open(u) for u in urls)
    stopped = _shell(printed.stop, shell_env, Path("/"))
    assert stopped.returncode == 0, stopped.stderr
    assert f"removed {home}" in stopped.stdout
    assert not home.exists()
    for name, pid in pids.items():
        assert not process_alive(pid), name
        assert _group_members(pid) == [], name
    assert not any(_port_open(u) for u in urls)


def test_testbed_up_and_down_from_another_directory(
    demo_env: dict[str, str], tmp_path: Path
) -> None:
    """``python -m testbed up`` in the background and ``down`` from elsewhere: neither
    depends on the directory it runs in."""
    bed = tmp_path / "bed"
    up = subprocess.Popen(
        [sys.executable, "-m", "testbed", "up", "bed", "--nodes", "1"],
        env=demo_env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert up.stdout is not None
        lines = []
        for line in up.stdout:  # until it says it is ready (or ends)
            lines.append(line)
            if line.startswith("export OS_CLIENT_CONFIG_FILE="):
                break
        assert lines[-1] == f"export OS_CLIENT_CONFIG_FILE={bed / 'clouds.yaml'}\n", lines
        pids = read_pids(bed)
        assert pids is not None and set(pids) == {"testbed", "cp1", "cp2"}
        down = subprocess.run(
            [sys.executable, "-m", "testbed", "down", str(bed)],
            env=demo_env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert down.returncode == 0, down.stderr
        assert up.wait(timeout=30) == 0
        assert up.stdout.read() == "stopped\n"
        for name, pid in pids.items():
            assert not process_alive(pid), name
            assert _group_members(pid) == [], name
        assert read_pids(bed) is None
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        if (bed / "pids").exists():
            stop_recorded(bed)


def test_a_directory_that_is_no_kept_demo_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes").write_text("mine\n")
    assert keep(Demo(mine), nodes=1, concurrency=1, rollback=False) == 2
    assert stop(Demo(mine)) == 2
    assert (mine / "notes").read_text() == "mine\n"
    assert capsys.readouterr().err == (
        f"demo: {mine} is not a kept demo's directory: give another --dir\n"
        f"demo: {mine} is not a kept demo's directory: left as it is\n"
    )
    assert stop(Demo(tmp_path / "none")) == 1


def test_a_partly_running_demo_is_refused_then_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SCRIPT_ENV, raising=False)  # run directly, not by scripts/demo.sh
    root = tmp_path / "demo"
    root.mkdir()
    alive = subprocess.Popen(["sleep", "600"], start_new_session=True)
    ended = subprocess.Popen(["true"])
    ended.wait()
    try:
        write_pids(root, {"cp1": alive.pid, "cp2": ended.pid})
        (root / INSTRUCTIONS).write_text("how to use it\n")
        assert keep(Demo(root), nodes=1, concurrency=1, rollback=False) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"demo: the kept demo in {root} is only partly running (cp2 ended)")
        assert f"-m testbed.demo --stop --dir {root}\n" in err
        assert alive.poll() is None
        assert stop(Demo(root)) == 0
        assert alive.wait(timeout=30) == -signal.SIGTERM
        assert not root.exists()
    finally:
        if alive.poll() is None:
            alive.kill()
            alive.wait()
