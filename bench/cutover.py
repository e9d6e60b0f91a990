"""How long a VIP is unreachable while the control plane is cut over, seen by a client
that sends to it every 10 ms, for each contender in the same run and the same
namespaces (an old and a new controller with the same VIP, and a client, on a switch):

- ``script+arping``: ``bench/cutover_cli.sh``, the ``ip`` commands an operator's runbook
  runs, then ``arping -U`` to announce the VIP;
- ``script``: the same without the announcement (the client learns the new MAC when its
  neighbour entry goes stale and is probed again);
- ``ephyra``: ``ephyra env cutover`` (its start-up included: it prepares everything,
  then makes the netlink changes and sends gratuitous ARP).

Between rounds the old controller is put back with ``ephyra env cutover --rollback``,
and must answer the VIP again within 5 s (it announced it), or the bench stops there.
Run as root: ``.venv/bin/python bench/cutover.py --rounds 5``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testbed.netns import VIP, Topology, environment, ip  # noqa: E402
from testbed.vipecho import window  # noqa: E402

EPHYRA = [sys.executable, "-m", "ephyra.cli.main"]


def answered(topo: Topology, host: str, timeout: float) -> bool:
    """Whether ``host`` answers the client's datagrams to the VIP within ``timeout``."""
    deadline = time.monotonic() + timeout
    once = ["ip", "netns", "exec", topo.ns("client"), sys.executable, "-m", "testbed.vipecho"]
    while time.monotonic() < deadline:
        done = subprocess.run([*once, "once", VIP], capture_output=True, text=True)
        if done.stdout.strip() == host:
            return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ephyra-bench-cutover-"))
    env = {**os.environ, "XDG_STATE_HOME": str(tmp / "state"), "PYTHONUNBUFFERED": "1"}

    def ephyra(*argv: str) -> str:
        done = subprocess.run([*EPHYRA, *argv], env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"ephyra {' '.join(argv)}: {done.stderr}")
        return done.stdout

    prefix = f"b{os.getpid() % 100000}-"
    results: dict[str, list[dict[str, Any]]] = {"script+arping": [], "script": [], "ephyra": []}
    with Topology(prefix) as topo:
        topo.add("old")
        topo.add("new")
        topo.add("client", "192.168.0.100/24")
        nodes = [
            ("new", "primary-controller", 3, f"{prefix}new"),
            ("old", "controller", 4, f"{prefix}old"),
        ]
        (tmp / "env.yaml").write_text(yaml.safe_dump(environment(1, "bench", nodes)))
        ephyra("env", "import", str(tmp / "env.yaml"))
        ephyra("env", "apply", "bench", "old")
        ephyra("env", "upgrade", "bench", "--release", "2")
        ephyra("env", "apply", "bench", "new")
        ephyra("env", "installed", "bench", "new")
        for host in ("old", "new"):
            ip("addr", "add", f"{VIP}/24", "dev", "br-mgmt", netns=topo.ns(host))
            topo.echo(host)
        script = [
            str(ROOT / "bench" / "cutover_cli.sh"),
            topo.ns("old"),
            topo.ns("new"),
            "br-mgmt",
            "eth1",
            VIP,
        ]
        contenders = {
            "script+arping": (script, {"ANNOUNCE": "1"}),
            "script": (script, {"ANNOUNCE": "0"}),
            "ephyra": ([*EPHYRA, "env", "cutover", "bench"], {}),
        }
        for round_ in range(args.rounds):
            for name, (argv, extra) in contenders.items():
                out = tmp / f"{name}-{round_}.json"
                probe = topo.run(
                    "client",
                    sys.executable,
                    "-m",
                    "testbed.vipecho",
                    "probe",
                    VIP,
                    "--out",
                    str(out),
                )
                assert probe.stdout is not None and probe.stdout.readline()
                time.sleep(0.5)
                subprocess.run(argv, env={**env, **extra}, check=True, capture_output=True)
                time.sleep(0.5)
                answered(topo, "new", 120)  # the script without ARP: until the entry expires
                time.sleep(0.2)
                probe.terminate()
                probe.wait(10)
                seen = window([tuple(r) for r in json.loads(out.read_text())], "old", "new")
                results[name].append(seen)
                print(
                    f"round {round_ + 1} {name:14} VIP unreachable {seen['gap_ms']:8.1f} ms "
                    f"({seen['unanswered']} samples unanswered)",
                    flush=True,
                )
                ephyra("env", "cutover", "bench", "--rollback")
                if not answered(topo, "old", 5):  # it announced: at once, or it lost the VIP
                    raise SystemExit(
                        f"round {round_ + 1}, after {name}: the old controller did not answer "
                        "the VIP within 5 s of `ephyra env cutover bench --rollback`"
                    )
                time.sleep(0.3)
    medians = {n: statistics.median(r["gap_ms"] for r in rs) for n, rs in results.items()}
    print()
    print(f"{'contender':15} {'median gap ms':>14} {'worst ms':>10}")
    for name, rs in results.items():
        print(f"{name:15} {medians[name]:14.1f} {max(r['gap_ms'] for r in rs):10.1f}")
    for name in ("script+arping", "script"):
        print(f"ephyra's window is {medians[name] / medians['ephyra']:.1f}x shorter than {name}'s")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
