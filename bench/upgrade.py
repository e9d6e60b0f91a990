"""Benchmark: a real release upgrade, Nova 33.0.2 and Placement 15.0.0 to Nova 34.0.0 and
Placement 16.0.0, of the Nova testbed whose hosts run from venvs of their own (a
controller, two computes with servers), by the runbook an operator follows by hand and
by Ephyra, in the same run.

  runbook  testbed/release_upgrade.py's bash script: the upgrade guides' commands in
           order, the `openstack` CLI for Nova's side, polling every 2 s
  ephyra   `ephyra upgrade start` with testbed/release_upgrade.py's specification
           (preflight, pins, databases, drains with gates, unpin, data migrations)

Each contender starts from a fresh testbed at the old release with --servers servers on
each compute. While it runs, a thread asks the compute API for a server every 0.5 s (the
probe of ephyra.upgrade.availability): the share of probes that failed and the longest
outage. Then each is checked: every venv and hypervisor at the new release, every
service up, the servers ACTIVE, no pin left. Prints wall time, the API's error rate and
the ratios.

usage: .venv/bin/python bench/upgrade.py [--servers 2] [--contenders runbook,ephyra]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the testbed package lives at the repository root
    sys.path.insert(0, str(ROOT))

from ephyra.compute.nova import ComputeCloud  # noqa: E402
from ephyra.upgrade.availability import Probe, Timeline  # noqa: E402
from testbed import release_upgrade  # noqa: E402
from testbed.nova import NovaTestbed  # noqa: E402
from testbed.releases import version_int  # noqa: E402

CONTENDERS = ("runbook", "ephyra")
EPHYRA = [sys.executable, "-m", "ephyra.cli.main"]
PROBE_S = 0.5
UPGRADE_TIMEOUT = 1800.0


@dataclass
class Result:
    name: str
    seconds: float | None = None
    probes: int = 0
    failed: int = 0
    longest_outage: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def error_rate(self) -> float | None:
        return 100.0 * self.failed / self.probes if self.probes else None


def run_runbook(nova: NovaTestbed, work: Path) -> None:
    script = work / "runbook.sh"
    script.write_text(release_upgrade.runbook(nova))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    _run(["bash", str(script)], work, env)


def run_ephyra(nova: NovaTestbed, work: Path) -> None:
    args = release_upgrade.write_files(nova, work)
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(nova.clouds_yaml)}
    env["XDG_STATE_HOME"] = str(work / "state")
    _run([*EPHYRA, "upgrade", "start", *args, "--yes"], work, env)


def _run(argv: list[str], work: Path, env: dict[str, str]) -> None:
    with (work / "output.log").open("w") as log:
        done = subprocess.run(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=UPGRADE_TIMEOUT
        )
    if done.returncode != 0:
        tail = (work / "output.log").read_text().splitlines()[-15:]
        raise RuntimeError(f"{argv[0]} exited with {done.returncode}:\n" + "\n".join(tail))


def verify(nova: NovaTestbed, servers: list[str]) -> list[str]:
    problems = []
    new = release_upgrade.NEW
    for host in nova.host_names:
        if nova.installed(host) != new["nova"]:
            problems.append(f"{host}: nova {nova.installed(host)}")
        if "compute = auto" in nova.host_config(host).read_text():
            problems.append(f"{host}: still pinned")
    placement = nova.installed(release_upgrade.CONTROLLER, "openstack-placement")
    if placement != new["openstack-placement"]:
        problems.append(f"controller: placement {placement}")
    wanted = version_int(new["nova"])
    problems += [
        f"{h}: hypervisor {v}" for h, v in nova.hypervisor_versions().items() if v != wanted
    ]
    down = [f"{s.binary}@{s.host}" for s in nova.connect().compute.services() if s.state != "up"]
    problems += [f"{name} down" for name in down]
    try:
        nova.wait_servers(servers, timeout=60)
    except Exception as exc:
        problems.append(f"servers: {exc}")
    return problems


def measure(name: str, root: Path, servers_per_host: int) -> Result:
    result = Result(name)
    pins = tuple(f"{d}=={v}" for d, v in release_upgrade.OLD.items())
    with NovaTestbed(root / name, computes=2, release_venvs=pins) as nova:
        servers = [i for host in nova.hosts for i in nova.boot(host, servers_per_host)]
        os.environ["OS_CLIENT_CONFIG_FILE"] = str(nova.clouds_yaml)
        probed = ComputeCloud.connect(nova.cloud)
        timeline = Timeline()
        work = root / f"{name}-work"
        work.mkdir()
        print(f"{name}: upgrading {len(servers)} servers' cloud", file=sys.stderr)
        started = time.monotonic()
        try:
            with Probe(probed.answers, timeline, lambda t: None, PROBE_S):
                (run_runbook if name == "runbook" else run_ephyra)(nova, work)
        except Exception as exc:
            result.problems.append(f"FAILED: {exc}")
            return result
        result.seconds = time.monotonic() - started
        summary = timeline.summary()
        result.probes, result.failed = summary["probes"], summary["failures"]
        result.longest_outage = summary["longest_outage_seconds"]
        result.problems = verify(nova, servers)
    return result


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def report(results: dict[str, Result]) -> list[str]:
    lines = [
        f"{'contender':<10} {'seconds':>8} {'probes':>7} {'failed':>7} {'error %':>8} "
        f"{'longest outage s':>17}"
    ]
    for r in results.values():
        lines.append(
            f"{r.name:<10} {_fmt(r.seconds):>8} {r.probes:>7} {r.failed:>7} "
            f"{_fmt(r.error_rate, '.2f'):>8} {r.longest_outage:>17.1f}"
        )
        lines += [f"  FAILED {r.name}: {p}" for p in r.problems]
    runbook, ephyra = results.get("runbook"), results.get("ephyra")
    if runbook and ephyra and runbook.seconds and ephyra.seconds:
        lines.append("")
        lines.append(f"runbook / ephyra, wall time: {runbook.seconds / ephyra.seconds:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--servers", type=int, default=2, help="servers on each compute (2)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="a comma list")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    if set(names) - set(CONTENDERS) or args.servers < 0:
        parser.error(f"--servers 0 or more; contenders among {', '.join(CONTENDERS)}")
    with tempfile.TemporaryDirectory(prefix="ephyra-bench-upgrade-") as tmp:
        results = {name: measure(name, Path(tmp), args.servers) for name in names}
    print("\n".join(report(results)))
    if args.json:
        Path(args.json).write_text(json.dumps({n: asdict(r) for n, r in results.items()}))
    return 0 if all(not r.problems for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
