"""Runs driven by ``ephyra conductor`` workers: real etcd (the board and the runs' locks),
a real PostgreSQL journal, every process the real ``ephyra`` command line.

Each test posts an upgrade of four hosts (``ephyra upgrade start --board``) with a
static inventory and a command strategy: each host is a few files. The upgrade command
appends a line to ``HOST.calls`` whenever it runs; unless the host is at the new version
already, it sleeps, appends one line to ``HOST.effects`` and writes ``HOST.version``
(idempotent, as strategies are). The health gate appends to ``HOST.gates`` and checks the
version file. So "no step applied twice" reads as: every ``effects`` file has one line,
and the ``calls`` of a host whose upgrade was recorded before a conductor died has one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import etcd3gw
import pytest
import yaml

from ephyra.engine.locks import RunLock
from testbed.etcd import Etcd
from testbed.postgres import Postgres
from tests.functional.ephyra_cli import EPHYRA, Ephyra
from tests.functional.holds import Gate

pytestmark = pytest.mark.functional

HOSTS = ("h1", "h2", "h3", "h4")
UPGRADE_S = 1.0  # how long one host's upgrade command works
DATABASE = "ephyra"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    scratch = Path(tempfile.mkdtemp(prefix="ephyra-conductor-"))
    scratch.chmod(0o755)  # PostgreSQL runs as its own user
    server = Postgres(scratch / "pg", scratch / "postgres.log")
    server.start(databases=[DATABASE])
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


class Conductor:
    """One ``ephyra conductor`` process, in a process group of its own; its stdout lines
    are kept with the moment each arrived."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], err: Path) -> None:
        self.name = name
        self._err = err.open("w")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            start_new_session=True,
        )
        self.err = err
        self.lines: list[tuple[float, str]] = []
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._seen.notify_all()

    def said(self, text: str) -> list[float]:
        """When each line containing ``text`` arrived."""
        with self._seen:
            return [at for at, line in self.lines if text in line]

    def wait_for(self, text: str, timeout: float = 60, after: float = 0.0) -> float:
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                hits = [at for at, line in self.lines if text in line and at >= after]
                if hits:
                    return hits[0]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._pending()):
                    raise AssertionError(f"{self.name} never said {text!r}:\n{self.output()}")
                self._seen.wait(min(left, 0.2))

    def wait_for_err(self, text: str, timeout: float = 60) -> None:
        """Until the conductor's stderr (its runs' progress) says ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.err.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{self.name} never said {text!r}:\n{self.output()}")
            time.sleep(0.05)

    def _pending(self) -> bool:
        return self.proc.stdout is not None and not self.proc.stdout.closed

    def output(self) -> str:
        out = "\n".join(line for _, line in self.lines)
        return f"{out}\n--- stderr (tail) ---\n{self.err.read_text()[-3000:]}"

    def kill9(self) -> None:
        """kill -9 of the whole process group, as a machine lost."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._err.close()


class Cluster:
    """Conductors on one board, one PostgreSQL journal and etcd locks; the hosts' files."""

    def __init__(
        self, root: Path, etcd: Etcd, postgres: Postgres, ttl: int, lock_timeout: int
    ) -> None:
        self.root = root
        self.etcd = etcd
        self.postgres = postgres
        self.ttl = ttl
        self.lock_timeout = lock_timeout
        self.path = f"t-{uuid.uuid4().hex[:10]}"  # a board of its own on the shared etcd
        self.board = f"{etcd.url}/{self.path}?ttl={ttl}"
        self.hosts = root / "hosts"
        self.hosts.mkdir()
        self.ephyra = Ephyra(root / "no-clouds.yaml", root / "state")
        self.ephyra.env.update(
            {
                "EPHYRA_JOURNAL": postgres.url(DATABASE),
                "EPHYRA_LOCKS": f"{etcd.url}?lock_timeout={lock_timeout}",
            }
        )
        self.conductors: list[Conductor] = []

    def conductor(self, name: str) -> Conductor:
        argv = [*EPHYRA, "-v", "conductor", "--board", self.board, "--name", name]
        started = Conductor(
            name, [*argv, "--retry-delay", "1"], self.ephyra.env, self.root / f"{name}.err"
        )
        self.conductors.append(started)
        return started

    def ready(self, *conductors: Conductor) -> None:
        for c in conductors:
            c.wait_for("waiting for jobs", timeout=30)

    def post(
        self, gate_s: float = 0.0, upgrade_s: float = UPGRADE_S, hold: Gate | None = None
    ) -> str:
        """Queue the upgrade of every host to 2.0; the run id. Each host's upgrade
        command works ``upgrade_s`` seconds, the gate of h2 lasts ``gate_s``; with
        ``hold``, h2's upgrade command waits for it to open before it works."""
        files = self.hosts
        held = f"[ {{host}} != h2 ] || {{{{ {hold.wait_command()}; }}}}; " if hold else ""
        upgrade = (
            f"d={files}; echo $$ >> $d/{{host}}.calls; {held}"
            f'[ "$(cat $d/{{host}}.version 2>/dev/null)" = "{{version}}" ] && exit 0; '
            f'sleep {upgrade_s}; echo "{{host}} {{version}}" >> $d/{{host}}.effects; '
            f"echo {{version}} > $d/{{host}}.version"
        )
        gate = (
            f"echo $$ >> {files}/{{host}}.gates; [ {{host}} = h2 ] && sleep {gate_s}; "
            f'test "$(cat {files}/{{host}}.version)" = {{version}}'
        )
        spec = {
            "release": "2.0",
            "strategy": "cmd",
            "strategies": {
                "cmd": {
                    "type": "command",
                    "upgrade": upgrade,
                    "version": f"cat {files}/{{host}}.version 2>/dev/null || echo 1.0",
                }
            },
            "roles": {"worker": {"max_at_once": 1}},
            "gates": {"timeout": 20, "interval": 0.2, "checks": [{"name": "v", "command": gate}]},
        }
        inventory = {
            "hosts": [
                {"name": h, "roles": ["worker"], "services": [{"name": "app", "project": "app"}]}
                for h in HOSTS
            ]
        }
        (self.root / "spec.yaml").write_text(yaml.safe_dump(spec))
        (self.root / "inventory.yaml").write_text(yaml.safe_dump(inventory))
        posted = self.ephyra(
            "upgrade",
            "start",
            "--yes",
            "--spec",
            str(self.root / "spec.yaml"),
            "--source",
            f"static:{self.root / 'inventory.yaml'}",
            "--board",
            self.board,
        )
        assert posted.code == 0, posted.err
        words = posted.out.split()
        assert words[0] == "run" and posted.out.strip().endswith(f"queued on {self.board}")
        return words[1]

    def claimer(self, timeout: float = 30) -> Conductor:
        """The conductor that claimed the run first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            claimed = [c for c in self.conductors if c.said("claimed upgrade run")]
            if claimed:
                return min(claimed, key=lambda c: c.said("claimed upgrade run")[0])
            time.sleep(0.05)
        raise AssertionError("no conductor claimed the run")

    def wait_file(self, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not (self.hosts / name).exists():
            assert time.monotonic() < deadline, f"{name} never appeared"
            time.sleep(0.02)

    def lines(self, host: str, what: str) -> list[str]:
        path = self.hosts / f"{host}.{what}"
        return path.read_text().splitlines() if path.exists() else []

    def status(self, run_id: str) -> dict[str, Any]:
        shown = self.ephyra("--format", "json", "upgrade", "status", run_id)
        assert shown.code == 0, shown.err
        data: dict[str, Any] = json.loads(shown.out)
        return data

    def journal_row(self, run_id: str) -> dict[str, Any]:
        """The run's record, read from PostgreSQL itself."""
        rows = self.postgres.query(DATABASE, "SELECT meta FROM logbooks WHERE uuid = %s", run_id)
        assert len(rows) == 1, rows
        meta = rows[0][0]
        record: dict[str, Any] = json.loads(meta) if isinstance(meta, str) else meta
        return record

    def jobs(self) -> list[dict[str, Any]]:
        listed = self.ephyra("--format", "json", "conductor", "--board", self.board, "--list")
        assert listed.code == 0, listed.err
        jobs: list[dict[str, Any]] = json.loads(listed.out)
        return jobs

    def etcd_keys(self) -> list[str]:
        client = etcd3gw.Etcd3Client(host="127.0.0.1", port=self.etcd.port)
        prefix = f"/taskflow/jobs/{self.path}/job"
        return [bytes(meta["key"]).decode() for _, meta in client.get_prefix(prefix)]

    def assert_upgraded_once(self, run_id: str) -> None:
        """The run succeeded in the journal, each host at 2.0, each effect once, the job
        gone from the board."""
        with ThreadPoolExecutor(2) as pool:  # two commands, each a second or two
            shown, listed = pool.submit(self.status, run_id), pool.submit(self.jobs)
            status, jobs = shown.result(), listed.result()
        assert status["state"] == "succeeded", status
        assert [u["forward"] for u in status["units"]] == ["upgraded"] * len(HOSTS)
        assert self.journal_row(run_id)["state"] == "succeeded"
        for host in HOSTS:
            assert (self.hosts / f"{host}.version").read_text().strip() == "2.0"
            assert self.lines(host, "effects") == [f"{host} 2.0"], host
        assert jobs == []
        assert self.etcd_keys() == []

    def close(self) -> None:
        for c in self.conductors:
            c.stop()

    def wait_unlocked(self) -> None:
        """Until the runs' lock is free (a killed conductor's lease runs out), and the
        command a killed conductor left has ended."""
        deadline = time.monotonic() + self.lock_timeout + 5
        while time.monotonic() < deadline:
            with RunLock("upgrade -", self.ephyra.env["EPHYRA_LOCKS"]) as lock:
                if lock.try_acquire():
                    break
            time.sleep(0.5)
        time.sleep(UPGRADE_S)


@pytest.fixture
def cluster_of(
    etcd: Etcd, postgres: Postgres, tmp_path: Path
) -> Iterator[Callable[[int, int], Cluster]]:
    made: list[Cluster] = []

    def make(ttl: int, lock_timeout: int) -> Cluster:
        cluster = Cluster(tmp_path, etcd, postgres, ttl, lock_timeout)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.close()
        cluster.wait_unlocked()  # a test that failed leaves no lock to the next one


@pytest.mark.parametrize(
    ("where", "ttl", "lock_timeout"),
    [("in an upgrade command", 2, 8), ("in a gate, the upgrade recorded", 6, 3)],
)
def test_a_killed_conductors_run_is_taken_over_and_finished_once(
    cluster_of: Callable[[int, int], Cluster], where: str, ttl: int, lock_timeout: int
) -> None:
    cluster = cluster_of(ttl, lock_timeout)
    a, b = cluster.conductor("c1"), cluster.conductor("c2")
    posted = time.monotonic()
    run_id = cluster.post(gate_s=1.0 if "gate" in where else 0.0)
    cluster.ready(a, b)
    victim = cluster.claimer()
    survivor = b if victim is a else a
    cluster.wait_file("h2.gates" if "gate" in where else "h2.calls")
    killed = time.monotonic()
    victim.kill9()
    assert cluster.lines("h1", "effects") == ["h1 2.0"]  # h1 was done, h2 under way
    assert len(cluster.lines("h2", "gates" if "gate" in where else "effects")) == (
        1 if "gate" in where else 0
    )
    assert cluster.status(run_id)["state"] == "running"  # as the journal says, driven or not

    finished = survivor.wait_for("finished upgrade run", timeout=60, after=killed)
    claimed = survivor.wait_for("claimed upgrade run", after=killed)
    resumed = [t for t in survivor.said("resuming upgrade run") if t < finished][-1]
    assert f"finished upgrade run {run_id}: run succeeded; job consumed" in survivor.output()
    assert not victim.said("finished")
    # the survivor waited for the dead conductor's claim to run out (refreshed every
    # ttl/3, so it lasts at least 2/3 of the ttl after the kill); how much longer it
    # took is a measurement (printed below), not an outcome
    assert claimed - killed >= ttl / 2, survivor.output()
    if lock_timeout > ttl:  # the run's lock outlived the claim: given back, tried again
        assert survivor.said("is locked"), survivor.output()
    cluster.assert_upgraded_once(run_id)
    assert cluster.lines("h1", "calls") and len(cluster.lines("h1", "calls")) == 1
    if "gate" in where:  # the upgrade of h2 was recorded: only its gate runs again
        assert len(cluster.lines("h2", "calls")) == 1
        assert len(cluster.lines("h2", "gates")) == 2
    else:  # cut in the middle: done again, finding its work done (the command lived on)
        assert len(cluster.lines("h2", "calls")) == 2
    for host in ("h3", "h4"):
        assert len(cluster.lines(host, "calls")) == 1
    record = cluster.journal_row(run_id)
    assert record["pid"] == survivor.proc.pid  # the survivor drove the run to its end
    print(
        f"\n[{where}] ttl {ttl}s, lock_timeout {lock_timeout}s: claim taken over "
        f"{claimed - killed:.1f}s after kill -9, run resumed {resumed - killed:.1f}s after, "
        f"run {finished - posted:.1f}s from posting to finished"
    )


def test_a_run_longer_than_the_ttl_stays_with_its_live_conductor(
    cluster_of: Callable[[int, int], Cluster],
) -> None:
    ttl = 2
    cluster = cluster_of(ttl, 2)
    a, b = cluster.conductor("c1"), cluster.conductor("c2")
    posted = time.monotonic()
    run_id = cluster.post(upgrade_s=1.5)
    cluster.ready(a, b)
    owner = cluster.claimer()
    other = b if owner is a else a
    finished = owner.wait_for("finished upgrade run", timeout=60)
    claimed = owner.said("claimed upgrade run")[0]
    assert finished - claimed > 2.5 * ttl  # the run outlived its claim's ttl, and again
    assert not other.said("claimed"), other.output()
    assert len(owner.said("claimed")) == 1
    cluster.assert_upgraded_once(run_id)
    for host in HOSTS:
        assert len(cluster.lines(host, "calls")) == 1
    record = cluster.journal_row(run_id)
    assert record["pid"] == owner.proc.pid
    assert record["host"]
    print(
        f"\n[extended claim] ttl {ttl}s, run {finished - claimed:.1f}s from claim to finished "
        f"({finished - posted:.1f}s from posting), one conductor"
    )


def test_sigterm_pauses_the_run_and_hands_it_to_another_conductor_at_once(
    cluster_of: Callable[[int, int], Cluster],
) -> None:
    # a hand-over that waited for the claim to run out would take this long, longer
    # than the survivor is given to resume it
    ttl = 60
    cluster = cluster_of(ttl, 10)
    a, b = cluster.conductor("c1"), cluster.conductor("c2")
    gate = Gate(cluster.root / "h2-go")  # h2's upgrade waits until the SIGTERM is taken
    run_id = cluster.post(hold=gate)
    cluster.ready(a, b)
    victim = cluster.claimer()
    survivor = b if victim is a else a
    cluster.wait_file("h2.calls")
    stopped = time.monotonic()
    victim.proc.send_signal(signal.SIGTERM)
    victim.wait_for_err("pause requested")
    assert cluster.lines("h2", "effects") == []  # it landed inside h2's upgrade
    gate.open()
    assert victim.proc.wait(30) == 130, victim.output()
    assert victim.said("abandoned upgrade run"), victim.output()
    resumed = survivor.wait_for("resuming upgrade run", timeout=30, after=stopped)
    assert "handed over: conductor" in survivor.output()
    assert resumed - stopped < ttl / 2  # not after the claim ran out
    survivor.wait_for("finished upgrade run", timeout=60)
    cluster.assert_upgraded_once(run_id)
    for host in HOSTS:  # the pause came at a step boundary: nothing was cut, nothing redone
        assert len(cluster.lines(host, "calls")) == 1
    assert cluster.journal_row(run_id)["pid"] == survivor.proc.pid
    print(f"\n[SIGTERM] run handed over in {resumed - stopped:.1f}s (ttl {ttl}s)")


def test_an_operators_pause_stands_until_resume_board(
    cluster_of: Callable[[int, int], Cluster],
) -> None:
    cluster = cluster_of(4, 4)
    a = cluster.conductor("c1")
    gate = Gate(cluster.root / "h2-go")  # h2's upgrade waits until the pause is taken
    run_id = cluster.post(hold=gate)
    cluster.wait_file("h2.calls")
    paused = cluster.ephyra("upgrade", "pause", run_id)
    assert paused.code == 0, paused.err
    assert f"pause of run {run_id[:8]}" in paused.out, paused.out
    a.wait_for_err("pause requested")
    assert cluster.lines("h2", "effects") == []  # the pause landed inside h2's upgrade
    gate.open()
    a.wait_for("finished upgrade run", timeout=30)
    assert f"finished upgrade run {run_id}: run paused; job consumed" in a.output()
    assert cluster.journal_row(run_id)["state"] == "paused"
    assert cluster.jobs() == []  # consumed: a conductor does not undo an operator's pause

    queued = cluster.ephyra("upgrade", "resume", run_id, "--board", cluster.board)
    assert queued.code == 0, queued.err
    assert f"run {run_id} queued on {cluster.board}" in queued.out
    first = a.said("finished upgrade run")[0]
    resumed = a.wait_for("resuming upgrade run", after=first + 0.001)
    assert "(handed over: resume queued from" in a.output()
    a.wait_for("finished upgrade run", after=resumed)
    cluster.assert_upgraded_once(run_id)
    for host in HOSTS:  # the pause came at a step boundary: nothing done twice
        assert len(cluster.lines(host, "calls")) == 1
