"""Benchmark: move N deployed nodes from cp1 to cp2, by several contenders, on real Ironics.

Contenders (all run against the same testbed, each on freshly seeded nodes):
  raw-sdk        a plain openstacksdk loop, one node after another, making the API calls of a
                 careful forklift, polling every 50 ms
  openstack-cli  bench/forklift_cli.sh: `openstack baremetal ...` commands, polling every second
  ephyra-c1      `ephyra forklift start --concurrency 1`
  ephyra-c8      `ephyra forklift start --concurrency 8`

usage: .venv/bin/python bench/forklift.py [--nodes 50] [--contenders raw-sdk,ephyra-c1]
       .venv/bin/python bench/forklift.py --nova [--nodes 4]   (see bench/forklift_nova.py)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the testbed package lives at the repository root
    sys.path.insert(0, str(ROOT))

from testbed.ironic import Testbed  # noqa: E402
from testbed.seed import (  # noqa: E402
    INTERFACES,
    IRONIC_ADDED_INSTANCE_KEYS,
    clear,
    provision,
    seed_nodes,
    snapshot,
    write_credentials,
)

CONTENDERS = ("raw-sdk", "openstack-cli", "ephyra-c1", "ephyra-c8")
MASK = "******"
CLI_SCRIPT = Path(__file__).with_name("forklift_cli.sh")


@dataclass
class Result:
    name: str
    nodes: int = 0
    seconds: float | None = None
    ironic_cpu: float = 0.0
    problems: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def per_node(self) -> float | None:
        return self.seconds / self.nodes if self.seconds is not None and self.nodes else None


@dataclass
class Run:
    """What a contender gets: the testbed, the node ids to move, their credentials file."""

    bed: Testbed
    node_ids: list[str]
    credentials: Path
    workdir: Path


# --- raw-sdk ------------------------------------------------------------------------------


def _secrets(credentials: Path) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(credentials.read_text()) or {}
    return {str(k): dict(v) for k, v in (data.get("nodes") or {}).items()}


def _create_body(node: Any, secrets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    known = secrets.get(node.name) or secrets.get(node.id) or {}
    driver_info = dict(node.driver_info or {})
    for key, value in driver_info.items():
        if value == MASK:
            if key not in known:
                raise RuntimeError(f"{node.name}: no {key} in the credentials file")
            driver_info[key] = known[key]
    body = {key: getattr(node, key) for key in INTERFACES}
    body.update(
        uuid=node.id,
        name=node.name,
        driver=node.driver,
        properties=node.properties,
        resource_class=node.resource_class,
        extra=node.extra,
        driver_info=driver_info,
    )
    return body


def raw_sdk_move(src: Any, dst: Any, node_id: str, secrets: dict[str, dict[str, Any]]) -> None:
    """One node, the careful way, with plain openstacksdk calls."""
    node = src.baremetal.get_node(node_id)
    ports = list(src.baremetal.ports(node_id=node_id, details=True))
    src.baremetal.set_node_maintenance(node_id, reason="moving to cp2")
    provision(src, node_id, "deleted", "available")
    dst.baremetal.create_node(**_create_body(node, secrets))
    dst.baremetal.update_node(node_id, owner=node.owner, lessee=node.lessee)
    for port in ports:
        dst.baremetal.create_port(
            node_id=node_id,
            uuid=port.id,
            address=port.address,
            pxe_enabled=port.is_pxe_enabled,
            extra=port.extra,
        )
    dst.baremetal.set_node_maintenance(node_id, reason="arriving from cp1")
    src.baremetal.delete_node(node_id)
    provision(dst, node_id, "manage", "manageable")
    provision(dst, node_id, "provide", "available")
    dst.baremetal.unset_node_maintenance(node_id)
    info = {k: v for k, v in node.instance_info.items() if k not in IRONIC_ADDED_INSTANCE_KEYS}
    dst.baremetal.update_node(node_id, instance_info=info)
    provision(dst, node_id, "active", "active")


def run_raw_sdk(run: Run) -> str:
    src, dst = run.bed.connect("cp1"), run.bed.connect("cp2")
    secrets = _secrets(run.credentials)
    for node_id in run.node_ids:
        raw_sdk_move(src, dst, node_id, secrets)
    return ""


# --- subprocess contenders ----------------------------------------------------------------


class NotRunnable(RuntimeError):
    """The contender cannot run on this machine (reported, never given a number)."""


def _env(bed: Testbed) -> dict[str, str]:
    env = dict(os.environ)
    env.update(bed.env())
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _check(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout or "").splitlines()[-15:])
        raise RuntimeError(f"{what} exited with {done.returncode}:\n{tail}")


def run_cli(run: Run) -> str:
    cmd = ["bash", str(CLI_SCRIPT), "cp1", "cp2", str(run.credentials), *run.node_ids]
    done = subprocess.run(cmd, env=_env(run.bed), capture_output=True, text=True, check=False)
    (run.workdir / "cli.log").write_text(done.stdout + done.stderr)
    _check(done, "forklift_cli.sh")
    return ""


def ephyra_command() -> list[str] | None:
    """How to run the ``ephyra`` CLI here, or None when it is not runnable."""
    candidate = Path(sys.executable).parent / "ephyra"
    found = str(candidate) if candidate.exists() else shutil.which("ephyra")
    if found is None:
        return None
    probe = subprocess.run(
        [found, "forklift", "start", "--help"], capture_output=True, text=True, check=False
    )
    return [found] if probe.returncode == 0 else None


def run_ephyra(concurrency: int) -> Callable[[Run], str]:
    def contender(run: Run) -> str:
        ephyra = ephyra_command()
        if ephyra is None:
            raise NotRunnable("the `ephyra` CLI is not runnable here (`ephyra forklift start`)")
        cmd = [
            *ephyra,
            "--journal", f"sqlite:///{run.workdir}/journal.db",
            "--locks", f"file://{run.workdir}/locks",
            "forklift", "start", "--from", "cp1", "--to", "cp2",
            "--concurrency", str(concurrency),
            "--credentials", f"file:{run.credentials}",
            "--yes",
        ]  # fmt: skip
        done = subprocess.run(cmd, env=_env(run.bed), capture_output=True, text=True, check=False)
        (run.workdir / "ephyra.log").write_text(done.stdout + done.stderr)
        _check(done, " ".join(cmd[1:]))
        return ""

    return contender


# --- one contender ------------------------------------------------------------------------


def verify(bed: Testbed, before: dict[str, dict[str, Any]]) -> list[str]:
    """Everything on cp2, active, as it was on cp1; nothing left on cp1."""
    problems = []
    left = snapshot(bed.connect("cp1"))
    if left:
        problems.append(f"{len(left)} nodes still on cp1")
    after = snapshot(bed.connect("cp2"))
    missing = set(before) - set(after)
    if missing:
        problems.append(f"{len(missing)} nodes missing from cp2")
    for node_id in set(before) & set(after):
        diff = [k for k in before[node_id] if before[node_id][k] != after[node_id].get(k)]
        if diff:
            problems.append(f"{before[node_id]['name']}: differs in {', '.join(sorted(diff))}")
    return problems


def measure(name: str, contender: Callable[[Run], str], bed: Testbed, nodes: int) -> Result:
    result = Result(name, nodes)
    for cp in bed.names:
        clear(bed.connect(cp))
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=bed.root_dir))
    specs = seed_nodes(bed.connect("cp1"), nodes)
    creds = write_credentials(workdir / "credentials.yaml", specs)
    before = snapshot(bed.connect("cp1"))
    run = Run(bed, [spec["create"]["uuid"] for spec in specs], creds, workdir)
    cpu = sum(svc.cpu_seconds() for svc in bed.services.values())
    started = time.monotonic()
    try:
        result.note = contender(run)
    except NotRunnable as exc:
        result.note = f"not run: {exc}"
        return result
    except Exception as exc:
        result.note = f"FAILED: {exc}"
        result.problems = verify(bed, before)
        return result
    result.seconds = time.monotonic() - started
    result.ironic_cpu = sum(svc.cpu_seconds() for svc in bed.services.values()) - cpu
    result.problems = verify(bed, before)
    return result


# --- report -------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def scaled(result: Result, nodes: int) -> float | None:
    """Seconds for ``nodes`` nodes, scaling per node when the contender moved fewer."""
    return None if result.per_node is None else result.per_node * nodes


def ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den == 0 else num / den


def report(results: dict[str, Result], nodes: int) -> list[str]:
    lines = [
        f"{'contender':<14} {'nodes':>5} {'seconds':>8} {'s/node':>7} "
        f"{f'for {nodes}':>8} {'ironic cpu s':>12}  notes",
    ]
    for r in results.values():
        notes = [r.note] if r.note else []
        if r.nodes != nodes and r.seconds is not None:
            notes.append(f"ran {r.nodes} nodes, scaled per node to {nodes}")
        notes += [f"CHECK FAILED: {p}" for p in r.problems[:5]]
        lines.append(
            f"{r.name:<14} {r.nodes:>5} {_fmt(r.seconds):>8} {_fmt(r.per_node, '.2f'):>7} "
            f"{_fmt(scaled(r, nodes)):>8} {r.ironic_cpu:>12.1f}  {'; '.join(notes)}"
        )
    t = {name: scaled(r, nodes) if not r.problems else None for name, r in results.items()}
    aims = [
        ("ephyra-c1 / raw-sdk", ratio(t.get("ephyra-c1"), t.get("raw-sdk")), "<= 1.3", 1.3, False),
        ("openstack-cli / ephyra-c1", ratio(t.get("openstack-cli"), t.get("ephyra-c1")),
         ">= 10", 10.0, True),
        ("ephyra-c1 / ephyra-c8", ratio(t.get("ephyra-c1"), t.get("ephyra-c8")), ">= 3", 3.0, True),
    ]  # fmt: skip
    lines.append("")
    for label, value, aim, bound, at_least in aims:
        verdict = "n/a" if value is None else "met" if (value >= bound) == at_least else "MISSED"
        lines.append(f"{label:<26} {_fmt(value, '.2f'):>6}   aim {aim:<7} {verdict}")
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--nodes", type=int, default=50, help="deployed nodes each contender moves (50)")
    add("--contenders", default=",".join(CONTENDERS), help="comma-separated subset")
    add(
        "--cli-nodes",
        type=int,
        default=5,
        help="nodes for openstack-cli (slow; its time is scaled per node to --nodes) (5)",
    )
    add(
        "--fake-delay",
        type=float,
        default=0.0,
        help="seconds each fake deploy-interface call sleeps (deploy and undeploy make two); "
        "0 measures API overhead only (0)",
    )
    add("--keep", action="store_true", help="keep the testbed directory (logs, journals)")
    add(
        "--nova",
        action="store_true",
        help="nodes that Nova owns, each with its server, on two clouds with Keystone: "
        "bench/forklift_nova.py, whose options are --nodes, --contenders and --json",
    )
    add("--json", type=Path, help="also write the results to this file")
    return parser  # fmt: skip


def run_all(args: argparse.Namespace, names: list[str], root: Path) -> dict[str, Result]:
    runners: dict[str, Callable[[Run], str]] = {
        "raw-sdk": run_raw_sdk,
        "openstack-cli": run_cli,
        "ephyra-c1": run_ephyra(1),
        "ephyra-c8": run_ephyra(8),
    }
    results: dict[str, Result] = {}
    with Testbed(root, fake_delay=args.fake_delay) as bed:
        urls = ", ".join(f"{name} {svc.url}" for name, svc in bed.services.items())
        print(
            f"testbed up in {max(bed.start_seconds.values()):.1f} s ({urls}); fake delay "
            f"{bed['cp1'].delays['deploy_delay']} s; {os.cpu_count()} CPUs",
            flush=True,
        )
        for name in names:
            count = min(args.cli_nodes, args.nodes) if name == "openstack-cli" else args.nodes
            print(f"{name}: seeding {count} nodes in cp1, moving them to cp2...", flush=True)
            result = results[name] = measure(name, runners[name], bed, count)
            print(
                f"  {name}: {_fmt(result.seconds)} s {result.note} {'; '.join(result.problems)}",
                flush=True,
            )
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--nova" in argv:  # nodes that Nova owns, on two clouds: a benchmark of its own
        sys.path.insert(0, str(Path(__file__).parent))
        import forklift_nova

        return forklift_nova.main([arg for arg in argv if arg != "--nova"])
    args = _parser().parse_args(argv)
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        raise SystemExit(f"unknown contenders {sorted(unknown)}; known: {', '.join(CONTENDERS)}")
    root = Path(tempfile.mkdtemp(prefix="ephyra-bench-"))
    try:
        results = run_all(args, names, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print("\n".join(report(results, args.nodes)))
    if args.keep:
        print(f"\ntestbed directory kept: {root}")
    if args.json:
        data = {n: {**asdict(r), "per_node": r.per_node} for n, r in results.items()}
        args.json.write_text(json.dumps({"nodes": args.nodes, "results": data}, indent=2))
    return 1 if any(r.problems for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
