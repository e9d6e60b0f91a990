"""Benchmark: N bare-metal nodes that Nova owns, each carrying a server, moved from cloud a
to cloud b (Nova on Ironic in each, Keystone auth on every service), by several contenders.
Run as ``bench/forklift.py --nova``.

Each contender moves nodes of its own, made the same way before its clock starts
(testbed/baremetal.py ``with_servers``: enrolled, offered by a's Nova, a server booted on
each):

  raw-sdk        a plain openstacksdk loop, one node after another, with the calls of a
                 careful move: the server deleted on a, the node enrolled on b (in
                 maintenance, with its ports), deleted on a, made available on b, and
                 once b's Nova offers it the server booted on it again; polling every
                 0.2 s
  openstack-cli  a bash script of `openstack` commands written for the nodes, the same
                 moves one node after another, polling every second (`--wait` where the
                 command has it)
  ephyra-c1      `ephyra forklift start --from a --to b --nova --concurrency 1`
  ephyra-c4      the same with `--concurrency 4`

The clock stops when the contender has exited. Each is then checked: every node on b
only, its server there ACTIVE on the same node under its name, nothing left on a. Prints
the wall times and the ratios.

usage: .venv/bin/python bench/forklift.py --nova [--nodes 4] [--contenders ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the testbed package lives at the repository root
    sys.path.insert(0, str(ROOT))

from testbed import baremetal  # noqa: E402
from testbed.keystone import start_keystone  # noqa: E402
from testbed.nova_watch import wait_until  # noqa: E402
from testbed.tenantclouds import TwoClouds  # noqa: E402

CONTENDERS = ("raw-sdk", "openstack-cli", "ephyra-c1", "ephyra-c4")
EPHYRA = [sys.executable, "-m", "ephyra.cli.main"]
#: Longest one node's move may take in any contender (s).
NODE_TIMEOUT = 300.0
#: Node fields a move carries, besides ports (the nodes here are fake-hardware).
FIELDS = ("name", "driver", "resource_class", "properties", "extra", "owner", "lessee")


@dataclass
class Result:
    name: str
    nodes: int
    seconds: float | None = None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Node:
    """What a contender needs of one node to move it with its server."""

    uuid: str
    fields: dict[str, Any]
    ports: list[dict[str, Any]]
    server: str  # id on a
    server_name: str
    metadata: dict[str, str]


def nodes_of(a: Any, uuids: list[str]) -> list[Node]:
    found = []
    for uuid in uuids:
        node = a.baremetal.get_node(uuid)
        server = a.compute.get_server(node.instance_id)
        ports = [
            {"address": p.address, "uuid": p.id, "pxe_enabled": p.is_pxe_enabled}
            for p in a.baremetal.ports(node=uuid, details=True)
        ]
        fields = {f: getattr(node, f) for f in FIELDS}
        found.append(Node(uuid, fields, ports, server.id, server.name, dict(server.metadata)))
    return found


# -- raw-sdk -------------------------------------------------------------------------------
def _gone(conn: Any, server: str) -> bool:
    return conn.compute.find_server(server, ignore_missing=True, all_projects=True) is None


def _state(conn: Any, uuid: str, state: str) -> Callable[[], bool]:
    return lambda: conn.baremetal.get_node(uuid).provision_state == state


def raw_sdk_move(a: Any, b: Any, node: Node, flavor: str, image: str) -> None:
    """One node with its server, the careful way, with plain openstacksdk calls."""
    ironic_a, ironic_b, uuid = a.baremetal, b.baremetal, node.uuid
    ironic_a.set_node_maintenance(uuid, reason="moving to b")
    a.compute.delete_server(node.server)
    wait_until(lambda: _gone(a, node.server), NODE_TIMEOUT, f"{node.server_name} deleted")
    wait_until(_state(a, uuid, "available"), NODE_TIMEOUT, f"{uuid} torn down")
    ironic_b.create_node(uuid=uuid, **node.fields)
    for port in node.ports:
        ironic_b.create_port(node_id=uuid, **port)
    ironic_b.set_node_maintenance(uuid, reason="arriving from a")
    ironic_a.delete_node(uuid)
    ironic_b.set_node_provision_state(uuid, "manage", wait=False)
    wait_until(_state(b, uuid, "manageable"), NODE_TIMEOUT, f"{uuid} manageable")
    ironic_b.set_node_provision_state(uuid, "provide", wait=False)
    wait_until(_state(b, uuid, "available"), NODE_TIMEOUT, f"{uuid} available")
    ironic_b.unset_node_maintenance(uuid)
    ironic_b.set_node_power_state(uuid, "power off")
    wait_until(lambda: uuid in baremetal.offered(b, [uuid]), NODE_TIMEOUT, f"{uuid} offered")
    baremetal.boot_on(b, "ironic-b", uuid, node.server_name, flavor, image, metadata=node.metadata)


def run_raw_sdk(clouds: TwoClouds, nodes: list[Node], work: Path) -> None:
    a, b = clouds.connect("a"), clouds.connect("b")
    flavor, image = baremetal.flavor(b, baremetal.FLAVOR), baremetal.image(b, baremetal.IMAGE)
    for node in nodes:
        raw_sdk_move(a, b, node, flavor, image)


# -- openstack-cli -------------------------------------------------------------------------
def script(nodes: list[Node], a: str, b: str) -> str:
    """The bash script moving ``nodes`` with their servers from cloud entry ``a`` to
    ``b``, one after another; every value written into it is quoted."""
    q = shlex.quote
    rc = baremetal.custom_class(str(nodes[0].fields["resource_class"])) if nodes else ""
    lines = [
        "#!/usr/bin/env bash",
        "# Move bare-metal nodes that Nova owns to another cloud, one by one: delete the",
        "# server, move the node, boot the server again on it once Nova offers the node.",
        "set -euo pipefail",
        f'os_a() {{ openstack --os-cloud {q(a)} "$@"; }}',
        f'os_b() {{ openstack --os-cloud {q(b)} "$@"; }}',
        "until_state() {  # CLOUD NODE STATE",
        '    until [ "$("$1" baremetal node show "$2" -f value -c provision_state)" = "$3" ];'
        " do sleep 1; done",
        "}",
        "offered() {  # NODE",
        '    os_b hypervisor show "$1" -f value -c id >/dev/null 2>&1 &&',
        f'    [ "$(os_b resource provider inventory show "$1" {q(rc)} -f value -c reserved'
        ' 2>/dev/null)" = 0 ]',
        "}",
    ]
    for node in nodes:
        fields = node.fields
        create = ["--uuid", node.uuid, "--name", fields["name"], "--driver", fields["driver"]]
        create += ["--resource-class", fields["resource_class"]]
        for key, value in sorted((fields["properties"] or {}).items()):
            create += ["--property", f"{key}={value}"]
        for key, value in sorted((fields["extra"] or {}).items()):
            create += ["--extra", f"{key}={value}"]
        boot = ["--flavor", baremetal.FLAVOR, "--image", baremetal.IMAGE, "--nic", "none"]
        boot += ["--host", "ironic-b", "--hypervisor-hostname", node.uuid]
        for key, value in sorted(node.metadata.items()):
            boot += ["--property", f"{key}={value}"]
        uuid = q(node.uuid)
        lines += [
            f"echo {q('moving ' + str(fields['name']))} >&2",
            f"os_a baremetal node maintenance set {uuid} --reason 'moving to b'",
            f"os_a server delete --wait {q(node.server)}",
            f"until_state os_a {uuid} available",
            f"os_b baremetal node create {' '.join(q(x) for x in create)} -f value -c uuid",
            *(
                f"os_b baremetal port create {q(p['address'])} --node {uuid}"
                f" --uuid {q(p['uuid'])} --pxe-enabled {str(p['pxe_enabled']).lower()}"
                " -f value -c uuid"
                for p in node.ports
            ),
            f"os_b baremetal node maintenance set {uuid} --reason 'arriving from a'",
            f"os_a baremetal node delete {uuid}",
            f"os_b baremetal node manage --wait 0 {uuid}",
            f"os_b baremetal node provide --wait 0 {uuid}",
            f"os_b baremetal node maintenance unset {uuid}",
            f"os_b baremetal node power off {uuid}",
            f"until offered {uuid}; do sleep 1; done",
            f"os_b --os-compute-api-version 2.74 server create --wait -f value -c id"
            f" {' '.join(q(x) for x in boot)} {q(node.server_name)}",
        ]
    return "\n".join(lines) + "\n"


def run_cli(clouds: TwoClouds, nodes: list[Node], work: Path) -> None:
    path = work / "move.sh"
    path.write_text(script(nodes, "a", "b"))
    _run(["bash", str(path)], clouds, work, len(nodes))


# -- ephyra --------------------------------------------------------------------------------
def run_ephyra(concurrency: int) -> Callable[[TwoClouds, list[Node], Path], None]:
    def contender(clouds: TwoClouds, nodes: list[Node], work: Path) -> None:
        argv = [*EPHYRA, "forklift", "start", "--from", "a", "--to", "b", "--nova"]
        _run([*argv, "--concurrency", str(concurrency), "--yes"], clouds, work, len(nodes))

    return contender


def _run(argv: list[str], clouds: TwoClouds, work: Path, nodes: int) -> None:
    env = {
        **os.environ,
        **clouds.env(),
        "XDG_STATE_HOME": str(work / "state"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=NODE_TIMEOUT * (nodes + 1)
    )
    (work / "output.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-10:])
        raise RuntimeError(f"exit {done.returncode}:\n{tail}")


# -- measuring -----------------------------------------------------------------------------
def verify(clouds: TwoClouds, nodes: list[Node]) -> list[str]:
    """Every node on b only with its fields, its server ACTIVE on it there under its name."""
    a, b = clouds.connect("a"), clouds.connect("b")
    problems = []
    left = {n.id for n in a.baremetal.nodes()} & {n.uuid for n in nodes}
    if left:
        problems.append(f"{len(left)} nodes still on a")
    servers = {s.hypervisor_hostname: s for s in b.compute.servers(all_projects=True)}
    for node in nodes:
        found = b.baremetal.find_node(node.uuid, ignore_missing=True)
        if found is None:
            problems.append(f"{node.fields['name']}: not on b")
            continue
        differs = [f for f in FIELDS if getattr(found, f) != node.fields[f]]
        if differs:
            problems.append(f"{node.fields['name']}: differs in {', '.join(differs)}")
        server = servers.get(node.uuid)
        if server is None or (server.name, server.status) != (node.server_name, "ACTIVE"):
            problems.append(f"{node.fields['name']}: server {node.server_name} not ACTIVE on it")
    return problems


Contender = Callable[[TwoClouds, list[Node], Path], None]


def measure(name: str, contender: Contender, clouds: TwoClouds, count: int) -> Result:
    result = Result(name, count)
    clouds.clean()
    a = clouds.connect("a")
    uuids = baremetal.with_servers(a, "ironic-a", count, others=[clouds.connect("b")])
    nodes = nodes_of(a, uuids)
    print(f"{name}: moving {count} nodes with their servers a -> b", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix=f"ephyra-bench-{name}-") as tmp:
        started = time.monotonic()
        try:
            contender(clouds, nodes, Path(tmp))
        except Exception as exc:
            result.problems.append(f"FAILED: {exc}")
            return result
        seconds = time.monotonic() - started
    result.problems = verify(clouds, nodes)
    result.seconds = seconds if not result.problems else None
    return result


def warm_up(clouds: TwoClouds) -> None:
    """A node offered once by each cloud's Nova before any clock starts: the first node
    a fresh Nova offers takes it about 30 s more (its compute host mapped to the cell),
    which would fall on the first contender only."""
    for name in ("a", "b"):
        conn = clouds.connect(name)
        baremetal.wait_offered(conn, baremetal.enroll(conn, [f"warm-up-{name}"]))
    clouds.clean()


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def report(results: dict[str, Result]) -> list[str]:
    lines = [f"{'contender':<14} {'nodes':>5} {'seconds':>8} {'s/node':>7}"]
    for r in results.values():
        per = r.seconds / r.nodes if r.seconds is not None else None
        lines.append(f"{r.name:<14} {r.nodes:>5} {_fmt(r.seconds):>8} {_fmt(per, '.2f'):>7}")
        lines += [f"  FAILED {r.name}: {p}" for p in r.problems]
    t = {name: r.seconds for name, r in results.items()}
    lines.append("")
    for num, den in (
        ("openstack-cli", "ephyra-c1"),
        ("raw-sdk", "ephyra-c1"),
        ("openstack-cli", "ephyra-c4"),
        ("ephyra-c1", "ephyra-c4"),
    ):
        top, bottom = t.get(num), t.get(den)
        if top is not None and bottom:
            lines.append(f"{num} / {den}: {top / bottom:.2f}")
    return lines


@contextmanager
def testbed(root: Path) -> Iterator[TwoClouds]:
    """A Keystone and the two clouds on it, each with Ironic under its Nova, in ``root``."""
    with (
        start_keystone(root / "keystone") as keystone,
        TwoClouds(root / "clouds", keystone, baremetal=True) as clouds,
    ):
        yield clouds


def main(argv: list[str] | None = None, clouds: TwoClouds | None = None) -> int:
    """Run the benchmark on ``clouds`` (started here when not given)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--nodes", type=int, default=4, help="nodes each contender moves (4)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="a comma list")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = set(names) - set(CONTENDERS)
    if unknown or args.nodes < 1:
        parser.error(f"--nodes at least 1; contenders among {', '.join(CONTENDERS)}")
    runners: dict[str, Contender] = {
        "raw-sdk": run_raw_sdk,
        "openstack-cli": run_cli,
        "ephyra-c1": run_ephyra(1),
        "ephyra-c4": run_ephyra(4),
    }

    def run(started: TwoClouds) -> dict[str, Result]:
        warm_up(started)
        return {name: measure(name, runners[name], started, args.nodes) for name in names}

    if clouds is not None:
        results = run(clouds)
    else:
        with (
            tempfile.TemporaryDirectory(prefix="ephyra-bench-nova-") as root,
            testbed(Path(root)) as started,
        ):
            results = run(started)
    print("\n".join(report(results)), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results.values()], indent=2))
    return 1 if any(r.problems for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
