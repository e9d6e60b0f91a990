"""Benchmark: empty one compute host of N servers, by several contenders, on real Nova.

Contenders (all on the same testbed, each on freshly booted servers on compute-1, spread
over four projects, the first four in one server group):
  openstack-cli  bench/evacuate_cli.sh: `openstack server migrate --live-migration` one
                 server after another, polling `openstack server show` every second
  ephyra         `ephyra host evacuate compute-1` with budgets: --concurrency 8
                 --per-host 8 --max-per-project 2 --max-per-group 1

Every contender is checked: the host ends empty, every server ACTIVE elsewhere. For
Ephyra the budgets are observed from the side, through the migrations API.

usage: .venv/bin/python bench/evacuate.py [--servers 20] [--contenders ephyra]
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

from testbed.nova import NovaTestbed  # noqa: E402
from testbed.nova_watch import MigrationWatch  # noqa: E402

CONTENDERS = ("openstack-cli", "ephyra")
CLI_SCRIPT = Path(__file__).with_name("evacuate_cli.sh")
PROJECTS = ("alpha", "beta", "gamma", "delta")
SOURCE = "compute-1"
BUDGETS = {"concurrency": 8, "per-host": 8, "max-per-project": 2, "max-per-group": 1}


@dataclass
class Result:
    name: str
    servers: int
    seconds: float | None = None
    peak: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def boot(bed: NovaTestbed, count: int) -> tuple[dict[str, str], dict[str, str]]:
    """``count`` servers on the source host: server -> project, and server -> group."""
    bed.clean()
    group = bed.server_group("bench", project=PROJECTS[0])
    projects: dict[str, str] = {}
    groups: dict[str, str] = {}
    grouped = bed.boot(SOURCE, min(4, count), project=PROJECTS[0], group=group, name_prefix="g")
    for sid in grouped:
        projects[sid], groups[sid] = PROJECTS[0], group
    for i in range(count - len(grouped)):
        project = PROJECTS[i % len(PROJECTS)]
        (sid,) = bed.boot(SOURCE, 1, project=project, name_prefix=f"{project}-{i}")
        projects[sid] = project
    return projects, groups


def verify(bed: NovaTestbed, projects: dict[str, str]) -> list[str]:
    problems = []
    left = bed.servers_on(SOURCE)
    if left:
        problems.append(f"{len(left)} server(s) still on {SOURCE}")
    conn = bed.connect()
    for sid in projects:
        server = conn.compute.get(f"/servers/{sid}", microversion="2.80").json()["server"]
        if server["status"] != "ACTIVE" or server["OS-EXT-SRV-ATTR:host"] == SOURCE:
            problems.append(f"{sid}: {server['status']} on {server['OS-EXT-SRV-ATTR:host']}")
    return problems


def command(name: str) -> list[str]:
    if name == "openstack-cli":
        return ["bash", str(CLI_SCRIPT), SOURCE]
    flags = [f"--{k}={v}" for k, v in BUDGETS.items()]
    return [sys.executable, "-m", "ephyra.cli.main", "host", "evacuate", SOURCE, "--yes", *flags]


def measure(name: str, bed: NovaTestbed, count: int) -> Result:
    result = Result(name, count)
    projects, groups = boot(bed, count)
    with tempfile.TemporaryDirectory() as state:
        env = {
            **os.environ,
            **bed.env(),
            "OS_CLOUD": bed.cloud,
            "XDG_STATE_HOME": state,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        print(f"{name}: emptying {SOURCE} of {count} servers", file=sys.stderr, flush=True)
        with MigrationWatch(bed.connect(), projects, groups) as watch:
            started = time.monotonic()
            done = subprocess.run(command(name), env=env, capture_output=True, text=True)
            seconds = time.monotonic() - started
    if done.returncode != 0:
        result.problems.append(f"exit {done.returncode}: {done.stderr.strip()[-500:]}")
    result.problems += verify(bed, projects)
    result.seconds = seconds if not result.problems else None
    result.peak = {
        "total": watch.peak["total"],
        "per_project": watch.max_of("project:"),
        "per_group": watch.max_of("group:"),
    }
    if name == "ephyra":
        if result.peak["per_project"] > BUDGETS["max-per-project"]:
            result.problems.append(f"project budget exceeded: {result.peak}")
        if result.peak["per_group"] > BUDGETS["max-per-group"]:
            result.problems.append(f"group budget exceeded: {result.peak}")
    return result


def report(results: dict[str, Result]) -> list[str]:
    lines = [f"{'contender':<15} {'servers':>7} {'seconds':>8} {'s/server':>8}  peak at once"]
    for r in results.values():
        secs = f"{r.seconds:.1f}" if r.seconds is not None else "-"
        per = f"{r.seconds / r.servers:.2f}" if r.seconds is not None else "-"
        peak = ", ".join(f"{k} {v}" for k, v in r.peak.items())
        lines.append(f"{r.name:<15} {r.servers:>7} {secs:>8} {per:>8}  {peak}")
        lines += [f"  problem: {p}" for p in r.problems]
    cli, ours = results.get("openstack-cli"), results.get("ephyra")
    if cli and ours and cli.seconds and ours.seconds:
        lines.append(f"ratio openstack-cli / ephyra: {cli.seconds / ours.seconds:.2f} (aim >= 5)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    names = [n for n in args.contenders.split(",") if n]
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    results: dict[str, Result] = {}
    with (
        tempfile.TemporaryDirectory(prefix="ephyra-bench-") as root,
        NovaTestbed(Path(root), max_concurrent_live_migrations=BUDGETS["per-host"]) as bed,
    ):
        for name in names:
            results[name] = measure(name, bed, args.servers)
    lines = report(results)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results.values()], indent=2))
    return 1 if any(r.problems for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
