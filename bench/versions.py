"""Benchmark: the versions store and its host agents, on a real etcd.

Part 1, verify (seed 003's ``verify_hosts``): N hosts run a version; is that so? On the
same N ``/running_version/<version>/<host>`` keys, in the same run:
  ephyra-etcd     ``report.verify`` on etcd: one range read (median of --repeat runs)
  ephyra-sqlite   ``report.verify`` on the SQLite store (median of --repeat runs)
  get-loop        what an operator's script does today: one etcd GET per host (etcd3gw)
  etcdctl-loop    the shell loop: ``etcdctl get`` per host, on --cli-sample hosts,
                  its time scaled to N (extrapolated, marked *)

Part 2, rollout: M hosts run 1.0; make them all run 2.0.
  ephyra-agents   M ``Agent`` threads (noop strategy, role ``compute``), spread over
                  --processes processes sharing one EtcdStore each, all registered and
                  running 1.0 before the clock starts; then ``desired.trigger`` 2.0 with
                  ``--max-at-once *=all``, and the clock stops when ``report.verify``
                  (polled every 50 ms per 1,000 hosts) says every host runs 2.0
  loop            the Ansible/ssh-style loop: host after host, the (noop) upgrade then
                  one etcd put of the host's key (etcd3gw)
  etcdctl-loop    the same loop in shell, ``etcdctl put`` per host, on --cli-sample
                  hosts, its time scaled to M (extrapolated, marked *)

``--upgrade-seconds S`` makes every host's upgrade last S seconds (agents and loops alike),
as real package upgrades do: the loops pay it once per host, the agents about once.
``--max-at-once N`` rolls out N hosts at a time instead of all.

Pressure, to show the fleet recovers: ``--pause-etcd S`` stops the bench's own etcd
(SIGSTOP) just after the trigger and lets it go on (SIGCONT) S seconds later, longer than
the TTL: every lease is lost and every agent must announce itself again, once;
``--steal-cpu N`` runs N busy processes from the trigger to the end of the rollout.
It reports the convergence time, the etcd requests per agent by kind (LeaseGrant,
LeaseKeepAlive, Txn, Range, Watch), etcd's CPU seconds, the leases lost and the
re-announcements (in all, and the most by one agent).
It prints times and ratios against the aims: verify under 0.5 s at 10,000 hosts, 1,000
agents at the new version within 5 s of the trigger.

usage: .venv/bin/python bench/versions.py [--hosts 10000] [--agents 1000] [--processes 4]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the testbed package lives at the repository root
    sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # futurist, via etcd3gw

import etcd3gw  # noqa: E402

from ephyra.agent.loop import Agent, AgentConfig  # noqa: E402
from ephyra.errors import StoreError  # noqa: E402
from ephyra.strategies.base import Change, Output, Strategy, Target, build  # noqa: E402
from ephyra.strategies.noop import NoopStrategy  # noqa: E402
from ephyra.versions import desired, report  # noqa: E402
from ephyra.versions.keys import Keys  # noqa: E402
from ephyra.versions.lifecycle import record  # noqa: E402
from ephyra.versions.store import Put, Store, open_store  # noqa: E402
from testbed.etcd import Etcd  # noqa: E402

AIM_VERIFY_S = 0.5  # at 10,000 hosts
AIM_ROLLOUT_S = 5.0  # 1,000 agents
BATCH = 100  # puts per transaction (etcd's --max-txn-ops is 128 by default)
POLL_S = 0.05
#: The verify polls of the rollout read every host's key: one every 50 ms per 1,000
#: hosts, so the bench's own reads stay a small part of etcd's work at any fleet size.
POLL_HOSTS = 1000
STARTUP_S = 180.0  # for the agents to start, whatever --deadline says
FROM, TO = "1.0", "2.0"
ROLE = "compute"

VERIFY_CLI = """
missing=0
for host in "${@:3}"; do
    [ -n "$(etcdctl --endpoints="$1" get --keys-only "$2$host")" ] || missing=$((missing + 1))
done
echo "$missing"
"""

ROLLOUT_CLI = """
for host in "${@:4}"; do
    sleep "$3"  # ssh "$host" apt-get install ...: the upgrade
    etcdctl --endpoints="$1" put "$2$host" done >/dev/null || exit 1
done
"""


@dataclass
class Result:
    part: str  # "verify" or "rollout"
    contender: str
    hosts: int  # the hosts the time is for
    seconds: float | None = None
    measured: int = 0  # hosts really run; fewer than ``hosts``: the time is extrapolated
    detail: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def extrapolated(self) -> bool:
        return 0 < self.measured < self.hosts


def host_names(count: int) -> list[str]:
    return [f"cmp-{i:05d}" for i in range(count)]


def median_seconds(job: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        job()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def write_running(store: Store, keys: Keys, version: str, hosts: Sequence[str]) -> None:
    """``hosts`` run ``version``, written ``BATCH`` keys to a transaction."""
    value = record()
    for i in range(0, len(hosts), BATCH):
        store.txn([], [Put(keys.running(version, h), value) for h in hosts[i : i + BATCH]])


def run_cli(script: str, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ETCDCTL_API": "3"}
    return subprocess.run(
        ["bash", "-c", script, "bash", *args], env=env, capture_output=True, text=True
    )


def say(text: str) -> None:
    """Progress, on standard error."""
    print(text, file=sys.stderr, flush=True)


def etcdctl_missing() -> str | None:
    if shutil.which("etcdctl") is None:
        return "etcdctl is not installed (Debian's etcd-client): skipped"
    return None


# -- part 1: verify ---------------------------------------------------------------------
def bench_verify(etcd: Etcd, root: Path, count: int, repeat: int, sample: int) -> list[Result]:
    keys = Keys("/bench-verify")
    hosts = host_names(count)
    say(f"verify: writing {count} running_version keys")
    results = []
    with open_store(etcd.url) as store:
        write_running(store, keys, TO, hosts)
        results.append(verify_with(store, "ephyra-etcd", keys, hosts, repeat))
    with open_store(f"sqlite:///{root / 'versions.db'}") as store:
        write_running(store, keys, TO, hosts)
        results.append(verify_with(store, "ephyra-sqlite", keys, hosts, repeat))
    results.append(get_loop(etcd, keys, hosts))
    results.append(verify_cli(etcd, keys, hosts, sample))
    return results


def verify_with(store: Store, name: str, keys: Keys, hosts: list[str], repeat: int) -> Result:
    result = Result("verify", name, len(hosts), measured=len(hosts))
    verdict = report.verify(store, keys, TO, [*hosts, "absent-host"])
    if verdict.missing != ("absent-host",) or len(verdict.running) != len(hosts):
        result.problems.append(
            f"wrong verdict: {len(verdict.running)} running, missing {verdict.missing[:5]}"
        )
    result.seconds = median_seconds(lambda: report.verify(store, keys, TO, hosts), repeat)
    result.detail["repeat"] = repeat
    return result


def get_loop(etcd: Etcd, keys: Keys, hosts: list[str]) -> Result:
    """One GET per host, as a script written against etcd3gw does it."""
    result = Result("verify", "get-loop", len(hosts), measured=len(hosts))
    client = etcd3gw.client(host="127.0.0.1", port=etcd.port)
    started = time.perf_counter()
    missing = [h for h in hosts if not client.get(keys.running(TO, h))]
    result.seconds = time.perf_counter() - started
    client.session.close()
    if missing:
        result.problems.append(f"{len(missing)} hosts reported missing: {missing[:5]}")
    return result


def verify_cli(etcd: Etcd, keys: Keys, hosts: list[str], sample: int) -> Result:
    taken = hosts[:: max(1, len(hosts) // sample)][:sample]
    result = Result("verify", "etcdctl-loop", len(hosts), measured=len(taken))
    skipped = etcdctl_missing()
    if skipped:
        result.detail["skipped"] = skipped
        return result
    started = time.perf_counter()
    done = run_cli(VERIFY_CLI, [etcd.endpoint, keys.running(TO), *taken])
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or done.stdout.strip() != "0":
        result.problems.append(f"exit {done.returncode}, missing {done.stdout.strip()!r}: ")
        result.problems[-1] += done.stderr.strip()[-300:]
        return result
    result.seconds = elapsed * len(hosts) / len(taken)
    return result


# -- part 2: rollout ----------------------------------------------------------------------
class SlowNoop(NoopStrategy):
    """The noop strategy, whose upgrade lasts ``pause`` seconds."""

    def __init__(self, options: Mapping[str, Any], pause: float) -> None:
        super().__init__(options)
        self.pause = pause

    def upgrade(self, target: Target, output: Output) -> Change:
        time.sleep(self.pause)
        return super().upgrade(target, output)


def strategy(pause: float) -> Strategy:
    if pause > 0:
        return SlowNoop({"start": FROM}, pause)
    return build({"type": "noop", "start": FROM})


def address(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


class Tally:
    """What the agents of one process say: which are up, when each runs the new version,
    and their complaints."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.up = 0
        self.done: dict[str, float] = {}
        self.complaints: list[str] = []

    def say(self, message: str) -> None:
        with self.lock:
            if message.endswith(f": agent up, running {FROM}"):
                self.up += 1
            elif message.endswith(f": {TO}: running"):
                self.done[message.partition(":")[0]] = time.time()
            elif "trying again" in message or "failure" in message:
                self.complaints.append(message)


@dataclass(frozen=True)
class FleetSpec:
    url: str
    prefix: str
    hosts: tuple[str, ...]
    first: int  # the index of the first host (for its address)
    log_dir: str
    ttl: int
    pause: float
    deadline: float  # seconds from the trigger


def fleet(spec: FleetSpec, conn: Connection) -> None:
    """One process of agents: start them all, say "ready", say when all run ``TO`` (or
    the deadline passed), and close them when told."""
    tally = Tally()
    store = open_store(spec.url)
    keys = Keys(spec.prefix)
    noop = strategy(spec.pause)
    agents = [
        Agent(
            store,
            keys,
            AgentConfig(
                host,
                {ROLE: address(spec.first + i)},
                noop,
                log_dir=Path(spec.log_dir),
                ttl=spec.ttl,
            ),
            say=tally.say,
        )
        for i, host in enumerate(spec.hosts)
    ]

    def follow(agent: Agent) -> None:
        try:
            agent.run(once=True)
        except StoreError as exc:  # closed while the store refused it
            tally.say(f"{agent.config.host}: stopped: {exc}")

    threads = [threading.Thread(target=follow, args=(a,), daemon=True) for a in agents]
    for thread in threads:
        thread.start()
    limit = time.monotonic() + STARTUP_S
    while tally.up < len(agents) and time.monotonic() < limit:
        time.sleep(POLL_S)
    peak_threads = threading.active_count()
    conn.send(("ready", tally.up, tally.complaints[:5]))
    if conn.recv() == "go":
        cpu = time.process_time()
        lost = sum(a.keeper.losses for a in agents)
        again = {a.config.host: a.keeper.announcements for a in agents}
        limit = time.monotonic() + spec.deadline
        while len(tally.done) < len(agents) and time.monotonic() < limit:
            time.sleep(POLL_S)
        stats = {
            "cpu_s": time.process_time() - cpu,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": peak_threads,
            "complaints": len(tally.complaints),
            "leases_lost": sum(a.keeper.losses for a in agents) - lost,
            "reannounced": [a.keeper.announcements - again[a.config.host] for a in agents],
            "first_complaints": tally.complaints[:5],
        }
        conn.send(("done", dict(tally.done), stats))
        conn.recv()  # "close"
    for agent in agents:
        agent.close()
    for thread in threads:
        thread.join(timeout=2.0)
    store.close()


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU seconds of a process so far (0 if it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def etcd_requests(etcd: Etcd) -> dict[str, int]:
    """Requests etcd has started so far, by gRPC method (its /metrics)."""
    with urllib.request.urlopen(f"{etcd.endpoint}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    found: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("grpc_server_started_total{"):
            method = line.partition('grpc_method="')[2].partition('"')[0]
            found[method] = found.get(method, 0) + int(float(line.rpartition(" ")[2]))
    return found


def since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in sorted(after.items()) if v > before.get(k, 0)}


@dataclass
class Fleets:
    """The agent processes, and a pipe to each."""

    pipes: list[Connection] = field(default_factory=list)
    workers: list[multiprocessing.process.BaseProcess] = field(default_factory=list)

    def start(self, specs: list[FleetSpec]) -> None:
        context = multiprocessing.get_context("spawn")
        for spec in specs:
            mine, theirs = context.Pipe()
            worker = context.Process(target=fleet, args=(spec, theirs), daemon=True)
            worker.start()
            self.pipes.append(mine)
            self.workers.append(worker)

    def gather(self, timeout: float) -> list[tuple[Any, ...]] | None:
        """The next message of every process; None if one died or was silent."""
        found = []
        for pipe in self.pipes:
            try:
                if not pipe.poll(timeout):
                    return None
                found.append(pipe.recv())
            except EOFError:
                return None
        return found

    def tell(self, message: str) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(message)

    def stop(self) -> None:
        self.tell("close")
        for worker in self.workers:
            worker.join(timeout=15)
            if worker.is_alive():
                worker.kill()


def bench_agents(etcd: Etcd, root: Path, count: int, args: argparse.Namespace) -> Result:
    """``count`` agents at ``FROM``, then the trigger of ``TO``, timed until every host is
    verified at ``TO``."""
    keys = Keys("/bench-agents")
    hosts = host_names(count)
    processes = max(1, min(args.processes, count))
    result = Result("rollout", "ephyra-agents", count, measured=count)
    result.detail.update(processes=processes, ttl=args.ttl, max_at_once=args.max_at_once)
    per = -(-count // processes)
    specs = [
        FleetSpec(
            etcd.url,
            keys.prefix,
            tuple(hosts[first : first + per]),
            first,
            str(root / "logs"),
            args.ttl,
            args.upgrade_seconds,
            args.deadline + args.pause_etcd,
        )
        for first in range(0, count, per)
    ]
    say(f"rollout: starting {count} agents in {len(specs)} process(es)")
    fleets = Fleets()
    started = time.monotonic()
    try:
        fleets.start(specs)
        ready = fleets.gather(STARTUP_S + 30)
        if ready is None:
            result.problems.append("an agent process failed to start (see above)")
            return result
        result.detail["startup_s"] = time.monotonic() - started
        result.detail["first_complaints"] = [c for _, _, said in ready for c in said]
        with open_store(etcd.url) as store:
            up = sum(n for _, n, _ in ready)
            members = len(store.range(keys.members(ROLE)))
            if up < count or members < count or not report.verify(store, keys, FROM, hosts).ok:
                result.problems.append(f"only {up} agents up, {members} registered, of {count}")
                return result
            idle_load(etcd, result, args.idle_seconds)
            say(f"rollout: triggering {TO}")
            fleets.tell("go")
            rules = desired.Rules.parse([f"*={args.max_at_once}"], [])
            with Pressure(etcd, args.pause_etcd, args.steal_cpu) as pressure:
                t0 = roll_out(etcd, store, keys, hosts, rules, result, args.deadline, pressure)
            result.detail.update(pause_etcd_s=args.pause_etcd, steal_cpu=args.steal_cpu)
        done = fleets.gather(30 + args.pause_etcd)
        if done is None:
            result.problems.append("an agent process did not report (see above)")
            return result
        finish(result, done, t0)
    finally:
        fleets.stop()
    return result


def idle_load(etcd: Etcd, result: Result, seconds: float) -> None:
    """What the agents ask of etcd while there is nothing to do."""
    if seconds <= 0:
        return
    say(f"rollout: agents up; idle for {seconds:.0f} s")
    cpu, asked = cpu_seconds(etcd.daemon.pid), etcd_requests(etcd)
    time.sleep(seconds)
    idle = since(asked, etcd_requests(etcd))
    result.detail.update(
        idle_s=seconds,
        idle_requests_per_s=sum(idle.values()) / seconds,
        idle_requests=idle,
        idle_etcd_cpu=(cpu_seconds(etcd.daemon.pid) - cpu) / seconds,
    )


def spin() -> None:
    while True:
        pass


class Pressure:
    """``pause`` seconds of etcd stopped, from :meth:`begin`; ``busy`` processes
    spinning until the end."""

    def __init__(self, etcd: Etcd, pause: float, busy: int) -> None:
        self.etcd, self.pause, self.busy = etcd, pause, busy
        self.spinners: list[multiprocessing.process.BaseProcess] = []
        self.resumed = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Pressure:
        context = multiprocessing.get_context("spawn")
        for _ in range(self.busy):
            spinner = context.Process(target=spin, daemon=True)
            spinner.start()
            self.spinners.append(spinner)
        return self

    def begin(self) -> None:
        """Stop etcd now, and let it go on ``pause`` seconds later (on a thread)."""
        if self.pause <= 0:
            self.resumed.set()
            return
        pid = self.etcd.daemon.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        say(f"rollout: etcd stopped for {self.pause:.0f} s")
        self.thread = threading.Thread(target=self._resume, args=(pid,), daemon=True)
        self.thread.start()

    def _resume(self, pid: int) -> None:
        self.resumed.wait(self.pause)
        os.kill(pid, signal.SIGCONT)
        self.resumed.set()

    def __exit__(self, *exc: object) -> None:
        self.resumed.set()
        if self.thread is not None:
            self.thread.join()
        for spinner in self.spinners:
            spinner.kill()
            spinner.join()


def roll_out(
    etcd: Etcd,
    store: Store,
    keys: Keys,
    hosts: list[str],
    rules: desired.Rules,
    result: Result,
    deadline: float,
    pressure: Pressure,
) -> float:
    """Trigger ``TO`` and poll ``verify`` until every host runs it; the trigger's time.
    The pressure begins just after the trigger (and the deadline is longer by its pause)."""
    cpu, asked = cpu_seconds(etcd.daemon.pid), etcd_requests(etcd)
    t0 = time.time()
    desired.trigger(store, keys, TO, rules)
    pressure.begin()
    deadline += pressure.pause
    polls = 0
    pause = POLL_S * max(1.0, len(hosts) / POLL_HOSTS)
    while True:
        pressure.resumed.wait()  # verify would only wait for etcd meanwhile
        verdict = report.verify(store, keys, TO, hosts)
        polls += 1
        if verdict.ok or time.time() - t0 > deadline:
            break
        time.sleep(pause)
    t1 = time.time()
    result.detail.update(
        polls=polls,
        etcd_cpu_s=cpu_seconds(etcd.daemon.pid) - cpu,
        requests=since(asked, etcd_requests(etcd)),
    )
    if verdict.ok:
        result.seconds = t1 - t0
    else:
        result.problems.append(
            f"after {deadline:.0f} s only {len(verdict.running)} of {len(hosts)} run {TO}"
            f" (missing e.g. {', '.join(verdict.missing[:3])})"
        )
    return t0


def finish(result: Result, done: list[tuple[Any, ...]], t0: float) -> None:
    """Per-agent times to report, and what the agent processes used."""
    times: dict[str, float] = {}
    stats: list[dict[str, Any]] = []
    for _, reported, used in done:
        times.update(reported)
        stats.append(used)
    waits = sorted(t - t0 for t in times.values())
    if waits:
        result.detail.update(
            p50_s=waits[len(waits) // 2],
            p95_s=waits[min(len(waits) - 1, int(len(waits) * 0.95))],
            max_s=waits[-1],
        )
    result.detail.update(
        agents_cpu_s=sum(s["cpu_s"] for s in stats),
        rss_mb=[round(s["rss_mb"]) for s in stats],
        threads=[s["threads"] for s in stats],
        complaints=sum(s["complaints"] for s in stats),
        leases_lost=sum(s["leases_lost"] for s in stats),
        reannounced=sum(sum(s["reannounced"]) for s in stats),
        reannounced_max=max((max(s["reannounced"], default=0) for s in stats), default=0),
    )
    for used in stats:
        result.detail["first_complaints"] += used["first_complaints"]


def bench_loop(etcd: Etcd, count: int, pause: float, loop_hosts: int) -> Result:
    """Host after host: the upgrade, then one put of its running_version key."""
    keys = Keys("/bench-loop")
    hosts = host_names(count)[: max(1, loop_hosts)]
    result = Result("rollout", "loop", count, measured=len(hosts))
    client = etcd3gw.client(host="127.0.0.1", port=etcd.port)
    noop = strategy(pause)
    started = time.perf_counter()
    for host in hosts:
        noop.upgrade(Target(host, TO, kind="host"), lambda line: None)
        client.put(keys.running(TO, host), record())
    elapsed = time.perf_counter() - started
    client.session.close()
    with open_store(etcd.url) as store:
        if not report.verify(store, keys, TO, hosts).ok:
            result.problems.append("the loop's keys are not all there")
    result.seconds = elapsed * count / len(hosts)
    return result


def rollout_cli(etcd: Etcd, count: int, pause: float, sample: int) -> Result:
    keys = Keys("/bench-cli")
    hosts = host_names(count)[:sample]
    result = Result("rollout", "etcdctl-loop", count, measured=len(hosts))
    skipped = etcdctl_missing()
    if skipped:
        result.detail["skipped"] = skipped
        return result
    started = time.perf_counter()
    done = run_cli(ROLLOUT_CLI, [etcd.endpoint, keys.running(TO), str(pause), *hosts])
    elapsed = time.perf_counter() - started
    with open_store(etcd.url) as store:
        if done.returncode != 0 or not report.verify(store, keys, TO, hosts).ok:
            result.problems.append(f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
            return result
    result.seconds = elapsed * count / len(hosts)
    return result


# -- the report ---------------------------------------------------------------------------
def table(results: list[Result]) -> list[str]:
    lines = [
        f"{'part':8} {'contender':14} {'hosts':>6} {'seconds':>9} {'ms/host':>8} "
        f"{'x ephyra':>9}  note"
    ]
    base = {"verify": "ephyra-etcd", "rollout": "ephyra-agents"}
    best = {r.part: r.seconds for r in results if r.contender == base[r.part] and r.seconds}
    for r in results:
        if r.seconds is None:
            secs = per = ratio = "-"
        else:
            secs = f"{r.seconds:.4f}{'*' if r.extrapolated else ''}"
            per = f"{r.seconds / r.hosts * 1000:.3f}"
            ours = best.get(r.part)
            ratio = f"{r.seconds / ours:.1f}" if ours else "-"
        note = r.detail.get("skipped", "")
        if r.extrapolated:
            note = f"* {r.measured} hosts measured, scaled to {r.hosts}"
        if "repeat" in r.detail:
            note = f"median of {r.detail['repeat']}"
        if r.contender == "ephyra-agents" and "processes" in r.detail:
            d = r.detail
            note = f"{d['processes']} process(es), lease TTL {d['ttl']} s"
            note += "" if d["max_at_once"] == "all" else f", {d['max_at_once']} at once"
        lines.append(
            f"{r.part:8} {r.contender:14} {r.hosts:>6} {secs:>9} {per:>8} {ratio:>9}  {note}"
        )
        lines += [f"  problem: {p}" for p in r.problems[:5]]
    return lines


def counts(found: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in found.items()) or "none"


def agents_lines(r: Result) -> list[str]:
    d = r.detail
    lines = []
    if "p50_s" in d:
        lines.append(
            f"agents: time to report {TO} after the trigger: p50 {d['p50_s']:.2f} s, "
            f"p95 {d['p95_s']:.2f} s, max {d['max_s']:.2f} s ({d['polls']} verify polls)"
        )
    if "agents_cpu_s" in d:
        lines.append(
            f"agents: start-up {d['startup_s']:.1f} s; CPU during the rollout: agents "
            f"{d['agents_cpu_s']:.1f} s, etcd {d['etcd_cpu_s']:.1f} s; peak RSS per process "
            f"{', '.join(map(str, d['rss_mb']))} MB; threads per process "
            f"{', '.join(map(str, d['threads']))}"
        )
        lines.append(
            f"agents: retried a store operation {d['complaints']}, lost their lease "
            f"{d['leases_lost']}, announced again {d['reannounced']} (at most "
            f"{d['reannounced_max']} by one agent)"
        )
    pressure = [f"etcd stopped {d['pause_etcd_s']:.0f} s"] if d.get("pause_etcd_s") else []
    pressure += [f"{d['steal_cpu']} busy process(es)"] if d.get("steal_cpu") else []
    if pressure:
        lines.append(f"pressure after the trigger: {', '.join(pressure)}")
    if "requests" in d:
        per = {k: v / r.hosts for k, v in d["requests"].items()}
        lines.append(
            f"agents: etcd requests during the rollout: {sum(per.values()):.1f} per agent ("
            + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
            + ")"
        )
    if "idle_requests" in d:
        lines.append(
            f"agents: idle, before the trigger: {d['idle_requests_per_s']:.0f} etcd requests/s "
            f"({counts(d['idle_requests'])} in {d['idle_s']:.0f} s), etcd CPU "
            f"{d['idle_etcd_cpu']:.2f} s/s"
        )
    lines += [f"  agent said: {c}" for c in d.get("first_complaints", [])[:5]]
    return lines


def aims(results: list[Result], hosts: int, agents: int) -> list[str]:
    lines = []
    for r in results:
        if r.contender == "ephyra-etcd" and r.seconds is not None:
            met = "met" if r.seconds < AIM_VERIFY_S else "MISSED"
            scale = "" if hosts == 10_000 else f" (aim is for 10,000 hosts; here {hosts})"
            lines.append(f"aim: verify under {AIM_VERIFY_S} s: {r.seconds:.3f} s, {met}{scale}")
        if r.contender == "ephyra-agents":
            secs = f"{r.seconds:.2f} s" if r.seconds is not None else "did not converge"
            met = "met" if r.seconds is not None and r.seconds < AIM_ROLLOUT_S else "MISSED"
            scale = "" if agents == 1000 else f" (aim is for 1,000 agents; here {agents})"
            lines.append(f"aim: rollout within {AIM_ROLLOUT_S:.0f} s: {secs}, {met}{scale}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10_000, help="hosts to verify")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each verify (median)")
    parser.add_argument("--agents", type=int, default=1000, help="agents to roll out (0: none)")
    parser.add_argument("--processes", type=int, default=4, help="processes the agents share")
    parser.add_argument(
        "--max-at-once", default="all", help="hosts updating at once (N or all; default all)"
    )
    parser.add_argument("--ttl", type=int, default=10, help="the agents' lease TTL (seconds)")
    parser.add_argument(
        "--upgrade-seconds", type=float, default=0.0, help="how long each host's upgrade lasts"
    )
    parser.add_argument(
        "--loop-hosts", type=int, help="hosts the loop runs (default: all; fewer: scaled)"
    )
    parser.add_argument(
        "--cli-sample", type=int, default=100, help="hosts the etcdctl loops run (scaled)"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=3.0, help="agents idle before the trigger"
    )
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds the agents get")
    parser.add_argument(
        "--pause-etcd", type=float, default=0.0, help="seconds etcd is stopped after the trigger"
    )
    parser.add_argument(
        "--steal-cpu", type=int, default=0, help="busy processes during the rollout"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.hosts < 1 or args.agents < 0 or args.repeat < 1 or args.cli_sample < 1:
        parser.error("--hosts, --repeat and --cli-sample must be positive, --agents not negative")
    if args.pause_etcd < 0 or args.steal_cpu < 0:
        parser.error("--pause-etcd and --steal-cpu must not be negative")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="ephyra-bench-") as tmp:
        root = Path(tmp)
        with Etcd(root / "etcd", root / "etcd.log") as etcd:
            results += bench_verify(etcd, root, args.hosts, args.repeat, args.cli_sample)
            if args.agents:
                pause = args.upgrade_seconds
                results.append(bench_agents(etcd, root, args.agents, args))
                results.append(bench_loop(etcd, args.agents, pause, args.loop_hosts or args.agents))
                results.append(rollout_cli(etcd, args.agents, pause, args.cli_sample))
    lines = table(results)
    for r in results:
        if r.contender == "ephyra-agents":
            lines += agents_lines(r)
    lines += aims(results, args.hosts, args.agents)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
