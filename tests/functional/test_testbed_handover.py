"""The testbed's hand-over commands (testbed.handover) on the session's two clouds, run as
an operator's tool runs them (the shell templates of TwoClouds.handover_commands, no OS_*
variable, another directory): release stops a compute of ``a`` and keeps it stopped, a
second release changes nothing, and the testbed's own waits ignore the starts refused;
adopt points it at ``b``, where it registers, a second adopt changes nothing and an adopt
back while it runs for ``b`` is refused; TwoClouds.bring_hosts_home brings it home. The
whole chain with Nova (drain, delete, discover, boot) is the host reallocation's to
prove."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from testbed.release_gate import EXIT_BROKEN
from testbed.releases import state_file
from testbed.supervise import process_alive, read_state
from testbed.tenantclouds import TwoClouds

WAIT_S = 120.0
POLL_S = 0.1


@pytest.fixture
def clouds(two_clouds: TwoClouds) -> Iterator[TwoClouds]:
    """The session's clouds; every host is home again afterwards, whatever happened."""
    yield two_clouds
    two_clouds.bring_hosts_home()


def run(clouds: TwoClouds, kind: str, cwd: Path, **values: str) -> subprocess.CompletedProcess[str]:
    """The hand-over command ``kind`` filled with ``values`` (already safe words)."""
    command = clouds.handover_commands()[kind].format(**values)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
    return subprocess.run(
        command, shell=True, capture_output=True, text=True, env=env, cwd=cwd, check=False
    )


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {WAIT_S:.0f} s")
        time.sleep(POLL_S)


def refusals(supervisor: Path) -> int | None:
    """Children ended so far, when the last one was refused by the release gate."""
    state = read_state(supervisor)
    return state.exits if state is not None and state.last_exit == EXIT_BROKEN else None


def up_in(clouds: TwoClouds, cloud: str, host: str) -> bool:
    services = clouds.connect(cloud).compute.services(binary="nova-compute")
    return any(s.host == host and s.state == "up" for s in services)


def test_release_and_adopt_are_idempotent_and_clean_brings_the_host_home(
    clouds: TwoClouds, tmp_path: Path
) -> None:
    nova_a = clouds.a.nova
    assert nova_a is not None
    host = nova_a.hosts[-1]
    supervisor = state_file(nova_a.root, host)
    before = nova_a.service_pid(host)
    assert before is not None

    first = run(clouds, "release", tmp_path, host=host)
    assert (first.returncode, first.stderr) == (0, "")
    assert not process_alive(before)
    again = run(clouds, "release", tmp_path, host=host)
    assert again.returncode == 0
    assert again.stdout.strip() == f"{host} is released (it left a); nova-compute is not running"
    # kept stopped: its supervisor starts it again and again, the release gate refuses
    wait_for(lambda: refusals(supervisor) is not None, "a start refused")
    counted = refusals(supervisor)
    wait_for(lambda: (refusals(supervisor) or 0) > (counted or 0), "another start refused")
    # a wait of a's testbed (a heartbeat of the other host, 2 s) ignores those refusals
    nova_a.wait_service(nova_a.hosts[0], since=datetime.now(UTC).replace(tzinfo=None))

    adopted = run(clouds, "adopt", tmp_path, host=host, cloud="b")
    assert (adopted.returncode, adopted.stderr) == (0, "")
    pid = nova_a.service_pid(host)
    assert pid is not None
    wait_for(lambda: up_in(clouds, "b", host), f"{host} up in b")
    same = run(clouds, "adopt", tmp_path, host=host, cloud="b")
    assert same.returncode == 0
    assert nova_a.service_pid(host) == pid  # not restarted
    back = run(clouds, "adopt", tmp_path, host=host, cloud="a")
    assert back.returncode == 1
    assert back.stderr.strip().endswith("runs for cloud b: release it first")
    assert nova_a.service_pid(host) == pid

    assert clouds.bring_hosts_home() == [host]
    assert clouds.away() == {}
    assert up_in(clouds, "a", host)
    assert host not in {s.host for s in clouds.connect("b").compute.services()}
    assert host not in {p.name for p in clouds.connect("b").placement.resource_providers()}
