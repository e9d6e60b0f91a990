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

The floor, in the same run: a second server built by the same code as ``ephyra serve``
(the same app, middleware, token check and policy, uvicorn with the same options) with a
bare route per endpoint that returns, as a constant, the bytes Ephyra answered there
(checked: the same bytes, and a 401 without a token). Both are served by ``--workers``
processes (``ephyra serve --workers``; the CPU time per answer counts them all). The floor
is measured just before each Ephyra endpoint, with the same clients, so that what the
machine is doing meanwhile weighs on both; the table gives Ephyra's p99 against it.

The competitor, in the same run: what an operator polls today to see where the nodes of a
forklift are, against the testbed's two real Ironic control planes holding the same
number of nodes: ``openstack baremetal node list`` on each (a few sequential looks), and
a raw openstacksdk loop listing the nodes of both (``--sdk-threads`` threads for
``--seconds``).

usage: .venv/bin/python bench/api.py [--seconds 20] [--connections 100] [--runs 20] [--nodes 50]
                                     [--think-ms 10] [--rounds 1] [--workers 1]
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
#: Ephyra's p99 against the floor's, at most.
AIM_RATIO = 2.0
#: The floor's routes: ``/floor/NAME`` answers what Ephyra answered at endpoint NAME.
FLOOR = "/floor/"
#: The first argument that makes this script the floor's server.
FLOOR_SERVER = "floor-server"


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
    count = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "rps": float(rate.group(1)) if rate else 0.0,
        "requests": int(count.group(1)) if count else 0,
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


def serve_args(root: Path, journal_url: str, port: int, workers: int = 1) -> list[str]:
    """The command line of ``ephyra serve`` after ``ephyra``."""
    tokens = root / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({TOKEN: {"user": "b", "project": "b", "roles": ["admin"]}}))
    return [
        "--journal",
        journal_url,
        "--locks",
        f"file://{root / 'locks'}",
        "serve",
        "--port",
        str(port),
        "--tokens",
        str(tokens),
        "--workers",
        str(workers),
    ]


def serve(
    root: Path, journal_url: str, workers: int, floor: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``ephyra serve``; or, given the answers of ``floor``, the floor's server."""
    port = free_port()
    ephyra = serve_args(root, journal_url, port, workers)
    if floor is None:
        command = [sys.executable, "-m", "ephyra.cli.main", *ephyra]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), FLOOR_SERVER, str(floor), *ephyra]
    name = "serve" if floor is None else "floor"
    env = {**os.environ, "XDG_STATE_HOME": str(root / "state")}
    proc = subprocess.Popen(
        command, env=env, stdout=(root / f"{name}.log").open("w"), stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return proc, url
        except requests.ConnectionError as exc:
            if time.monotonic() > deadline or proc.poll() is not None:
                log = (root / f"{name}.log").read_text()
                raise RuntimeError(f"{name} server did not start: {log}") from exc
            time.sleep(0.1)


def floor_server(argv: list[str]) -> int:
    """The floor: the app of ``ephyra serve`` (its options in ``argv[1:]``), served as it
    serves it (``--workers`` too), with a route per endpoint of ``argv[0]`` (a JSON
    file: name -> answer) in front of all the others, behind the same token check and
    policy action as a status, answering the same bytes as a constant."""
    from ephyra.cli.main import build_parser
    from ephyra.cli.serve import run_app, serve_workers

    answers: dict[str, str] = json.loads(Path(argv[0]).read_text())
    args = build_parser().parse_args(argv[1:])

    def make(args: argparse.Namespace) -> tuple[Any, threading.Event]:
        return floor_app(answers, args)

    if args.workers > 1:
        return serve_workers(args, make)
    app, stopping = make(args)
    run_app(app, stopping, args)
    return 0


def floor_app(answers: dict[str, str], args: argparse.Namespace) -> tuple[Any, threading.Event]:
    """The app of ``ephyra serve`` with the floor's routes first."""
    from fastapi import Response
    from fastapi.routing import APIRoute

    from ephyra.cli.serve import make_app

    app, stopping = make_app(args)
    status = next(
        r for r in app.state.routes if isinstance(r, APIRoute) and r.path == "/v1/{kind}/runs/{run}"
    )
    for name, text in answers.items():
        body = text.encode()

        async def constant(body: bytes = body) -> Response:
            return Response(body, media_type="application/json")

        app.add_api_route(FLOOR + name, constant, dependencies=status.dependencies)
        app.router.routes.insert(0, app.router.routes.pop())
    return app, stopping


def answers(url: str, endpoints: dict[str, str]) -> dict[str, str]:
    """What Ephyra answers at each endpoint (checked to be a 200)."""
    found = {}
    for name, path in endpoints.items():
        answer = requests.get(url + path, headers={"X-Auth-Token": TOKEN}, timeout=30)
        answer.raise_for_status()
        found[name] = answer.text
    return found


ENDPOINTS = {
    "status": "/v1/forklift/runs/{run}",
    "run": "/v1/runs/{run}",
    "list": "/v1/runs",
    "kind-list": "/v1/forklift/runs",
}


def mode(think_ms: int) -> str:
    return "saturating" if not think_ms else f"think {think_ms} ms"


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
    lines.append("")
    lines.extend(against_floor(rows))
    return lines


def against_floor(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Ephyra's p50, p99 and CPU time per answer against the floor's, endpoint by
    endpoint, and the aim."""
    lines = [
        f"{'against the floor':<32} {'p50 ms':>8} {'floor':>8} {'p99 ms':>8} {'floor':>8} "
        f"{'p99 x':>6} {'CPU us':>7} {'floor':>7}"
    ]
    worst: dict[str, tuple[float, str]] = {}
    for name, row in rows.items():
        floor = rows.get(name.replace("ephyra ", "floor ", 1))
        if not name.startswith("ephyra ") or floor is None:
            continue
        ratio = row["p99_ms"] / max(floor["p99_ms"], 1e-9)
        lines.append(
            f"{name.removeprefix('ephyra '):<32} {row['p50_ms']:>8.1f} {floor['p50_ms']:>8.1f} "
            f"{row['p99_ms']:>8.1f} {floor['p99_ms']:>8.1f} {ratio:>6.2f} "
            f"{row['cpu_us']:>7.0f} {floor['cpu_us']:>7.0f}"
        )
        kind = "saturating" if "saturating" in name else "think"
        if ratio > worst.get(kind, (0.0, ""))[0]:
            worst[kind] = (ratio, name.removeprefix("ephyra ").split(" (")[0])
    for kind, (ratio, name) in worst.items():
        verdict = "met" if ratio <= AIM_RATIO else "NOT met"
        lines.append(
            f"aim p99 within {AIM_RATIO:.0f}x of the floor, {kind} clients: {verdict} "
            f"(worst {ratio:.2f}x, {name})"
        )
    return lines


def measure(args: argparse.Namespace, root: Path, journal_url: str) -> dict[str, dict[str, Any]]:
    """Each endpoint of Ephyra and of its floor, saturating then thinking, the floor
    just before Ephyra each time, ``--rounds`` times (the median of each number)."""
    began = time.monotonic()
    run_id = fill(journal_url, args.runs, args.nodes)
    print(
        f"journal: {args.runs} runs of {args.nodes} nodes in {time.monotonic() - began:.1f} s",
        file=sys.stderr,
    )
    paths = {name: path.format(run=run_id) for name, path in ENDPOINTS.items()}
    rows: dict[str, dict[str, Any]] = {}
    proc, url = serve(root, journal_url, args.workers)
    servers = [proc]
    try:
        found = answers(url, paths)
        bodies = root / "answers.json"
        bodies.write_text(json.dumps(found))
        floor_proc, floor_url = serve(root, journal_url, args.workers, floor=bodies)
        servers.append(floor_proc)
        check_floor(floor_url, found)
        for name, path in paths.items():
            for think in (0, args.think_ms):
                pair = {
                    f"floor {name} ({mode(think)})": (floor_proc, floor_url + FLOOR + name),
                    f"ephyra {name} ({mode(think)})": (proc, url + path),
                }
                rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in pair}
                for _ in range(args.rounds):  # the floor, then Ephyra, in turn
                    for label, (server, where) in pair.items():
                        row = costed(server.pid, where, args.seconds, args.connections, think, root)
                        rounds[label].append(row)
                for label, measured in rounds.items():
                    rows[label] = median(measured)
                    print(f"{label}: {rows[label]}", file=sys.stderr)
    finally:
        for server in servers:
            server.terminate()
            server.wait(60)
    return rows


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) a server has used so far: its process's, and its
    workers' (its children's) with ``--workers``."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # a process that ended meanwhile
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def costed(
    pid: int, url: str, seconds: int, connections: int, think_ms: int, root: Path
) -> dict[str, Any]:
    """:func:`wrk`'s numbers, and the server's CPU time per answer (microseconds): what
    the machine's other work changes least."""
    before = cpu_seconds(pid)
    row = wrk(url, seconds, connections, think_ms, root)
    row["cpu_us"] = (cpu_seconds(pid) - before) * 1e6 / max(row["requests"], 1)
    return row


def check_floor(floor_url: str, found: dict[str, str]) -> None:
    """The floor answers Ephyra's bytes, and only to a token, as Ephyra does."""
    for name, text in found.items():
        answer = requests.get(floor_url + FLOOR + name, headers={"X-Auth-Token": TOKEN}, timeout=30)
        if answer.status_code != 200 or answer.text != text:
            raise RuntimeError(f"the floor's {name} is not Ephyra's answer: {answer.status_code}")
        bare = requests.get(floor_url + FLOOR + name, timeout=30)
        if bare.status_code != 401:
            raise RuntimeError(f"the floor's {name} answered {bare.status_code} with no token")


def median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each number's median over the rounds (the non-2xx answers: their sum)."""
    return {
        "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
        "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
        "rps": statistics.median(r["rps"] for r in rounds),
        "requests": sum(r["requests"] for r in rounds),
        "cpu_us": statistics.median(r["cpu_us"] for r in rounds),
        "non_2xx": sum(r["non_2xx"] for r in rounds),
        "socket_errors": "; ".join(r["socket_errors"] for r in rounds if r["socket_errors"]),
    }


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == [FLOOR_SERVER]:
        return floor_server(given[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument(
        "--think-ms", type=int, default=10, help="pause of each client between requests (10)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure each endpoint and its floor this many times, in turn (the median; 1)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="ephyra serve --workers, for Ephyra and its floor alike (1)",
    )
    parser.add_argument("--sdk-threads", type=int, default=10)
    parser.add_argument("--cli-looks", type=int, default=3)
    parser.add_argument("--json", metavar="FILE", help="also write the numbers here")
    args = parser.parse_args(given)
    if shutil.which("wrk") is None:
        print("bench/api.py needs wrk (scripts/bootstrap.sh installs it)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="ephyra-bench-api-"))
    journal_url = f"sqlite:///{root / 'journal.db'}"
    try:
        rows = measure(args, root, journal_url)
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
