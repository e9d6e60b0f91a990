"""Benchmark: plan the upgrade of a synthetic cloud of 10,000 hosts and 100,000 servers.

The cloud: 3 regions' worth of hosts in one inventory: 30 controllers running 24
control-plane services each, 300 network nodes, 200 storage nodes, the rest computes
(nova-compute and an Open vSwitch agent) carrying 100,000 servers between them, in 3
availability zones and an aggregate per 100 hosts, every other compute with servers of
an anti-affinity group it shares with one other; a compute batch takes at most 20 hosts
of a zone and 10 of an aggregate.

Contenders, in the same run, on the same inventory (as ``Inventory.to_dict`` gives it):
  floor   a plain loop an operator writes: group hosts by role, sort them, cut them
          into batches; no service order, no strategies, no estimate, no canary
  ephyra  the inventory built from its dict, the full plan (control plane service by
          service, roles in dependency order, canary, drains, estimates), the plan's
          dict for the journal and its rendered tree

It prints seconds and peak memory (tracemalloc: what planning allocates; ru_maxrss: the
whole process) and the ratios against the aims: under 2 s and under 500 MB.

usage: .venv/bin/python bench/plan.py [--hosts 10000] [--servers 100000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from ephyra.inventory.model import Inventory
from ephyra.upgrade.plan import make_plan
from ephyra.upgrade.spec import parse

AIM_SECONDS = 2.0
AIM_MB = 500.0
CONTROL_SERVICES = [
    ("keystone", "identity"),
    ("glance-api", "image"),
    ("placement-api", "placement"),
    ("nova-api", "compute"),
    ("nova-conductor", "compute"),
    ("nova-scheduler", "compute"),
    ("nova-novncproxy", "compute"),
    ("neutron-server", "network"),
    ("neutron-rpc-server", "network"),
    ("cinder-api", "block-storage"),
    ("cinder-scheduler", "block-storage"),
    ("heat-api", "orchestration"),
    ("heat-engine", "orchestration"),
    ("horizon", "dashboard"),
    ("ironic-api", "bare-metal"),
    ("ironic-conductor", "bare-metal"),
    ("octavia-api", "load-balancer"),
    ("barbican-api", "key-manager"),
    ("designate-api", "dns"),
    ("manila-api", "shared-file-system"),
    ("aodh-api", "alarming"),
    ("gnocchi-api", "metric"),
    ("magnum-api", "container-infra"),
    ("trove-api", "database"),
]

SPEC = {
    "release": "2026.2",
    "strategies": {
        "pkg": {"type": "package", "packages": ["openstack-release"]},
        "os": {"type": "command", "upgrade": "apt-get dist-upgrade -y"},
    },
    "strategy": "pkg",
    "roles": {
        "controller": {"max_at_once": 1},
        "network": {"max_at_once": 10},
        "storage": {"max_at_once": 10},
        "compute": {
            "max_at_once": 50,
            "after": ["network", "storage"],
            "canary": "first",
            "soak": 900,
            "per_domain": {"zone": 20, "aggregate": 10},
        },
    },
    "host_upgrade": {"roles": ["compute"], "strategy": "os", "reboot": "systemctl reboot"},
    "evacuation": {"concurrency": 16, "per_host": 4},
}


def _service(name: str, project: str) -> dict[str, str]:
    return {
        "name": name,
        "project": project,
        "region": "",
        "status": "up",
        "version": "",
        "source": "bench",
    }


def synthetic(hosts: int, servers: int) -> dict[str, Any]:
    """A cloud as ``Inventory.to_dict`` gives it."""
    rows: list[dict[str, Any]] = []

    def host(
        name: str,
        roles: list[str],
        services: list[tuple[str, str]],
        n: int = 0,
        facts: dict[str, Any] | None = None,
    ) -> None:
        rows.append(
            {
                "name": name,
                "roles": roles,
                "services": [_service(s, p) for s, p in services],
                "facts": {"rack": f"r{len(rows) // 40:03d}", **(facts or {})},
                "sources": ["bench"],
                "servers": n,
            }
        )

    for i in range(30):
        host(f"ctl-{i:02d}", ["controller"], CONTROL_SERVICES)
    for i in range(300):
        host(f"net-{i:03d}", ["network"], [("neutron-l3-agent", "network")])
    for i in range(200):
        host(f"sto-{i:03d}", ["storage"], [("cinder-volume", "block-storage")])
    computes = hosts - len(rows)
    per, extra = divmod(servers, computes)
    for i in range(computes):
        host(
            f"cmp-{i:05d}",
            ["compute"],
            [("nova-compute", "compute"), ("neutron-openvswitch-agent", "network")],
            per + (1 if i < extra else 0),
            {  # 3 zones, an aggregate per 100 hosts, an anti-affinity group per 4 hosts
                "availability_zone": f"az{i % 3}",
                "aggregates": [f"agg-{i // 100:03d}"],
                "anti_affinity": [f"aa-{i // 4:04d}"] if i % 2 else [],
            },
        )
    return {"sources": ["bench"], "regions": [], "hosts": rows, "endpoints": []}


def floor(data: dict[str, Any]) -> int:
    """Group by role, sort, cut into batches: the least a planning script does."""
    limits = {r: max(1, v["max_at_once"]) for r, v in SPEC["roles"].items()}  # type: ignore[attr-defined]
    by_role: dict[str, list[str]] = {}
    for h in data["hosts"]:
        by_role.setdefault(h["roles"][0], []).append(h["name"])
    batches = []
    for role in ("controller", "network", "storage", "compute"):
        names = sorted(by_role.get(role, []))
        size = limits[role]
        batches += [names[i : i + size] for i in range(0, len(names), size)]
    return len(batches)


def ephyra(data: dict[str, Any]) -> int:
    inventory = Inventory.from_dict(data)
    plan = make_plan(inventory, parse(SPEC))
    json.dumps(plan.to_dict())
    plan.render()
    return sum(len(s.batches) for s in plan.stages)


def measure(
    name: str, job: Callable[[dict[str, Any]], int], data: dict[str, Any]
) -> dict[str, Any]:
    tracemalloc.start()
    started = time.perf_counter()
    batches = job(data)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    started = time.perf_counter()  # again without tracemalloc's overhead
    job(data)
    untraced = time.perf_counter() - started
    return {
        "contender": name,
        "seconds": untraced,
        "traced_seconds": seconds,
        "peak_mb": peak,
        "batches": batches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    data = synthetic(args.hosts, args.servers)
    servers = sum(h["servers"] for h in data["hosts"])
    print(f"synthetic cloud: {len(data['hosts'])} hosts, {servers} servers")
    results = [measure("floor", floor, data), measure("ephyra", ephyra, data)]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'contender':10} {'seconds':>8} {'peak MB':>8} {'batches':>8}")
    for r in results:
        print(f"{r['contender']:10} {r['seconds']:8.3f} {r['peak_mb']:8.1f} {r['batches']:8d}")
    mine = results[1]
    print(f"process peak RSS: {rss:.0f} MB")
    print(
        f"ephyra/floor time: {mine['seconds'] / results[0]['seconds']:.1f}x; "
        f"aims: {mine['seconds']:.2f} s of {AIM_SECONDS:.0f} s "
        f"({'met' if mine['seconds'] < AIM_SECONDS else 'MISSED'}), "
        f"{max(mine['peak_mb'], rss):.0f} MB of {AIM_MB:.0f} MB "
        f"({'met' if max(mine['peak_mb'], rss) < AIM_MB else 'MISSED'})"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"results": results, "rss_mb": rss}, out, indent=2)


if __name__ == "__main__":
    main()
