"""Benchmark: the management panel's status and list endpoints under many clients.

Each endpoint is measured twice: clients that send their next request as soon as the
answer comes (saturating: the server's most requests per second, and the queue behind
them), and clients that wait ``--think-ms`` between requests (dashboards and scripts
polling often).

A journal is filled with ``--runs`` forklift runs of ``--nodes`` nodes each, written as the
forklift writes them (run record, node records, events). A real ``ephyra serve`` answers
``wrk`` (``--connections`` connections, ``--seconds`` each) on:

  status     GET /v1/forklift/runs/{id}   (``ephyra forklift status --url``)
  run        GET /v1/runs/{id}            (the dashboard's run view)
  list       GET /v1/runs                 (``ephyra run list``, the dashboard's list)
  kind-list  GET /v1/forklift/runs        (``ephyra forklift list``)

The competitor, in the same run: what an operator polls today to see where the nodes of a
forklift are, against the testbed's two real Ironic control planes holding the same
number of nodes: ``openstack baremetal node list`` on each (a few sequential looks), and
a raw openstacksdk loop listing the nodes of both (``--sdk-threads`` threads for
``--seconds``).

usage: .venv/bin/python bench/api.py [--seconds 20] [--connections 100] [--runs 20] [--nodes 50]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the testbed package lives at the repository root
    sys.path.insert(0, str(ROOT))

from ephyra.engine.events import EVENTS  # noqa: E402
from ephyra.engine.journal import Journal  # noqa: E402
from testbed.ironic import Testbed, free_port  # noqa: E402
from testbed.seed import seed_nodes  # noqa: E402

TOKEN = "bench-admin-token-0123456789"
STEPS = ("record", "maintenance-source", "undeploy", "enroll-target", "delete-source", "deploy")
AIM_P99_MS = 50.0


def fill(journal_url: str, runs: int, nodes: int) -> str:
    """``runs`` finished forklift runs of ``nodes`` nodes; the id of the last one."""
    journal = Journal(journal_url)
    run_id = ""
    for r in range(runs):
        uuids = [str(uuid.uuid4()) for _ in range(nodes)]
        details = {}
        for i, node in enumerate(uuids):
            details[f"node:{node}"] = {"name": f"node-{i:04d}", "forward": "moved"}
            details[f"forward:{node}"] = {}
            details[f"rollback:{node}"] = {}
        meta = {
            "state": "succeeded",
            "phase": "forward",
            "from": "cp1",
            "to": "cp2",
            "order": uuids,
            "settings": {},
            "created": time.time() - (runs - r) * 60,
        }
        run_id = journal.create_run("forklift", meta, details).id
        rows: list[dict[str, Any]] = [
            _event(run_id, "run.started", title="cp1 -> cp2", total=nodes, done=0)
        ]
        for i in range(nodes):
            for step in STEPS:
                for status in ("started", "finished"):
                    rows.append(
                        _event(run_id, "step", node=f"node-{i:04d}", step=step, status=status)
                    )
            rows.append(_event(run_id, "node", node=f"node-{i:04d}", outcome="moved", detail=""))
        rows.append(_event(run_id, "run.finished", state="succeeded"))
        with journal.engine.begin() as conn:
            conn.execute(sa.insert(EVENTS), rows)
    journal.close()
    return run_id


def _event(run_id: str, type_: str, **body: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "kind": "forklift",
        "time": time.time(),
        "type": type_,
        "body": json.dumps({**body, "seconds": 0.5} if type_ == "step" else body),
    }


def wrk(url: str, seconds: int, connections: int, think_ms: int, root: Path) -> dict[str, Any]:
    """p50, p99 (ms), requests/s and non-2xx answers, as wrk measures them; each client
    waits ``think_ms`` between its answer and its next request (0: none, saturating)."""
    script = root / f"think-{think_ms}.lua"
    script.write_text(f"function delay() return {think_ms} end\n")
    done = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            *(["-s", str(script)] if think_ms else []),
            "-H",
            f"X-Auth-Token: {TOKEN}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout

    def ms(label: str) -> float:
        found = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not found:
            raise RuntimeError(f"no {label} in wrk's output:\n{out}")
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "rps": float(rate.group(1)) if rate else 0.0,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def sdk_looks(bed: Testbed, seconds: float, threads: int) -> dict[str, Any]:
    """A raw openstacksdk loop: each look lists the nodes of both control planes."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        planes = [bed.connect("cp1"), bed.connect("cp2")]
        while time.monotonic() < stop:
            began = time.perf_counter()
            for conn in planes:
                list(conn.baremetal.nodes(details=True))
            with lock:
                latencies.append(time.perf_counter() - began)

    began = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - began
    return _summary(latencies, elapsed)


def cli_looks(bed: Testbed, looks: int) -> dict[str, Any]:
    """``openstack baremetal node list`` on both control planes, one look after another."""
    openstack = shutil.which("openstack") or str(Path(sys.executable).parent / "openstack")
    env = {**os.environ, **bed.env()}
    latencies = []
    began = time.monotonic()
    for _ in range(looks):
        t = time.perf_counter()
        for cloud in ("cp1", "cp2"):
            subprocess.run(
                [openstack, "--os-cloud", cloud, "baremetal", "node", "list", "-f", "json"],
                env=env,
                check=True,
                capture_output=True,
            )
        latencies.append(time.perf_counter() - t)
    return _summary(latencies, time.monotonic() - began)


def _summary(latencies: list[float], elapsed: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
    return {
        "p50_ms": statistics.median(ordered) * 1000 if ordered else 0.0,
        "p99_ms": p99 * 1000,
        "rps": len(ordered) / elapsed if elapsed else 0.0,
        "non_2xx": 0,
        "socket_errors": "",
    }


def serve(root: Path, journal_url: str) -> tuple[subprocess.Popen[bytes], str]:
    tokens = root / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({TOKEN: {"user": "b", "project": "b", "roles": ["admin"]}}))
    port = free_port()
    env = {**os.environ, "XDG_STATE_HOME": str(root / "state")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ephyra.cli.main",
            "--journal",
            journal_url,
            "--locks",
            f"file://{root / 'locks'}",
            "serve",
            "--port",
            str(port),
            "--tokens",
            str(tokens),
        ],
        env=env,
        stdout=(root / "serve.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return proc, url
        except requests.ConnectionError as exc:
            if time.monotonic() > deadline or proc.poll() is not None:
                log = (root / "serve.log").read_text()
                raise RuntimeError(f"ephyra serve did not start: {log}") from exc
            time.sleep(0.1)


def report(rows: dict[str, dict[str, Any]], connections: int, sdk_threads: int) -> list[str]:
    lines = [
        f"{'endpoint':<40} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9} {'non-2xx':>8}"
    ]
    for name, row in rows.items():
        clients = (
            1 if name.startswith("openstack") else sdk_threads if "sdk" in name else connections
        )
        lines.append(
            f"{name:<40} {clients:>7} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} "
            f"{row['rps']:>9.1f} {row['non_2xx']:>8}"
        )
    status = next(r for n, r in rows.items() if n.startswith("ephyra status"))
    lines.append("")
    for name, other in (
        ("raw-sdk", rows.get("raw-sdk look (both planes)")),
        ("openstack CLI", rows.get("openstack CLI look (both planes)")),
    ):
        if other and status["p50_ms"]:
            lines.append(
                f"ephyra status (saturating) vs {name}: p50 "
                f"{other['p50_ms'] / status['p50_ms']:.1f}x lower, "
                f"{status['rps'] / max(other['rps'], 1e-9):.1f}x the looks per second"
            )
    for mode in ("saturating", "think"):
        worst = max(r["p99_ms"] for n, r in rows.items() if n.startswith("ephyra") and mode in n)
        verdict = "met" if worst < AIM_P99_MS else "NOT met"
        lines.append(
            f"aim p99 < {AIM_P99_MS:.0f} ms, {mode} clients: {verdict} (worst {worst:.1f} ms)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument(
        "--think-ms", type=int, default=10, help="pause of each client between requests (10)"
    )
    parser.add_argument("--sdk-threads", type=int, default=10)
    parser.add_argument("--cli-looks", type=int, default=3)
    parser.add_argument("--json", metavar="FILE", help="also write the numbers here")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench/api.py needs wrk (scripts/bootstrap.sh installs it)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="ephyra-bench-api-"))
    journal_url = f"sqlite:///{root / 'journal.db'}"
    rows: dict[str, dict[str, Any]] = {}
    try:
        began = time.monotonic()
        run_id = fill(journal_url, args.runs, args.nodes)
        print(
            f"journal: {args.runs} runs of {args.nodes} nodes in {time.monotonic() - began:.1f} s",
            file=sys.stderr,
        )
        proc, url = serve(root, journal_url)
        try:
            for name, path in (
                ("ephyra status", f"/v1/forklift/runs/{run_id}"),
                ("ephyra run", f"/v1/runs/{run_id}"),
                ("ephyra list", "/v1/runs"),
                ("ephyra kind-list", "/v1/forklift/runs"),
            ):
                for think in (0, args.think_ms):
                    label = f"{name} ({'saturating' if not think else f'think {think} ms'})"
                    rows[label] = wrk(url + path, args.seconds, args.connections, think, root)
                    print(f"{label}: {rows[label]}", file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(60)
        with Testbed(root / "testbed", names=("cp1", "cp2")) as bed:
            seed_nodes(bed.connect("cp1"), args.nodes)
            rows["raw-sdk look (both planes)"] = sdk_looks(bed, args.seconds, args.sdk_threads)
            rows["openstack CLI look (both planes)"] = cli_looks(bed, args.cli_looks)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for line in report(rows, args.connections, args.sdk_threads):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
