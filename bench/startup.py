"""How long the command line takes to answer, against the ``openstack`` client.

Every contender is a new process, as an operator runs it, started ``--repeat`` times
round-robin (one warm-up each first, not counted, which also creates the journal):

  ephyra --help                    the parser with every command registered
  ephyra forklift start --help     a command's parser and its help
  ephyra upgrade status            in-process, on a journal with no run (exit 2: no run)
  ephyra run list                  in-process, on the same journal (an empty table)
  openstack --help                 the competitor: the client loads every plugin's commands
  openstack server list --help     one command's help

The state is a temporary directory (``EPHYRA_JOURNAL``, ``EPHYRA_LOCKS`` and
``XDG_STATE_HOME`` point into it; no ``EPHYRA_URL``, no ``OS_CLOUD``), and so is the
bytecode (``PYTHONPYCACHEPREFIX``: the warm-up compiles what each contender imports, as
installing a package does; ``PYTHONDONTWRITEBYTECODE`` is dropped). It prints, for
each, the median and 90th percentile of the wall-clock seconds, the median CPU seconds
(user + system, steadier than wall time on a busy machine) and the ratio of the median to
``openstack --help``'s, with the aims: every ``--help`` under 0.3 s, status and list
under 1 s. A contender that exits with another code than expected fails the benchmark.

usage: .venv/bin/python bench/startup.py [--repeat 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HELP_AIM_S = 0.3
STATUS_AIM_S = 1.0
COMPETITOR = "openstack --help"


@dataclass
class Contender:
    name: str
    argv: list[str]
    code: int  # the exit code expected
    aim_s: float | None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def program(name: str) -> str:
    """A console script of this Python's environment (where ``ephyra`` and ``openstack``
    are installed), else one on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"no {name} beside {sys.executable} or on PATH")
    return found


def contenders() -> list[Contender]:
    ephyra, openstack = program("ephyra"), program("openstack")
    return [
        Contender("ephyra --help", [ephyra, "--help"], 0, HELP_AIM_S),
        Contender(
            "ephyra forklift start --help", [ephyra, "forklift", "start", "--help"], 0, HELP_AIM_S
        ),
        Contender("ephyra upgrade status", [ephyra, "upgrade", "status"], 2, STATUS_AIM_S),
        Contender("ephyra run list", [ephyra, "run", "list"], 0, STATUS_AIM_S),
        Contender(COMPETITOR, [openstack, "--help"], 0, None),
        Contender("openstack server list --help", [openstack, "server", "list", "--help"], 0, None),
    ]


def environment(state: Path) -> dict[str, str]:
    """This environment without what would send a command elsewhere, and the state in
    ``state``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EPHYRA_", "OS_"))
        and k not in ("XDG_STATE_HOME", "PYTHONDONTWRITEBYTECODE")
    }
    return {
        **env,
        # compiled once (the warm-up) as an installed package is, and kept out of the tree
        "PYTHONPYCACHEPREFIX": str(state / "pycache"),
        "XDG_STATE_HOME": str(state / "state"),
        "EPHYRA_JOURNAL": f"sqlite:///{state / 'journal.db'}",
        "EPHYRA_LOCKS": f"file://{state / 'locks'}",
    }


def once(contender: Contender, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run; a problem noted if it exits otherwise than
    expected."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        contender.argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != contender.code and not contender.problems:
        contender.problems.append(
            f"exit {done.returncode}, not {contender.code}: {done.stderr.strip()[-300:]}"
        )
    return wall, cpu


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def summary(contenders: list[Contender]) -> list[dict[str, object]]:
    floor = statistics.median(next(c for c in contenders if c.name == COMPETITOR).wall)
    rows: list[dict[str, object]] = []
    for c in contenders:
        median = statistics.median(c.wall)
        rows.append(
            {
                **asdict(c),
                "median_s": median,
                "p90_s": p90(c.wall),
                "cpu_median_s": statistics.median(c.cpu),
                "ratio": median / floor,
                "met": None if c.aim_s is None else median < c.aim_s,
            }
        )
    return rows


def table(rows: list[dict[str, object]]) -> list[str]:
    lines = [
        f"{'command':30} {'median s':>9} {'p90 s':>7} {'cpu s':>7} {'x ' + COMPETITOR:>20}  aim"
    ]
    for r in rows:
        aim = r["aim_s"]
        verdict = "" if aim is None else f"< {aim:g} s {'met' if r['met'] else 'MISSED'}"
        lines.append(
            f"{r['name']!s:30} {r['median_s']:9.3f} {r['p90_s']:7.3f} "
            f"{r['cpu_median_s']:7.3f} {r['ratio']:20.2f}  {verdict}"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of each (20)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    found = contenders()
    with tempfile.TemporaryDirectory(prefix="ephyra-bench-startup-") as tmp:
        env = environment(Path(tmp))
        load_before = os.getloadavg()
        for contender in found:  # warm-up: the journal created, the files in the page cache
            once(contender, env)
        for _ in range(args.repeat):
            for contender in found:
                wall, cpu = once(contender, env)
                contender.wall.append(wall)
                contender.cpu.append(cpu)
        load_after = os.getloadavg()
    rows = summary(found)
    print(
        f"{args.repeat} run(s) each, {os.cpu_count()} CPU(s), load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    for line in table(rows):
        print(line)
    problems = [f"{c.name}: {p}" for c in found for p in c.problems]
    for problem in problems:
        print(f"FAILED {problem}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
