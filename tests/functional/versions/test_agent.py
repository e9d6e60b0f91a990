"""``ephyra agent`` processes on a real etcd and on SQLite: a rollout by the rules kept in
the store, a failure with its log, the newest version winning, a killed agent dropping out.

Each host is a directory: its version file is what its command strategy reads and writes,
and each upgrade appends "<version> <start> <end>" to its effects file, so the order and
the overlap of updates are read back from what really ran.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ephyra.cli.agent import once_ended
from ephyra.cli.main import main
from ephyra.versions import report
from ephyra.versions.keys import Keys
from ephyra.versions.store import open_store
from testbed.etcd import Etcd
from tests.functional.ephyra_cli import Background, Ephyra

UPGRADE = (
    "start=$(date +%s.%N); sleep {sleep}; "
    'case " $FAIL " in *" {{host}}-{{version}} "*) echo "dpkg: error processing {{host}}"; '
    "exit 1;; esac; echo {{version}} > {root}/{{host}}.version; "
    'echo "{{version}} $start $(date +%s.%N)" >> {root}/{{host}}.effects; echo upgraded {{host}}'
)


class Fleet:
    """Agents of one store, each a real ``ephyra agent`` process."""

    def __init__(self, root: Path, store_url: str, prefix: str) -> None:
        self.root = root
        self.ephyra = Ephyra(root / "no-clouds.yaml", root / "state")
        self.ephyra.env.update({"EPHYRA_STORE": store_url, "EPHYRA_PREFIX": prefix})
        self.agents: dict[str, Background] = {}
        self.store_url, self.keys = store_url, Keys(prefix)

    def runs(self, version: str, host: str) -> bool:
        with open_store(self.store_url) as store:
            return report.verify(store, self.keys, version, [host]).ok

    def __call__(self, *args: str) -> tuple[int, str, str]:
        """An ``ephyra`` command on this store, run in this process (the agents are the
        processes that matter here)."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--store", self.store_url, "--prefix", self.keys.prefix, *args])
        return code, out.getvalue(), err.getvalue()

    def start(
        self,
        host: str,
        *roles: str,
        sleep: float = 0.3,
        fail: str = "",
        once: bool = False,
        upgrade: str = UPGRADE,
    ) -> Background:
        version = self.root / f"{host}.version"
        if not version.exists():
            version.write_text("1.0\n")
        self.ephyra.env["FAIL"] = fail
        agent = self.ephyra.background(
            "agent",
            "--host", host,
            *(f"--role={r}" for r in roles),
            "--address", f"10.0.0.{len(self.agents) + 1}",
            "--interface", f"eth1=192.168.0.{len(self.agents) + 1}",
            "--upgrade", upgrade.format(sleep=sleep, root=self.root),
            "--version-command", f"cat {self.root}/{{host}}.version",
            "--validate", f"grep -qx {{version}} {self.root}/{{host}}.version",
            "--log-dir", str(self.root / "logs"),
            "--ttl", "3",
            "--poll", "0.5",
            *(["--once"] if once else []),
        )  # fmt: skip
        self.agents[host] = agent
        return agent

    def up(self) -> None:
        """Wait until every agent started has announced itself."""
        for agent in self.agents.values():
            agent.wait_for(lambda line: "agent up" in line, timeout=60)

    def effects(self, host: str) -> list[tuple[str, float, float]]:
        path = self.root / f"{host}.effects"
        if not path.exists():
            return []
        rows = [line.split() for line in path.read_text().splitlines()]
        return [(v, float(a), float(b)) for v, a, b in rows]

    def status(self) -> dict[str, dict[str, object]]:
        code, out, err = self("--format", "json", "version", "status")
        assert code == 0, err
        return {row["host"]: row for row in json.loads(out)["hosts"]}

    def stop(self) -> None:
        for host, agent in self.agents.items():
            if agent.proc.poll() is None:
                agent.kill()
            print(f"--- {host}", *agent.lines[-15:], sep="\n")  # shown when a test fails


@pytest.fixture
def fleet(tmp_path: Path, store_url: str) -> Iterator[Fleet]:
    made = Fleet(tmp_path, store_url, f"/fleet-{tmp_path.name}")
    yield made
    made.stop()


def eventually(check: Callable[[], bool], timeout: float, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not true after {timeout} s"
        time.sleep(every)


def peak(spans: list[tuple[float, float]]) -> int:
    """The most spans open at one moment."""
    marks = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    best = now = 0
    for _, step in marks:
        now += step
        best = max(best, now)
    return best


def converged(fleet: Fleet, version: str, hosts: list[str]) -> Callable[[], bool]:
    return lambda: all(fleet.runs(version, host) for host in hosts)


def test_a_rollout_follows_the_rules_kept_in_the_store(fleet: Fleet, report: list[str]) -> None:
    controllers, computes = ["ctl-1", "ctl-2"], ["cmp-1", "cmp-2", "cmp-3", "cmp-4", "cmp-5"]
    for host in controllers:
        fleet.start(host, "controller", "db")
    for host in computes:
        fleet.start(host, "compute")
    assert fleet("version", "trigger", "1.0")[0] == 0
    fleet.up()
    eventually(converged(fleet, "1.0", controllers + computes), 20)
    started = time.monotonic()
    code, out, err = fleet(
        "version", "trigger", "2.0",
        "--max-at-once", "controller=1", "--max-at-once", "compute=2",
        "--after", "compute=controller",
    )  # fmt: skip
    assert code == 0, err
    assert "current version 2.0 (was 1.0)" in out
    eventually(converged(fleet, "2.0", controllers + computes), 60)
    took = time.monotonic() - started

    ran = {h: [e for e in fleet.effects(h) if e[0] == "2.0"] for h in controllers + computes}
    assert all(len(spans) == 1 for spans in ran.values()), ran  # each host updated once
    ctl_spans = [(a, b) for h in controllers for _, a, b in ran[h]]
    cmp_spans = [(a, b) for h in computes for _, a, b in ran[h]]
    assert peak(ctl_spans) == 1
    assert peak(cmp_spans) == 2  # the limit, and reached: five computes, two at a time
    assert min(a for a, _ in cmp_spans) > max(b for _, b in ctl_spans)  # after the controllers

    status = fleet.status()
    assert {h: (r["running"], r["state"], r["converged"]) for h, r in status.items()} == {
        h: ("2.0", "validated/success", True) for h in controllers + computes
    }
    code, out, _ = fleet("--format", "json", "roles", "hosts-of", "db")
    assert json.loads(out) == {
        "ctl-1": {"address": "10.0.0.1", "eth1": "192.168.0.1"},
        "ctl-2": {"address": "10.0.0.2", "eth1": "192.168.0.2"},
    }
    hiera = fleet.root / "hiera" / "active_roles.yaml"
    assert fleet("hiera", "export", "--output", str(hiera))[0] == 0
    text = hiera.read_text()
    assert "etcdlookup::active_roles::compute:" in text and "cmp-5:" in text
    assert "etcdlookup::active_roles::version: '2.0'" in text
    code, out, _ = fleet("--format", "json", "version", "history")
    assert [(t["version"], t["previous"]) for t in json.loads(out)] == [("1.0", ""), ("2.0", "1.0")]
    report.append(
        f"agents: 2 controllers + 5 computes to 2.0 (controller=1, compute=2, computes after "
        f"controllers, 0.3 s updates) in {took:.1f} s; peaks {peak(ctl_spans)} and "
        f"{peak(cmp_spans)}"
    )


def test_a_failure_holds_its_slot_shows_its_log_and_the_newest_version_wins(
    fleet: Fleet,
) -> None:
    hosts = ["cmp-1", "cmp-2", "cmp-3"]
    for host in hosts:
        fleet.start(host, "compute", sleep=0.2, fail="cmp-2-2.0")
    assert fleet("version", "trigger", "1.0")[0] == 0
    fleet.up()
    eventually(converged(fleet, "1.0", hosts), 20)
    assert (
        fleet("version", "trigger", "2.0", "--max-at-once", "compute=1", "--retries", "0")[0] == 0
    )
    eventually(lambda: fleet.status()["cmp-2"]["state"] == "configured/failure", 30)
    time.sleep(1.5)  # long enough for a wrongly freed slot to be taken
    status = fleet.status()
    failed = status["cmp-2"]
    assert not failed["updating"]  # it holds its slot, but it is not updating
    assert "dpkg: error processing cmp-2" in str(failed["message"])
    log = Path(str(failed["log"]).removeprefix("file://"))
    assert "dpkg: error processing cmp-2" in log.read_text()
    waiting = [h for h in hosts if status[h]["running"] == "1.0" and h != "cmp-2"]
    for host in waiting:  # the failed host keeps the one slot: no one else goes on
        assert fleet.effects(host) == []
        fleet.agents[host].wait_for(lambda line: "slot(s) for 2.0 are taken" in line, 10)
    code, out, err = fleet("version", "verify", "2.0", *hosts)
    assert code == 1
    assert "cmp-2" in out

    code, _, err = fleet("version", "trigger", "3.0")
    assert code == 2
    assert "have not converged on 2.0" in err and "failed: cmp-2" in err and "--force" in err
    assert fleet("version", "trigger", "3.0", "--force", "--max-at-once", "compute=all")[0] == 0
    eventually(converged(fleet, "3.0", hosts), 30)
    for host in waiting:  # straight from 1.0 to 3.0: 2.0 never ran there
        assert [v for v, _, _ in fleet.effects(host)] == ["3.0"]
    assert {h: r["state"] for h, r in fleet.status().items()} == dict.fromkeys(
        hosts, "validated/success"
    )


def test_a_killed_agent_drops_out_with_its_lease_and_comes_back(
    fleet: Fleet, report: list[str]
) -> None:
    fleet.start("cmp-1", "compute")
    victim = fleet.start("cmp-2", "compute")
    assert fleet("version", "trigger", "1.0")[0] == 0
    fleet.up()
    eventually(converged(fleet, "1.0", ["cmp-1", "cmp-2"]), 20)
    victim.kill()
    killed = time.monotonic()
    assert fleet.runs("1.0", "cmp-2")  # the lease still holds it, for up to its TTL
    eventually(lambda: not fleet.runs("1.0", "cmp-2"), 10, every=0.05)
    gone_after = time.monotonic() - killed
    assert gone_after < 3 + 1.5  # the TTL after its last refresh, and etcd's expiry rounds
    report.append(f"agent kill -9: its running version gone {gone_after:.1f} s later (TTL 3 s)")
    _, out, _ = fleet("--format", "json", "roles", "hosts-of", "compute")
    assert list(json.loads(out)) == ["cmp-1"]
    gone = fleet.status()["cmp-2"]  # known still (provisioned), but running nothing
    assert (gone["running"], gone["provisioned"], gone["converged"]) == ("-", "success", False)
    fleet.start("cmp-2", "compute")  # the host comes back: it announces itself again
    fleet.up()
    eventually(converged(fleet, "1.0", ["cmp-1", "cmp-2"]), 10)
    assert fleet.effects("cmp-2") == []  # it ran 1.0 all along: nothing to do


def test_etcd_killed_and_restarted_mid_update_loses_nothing(
    tmp_path: Path, report: list[str]
) -> None:
    """etcd (durable: fsync on) is killed -9 while three hosts update, and started again
    three seconds later: every update lands, nothing written before is missing."""
    server = Etcd(tmp_path / "etcd", tmp_path / "etcd.log", fsync=True)
    server.start()
    fleet = Fleet(tmp_path, server.url, "")
    hosts = ["cmp-1", "cmp-2", "cmp-3"]
    try:
        for host in hosts:
            fleet.start(host, "compute", sleep=1.5)
        assert fleet("version", "trigger", "1.0")[0] == 0
        fleet.up()
        eventually(converged(fleet, "1.0", hosts), 20)
        assert fleet("version", "trigger", "2.0", "--max-at-once", "compute=all")[0] == 0
        for host in hosts:
            fleet.agents[host].wait_for(lambda line: "2.0: updating" in line, 20)
        assert [r["updating"] for r in fleet.status().values()] == [True] * 3
        server.kill()
        down = time.monotonic()
        time.sleep(3)  # the updates end meanwhile: their results wait for etcd
        server.start()
        eventually(converged(fleet, "2.0", hosts), 30)
        after = time.monotonic() - down
        status = fleet.status()
        assert {h: (r["state"], r["provisioned"]) for h, r in status.items()} == dict.fromkeys(
            hosts, ("validated/success", "success")
        )
        for host in hosts:
            assert [v for v, _, _ in fleet.effects(host)] == ["2.0"]  # once each
        _, out, _ = fleet("--format", "json", "version", "history")
        assert [t["version"] for t in json.loads(out)] == ["1.0", "2.0"]
        said = "\n".join(line for agent in fleet.agents.values() for line in agent.lines)
        assert "trying again" in said
        report.append(
            f"etcd kill -9 mid-update, back 3 s later: all 3 hosts at 2.0 {after:.1f} s "
            "after the kill, nothing lost"
        )
    finally:
        fleet.stop()
        server.stop()


def test_once_exits_when_the_host_runs_or_failed_the_desired_version(fleet: Fleet) -> None:
    assert fleet("version", "trigger", "2.0", "--max-at-once", "compute=all")[0] == 0
    good = fleet.start("cmp-1", "compute", sleep=0.1, once=True)
    bad = fleet.start("cmp-2", "compute", sleep=0.1, fail="cmp-2-2.0", once=True)
    done = good.finish(60)
    assert done.code == 0
    assert bad.finish(60).code == 1
    assert [v for v, _, _ in fleet.effects("cmp-1")] == ["2.0"]
    status = fleet.status()
    assert status["cmp-2"]["state"] == "configured/failure"
    # its lease ended as it exited: verify no longer counts it, as --once said it would
    assert done.err.splitlines()[-1] == once_ended("cmp-1", "2.0")
    assert "`ephyra version verify 2.0 cmp-1` now says it does not run 2.0" in done.err
    code, out, _ = fleet("version", "verify", "2.0", "cmp-1")
    assert (code, out) == (1, "1 of 1 host(s) do not run 2.0: cmp-1\n")
    assert status["cmp-1"]["state"] == "validated/success"  # what version status still shows


def test_a_stalled_agent_whose_lease_expired_announces_itself_again(fleet: Fleet) -> None:
    """SIGSTOP an agent past its TTL (a host frozen, or starved of CPU): its keys go; once
    it runs again it takes a new lease, writes them back, and follows the new version."""
    agent = fleet.start("cmp-1", "compute", sleep=0.1)
    assert fleet("version", "trigger", "1.0")[0] == 0
    fleet.up()
    eventually(converged(fleet, "1.0", ["cmp-1"]), 20)
    agent.proc.send_signal(signal.SIGSTOP)
    try:
        eventually(lambda: not fleet.runs("1.0", "cmp-1"), 10, every=0.1)
        assert fleet("version", "trigger", "2.0", "--force")[0] == 0
    finally:
        agent.proc.send_signal(signal.SIGCONT)
    eventually(converged(fleet, "2.0", ["cmp-1"]), 20)
    agent.wait_for(lambda line: "the lease expired; announcing again" in line, 5)
    _, out, _ = fleet("--format", "json", "roles", "hosts-of", "compute")
    assert list(json.loads(out)) == ["cmp-1"]
