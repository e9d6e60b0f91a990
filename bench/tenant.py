"""Benchmark: a tenant of N servers moved from cloud a to cloud b, by the openstack CLI
script an operator writes today and by ``ephyra tenant migrate``.

Both contenders run on the two-cloud testbed (testbed/tenantclouds.py: one Keystone, two
Novas, Glances and Neutrons), each on a fresh tenant of its own made the same way
(testbed/tenantload.py: N servers, two in a server group, two key pairs, a flavor with
extra specs, two images, a security group, a network, subnet and router):

  openstack-cli  a bash script written for the tenant's servers, one after another:
                 `openstack server image create --wait` on a, `openstack image save`,
                 `openstack image create --file` on b, `openstack server create --wait`
                 on b with the same flavor, key pair, network, security group, properties
                 and server group, `openstack server stop` on a. What it needs on b
                 (flavor, key pairs, network, security group, server group) is made before
                 its clock starts, as an operator would have made it by hand.
  ephyra         `ephyra tenant migrate PROJECT --from a --to b --yes`, its default
                 concurrency, as a command (its start-up included).

The clock stops when the contender has exited and every original on a is SHUTOFF. Each is
then checked: every server of the tenant ACTIVE on b under its name, every original
SHUTOFF on a. Prints the wall times and the ratio on one line.

usage: .venv/bin/python bench/tenant.py [--servers 4] [--json FILE]
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
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the testbed package lives at the repository root
    sys.path.insert(0, str(ROOT))

from ephyra.names import is_name, shown  # noqa: E402
from ephyra.tenants.resources import KINDS  # noqa: E402
from testbed.keystone import start_keystone  # noqa: E402
from testbed.nova_watch import wait_until  # noqa: E402
from testbed.tenantclouds import TwoClouds  # noqa: E402
from testbed.tenantload import make_tenant, statuses  # noqa: E402

CONTENDERS = ("openstack-cli", "ephyra")
EPHYRA = [sys.executable, "-m", "ephyra.cli.main"]
#: Longest a contender may take, seconds: a base and a share per server.
TIMEOUT_BASE, TIMEOUT_PER_SERVER = 300.0, 120.0


@dataclass
class Result:
    name: str
    project: str
    servers: int
    seconds: float | None = None
    problems: list[str] = field(default_factory=list)
    brought: dict[str, int] = field(default_factory=dict)  # ephyra: resources on b by kind


@dataclass(frozen=True)
class Tenant:
    name: str  # the project's name, which names its users and clouds.yaml entries
    id: str


@dataclass
class Server:
    """What the script needs to know of one server on a to make its copy on b."""

    id: str
    name: str
    flavor: str
    key: str | None
    networks: list[str]
    security_groups: list[str]
    metadata: dict[str, str]
    group: str | None  # its server group's id on b
    disk_format: str
    container_format: str


# -- the tenants --------------------------------------------------------------------------
def connect(clouds: TwoClouds, cloud: str, tenant: Tenant | None = None) -> Any:
    """The admin's connection to ``cloud``, or ``tenant``'s member's."""
    return clouds.connect(clouds.entry_name(cloud, tenant.name, "member") if tenant else cloud)


def make(clouds: TwoClouds, name: str, servers: int) -> Tenant:
    """Project ``name`` with its member and reader, and its workload on a."""
    clouds.add_project(name)
    member = clouds.connect(clouds.entry_name("a", name, "member"))
    project, _ = make_tenant(connect(clouds, "a"), member, name, servers)
    return Tenant(name, project)


def prepare_b(clouds: TwoClouds, tenant: Tenant) -> dict[str, str]:
    """On b, what the script's `server create` names: the flavor (extra specs too), the
    member's key pairs, the networks with their subnets, the security groups with their
    ingress rules and the server groups, as a has them. Returns server group ids a -> b."""
    admin_a, admin_b = connect(clouds, "a"), connect(clouds, "b")
    member_a, member_b = connect(clouds, "a", tenant), connect(clouds, "b", tenant)
    flavor = admin_a.compute.find_flavor(f"{tenant.name}.tiny")
    made = admin_b.compute.create_flavor(
        name=flavor.name, vcpus=flavor.vcpus, ram=flavor.ram, disk=flavor.disk
    )
    specs = admin_a.compute.fetch_flavor_extra_specs(flavor).extra_specs
    admin_b.compute.create_flavor_extra_specs(made, specs)
    for key in member_a.compute.keypairs():
        member_b.compute.create_keypair(name=key.name, public_key=key.public_key)
    for net in member_a.network.networks(project_id=tenant.id):
        net_b = member_b.network.create_network(name=net.name)
        for sub in member_a.network.subnets(network_id=net.id):
            member_b.network.create_subnet(
                name=sub.name, network_id=net_b.id, cidr=sub.cidr, ip_version=sub.ip_version
            )
    for sg in member_a.network.security_groups(project_id=tenant.id):
        if sg.name == "default":
            continue
        sg_b = member_b.network.create_security_group(name=sg.name, description=sg.description)
        for rule in member_a.network.security_group_rules(security_group_id=sg.id):
            if rule.direction == "ingress":
                member_b.network.create_security_group_rule(
                    security_group_id=sg_b.id, direction="ingress", ether_type=rule.ether_type,
                    protocol=rule.protocol, port_range_min=rule.port_range_min,
                    port_range_max=rule.port_range_max, remote_ip_prefix=rule.remote_ip_prefix,
                )  # fmt: skip
    return {
        group.id: member_b.compute.create_server_group(name=group.name, policy=group.policy).id
        for group in member_a.compute.server_groups()
    }


def servers_of(clouds: TwoClouds, tenant: Tenant, groups: dict[str, str]) -> list[Server]:
    """The tenant's servers on a, as the script is written for them (``groups``: server
    group ids a -> b)."""
    admin, member = connect(clouds, "a"), connect(clouds, "a", tenant)
    group_of = {m: groups[g.id] for g in member.compute.server_groups() for m in g.member_ids}
    found = []
    for server in admin.compute.servers(all_projects=True, project_id=tenant.id):
        image = admin.image.get_image(server.image.id)
        found.append(
            Server(
                id=server.id,
                name=server.name,
                flavor=server.flavor.original_name,
                key=server.key_name,
                networks=sorted(server.addresses),
                security_groups=sorted({g["name"] for g in server.security_groups or []}),
                metadata=dict(server.metadata or {}),
                group=group_of.get(server.id),
                disk_format=image.disk_format,
                container_format=image.container_format,
            )
        )
    return sorted(found, key=lambda s: s.name)


# -- the competitor's script --------------------------------------------------------------
def script(servers: list[Server], a: str, b: str, files: Path) -> str:
    """The bash script moving ``servers`` from cloud entry ``a`` to ``b``, one after
    another; every value written into it is quoted (:func:`shlex.quote`), and what the
    clouds answer (image ids) is used only inside double quotes. (``--wait`` writes its
    progress to standard output before the id: the id is the last line.)"""
    q = shlex.quote
    lines = [
        "#!/usr/bin/env bash",
        "# Move a tenant's servers to another cloud with the openstack CLI, one by one:",
        "# snapshot, download, upload, boot the copy, stop the original.",
        "set -euo pipefail",
    ]
    for s in servers:
        image = files / f"{s.name}.img"
        boot = ["--flavor", s.flavor]
        boot += ["--key-name", s.key] if s.key else []
        for network in s.networks:
            boot += ["--network", network]
        for group in s.security_groups:
            boot += ["--security-group", group]
        for key, value in sorted(s.metadata.items()):
            boot += ["--property", f"{key}={value}"]
        boot += ["--hint", f"group={s.group}"] if s.group else []
        lines += [
            f"echo {q('moving ' + s.name)} >&2",
            f"img=$(openstack --os-cloud {q(a)} server image create --wait -f value -c id"
            f" --name {q('move-' + s.name)} {q(s.id)} | tail -n 1)",
            f'openstack --os-cloud {q(a)} image save --file {q(str(image))} "$img"',
            f"new=$(openstack --os-cloud {q(b)} image create -f value -c id"
            f" --disk-format {q(s.disk_format)} --container-format {q(s.container_format)}"
            f" --file {q(str(image))} {q('move-' + s.name)})",
            f"openstack --os-cloud {q(b)} server create --wait -f value -c id"
            f' {" ".join(q(arg) for arg in boot)} --image "$new" {q(s.name)}',
            f"openstack --os-cloud {q(a)} server stop {q(s.id)}",
            f"rm -f {q(str(image))}",
        ]
    return "\n".join(lines) + "\n"


# -- measuring ----------------------------------------------------------------------------
def command(name: str, clouds: TwoClouds, tenant: Tenant, work: Path, servers: int) -> list[str]:
    """The contender's command; the script is written first, for the tenant's servers."""
    if name == "ephyra":
        return [*EPHYRA, "tenant", "migrate", tenant.name, "--from", "a", "--to", "b", "--yes"]
    found = servers_of(clouds, tenant, prepare_b(clouds, tenant))
    assert len(found) == servers, f"{tenant.name}: {len(found)} servers on a, not {servers}"
    a, b = (clouds.entry_name(cloud, tenant.name, "member") for cloud in ("a", "b"))
    path = work / "move.sh"
    path.write_text(script(found, a, b, work))
    return ["bash", str(path)]


def verify(clouds: TwoClouds, tenant: Tenant, servers: int) -> list[str]:
    """What is wrong after a move: servers not ACTIVE on b, originals not SHUTOFF on a."""
    on_a = statuses(connect(clouds, "a"), tenant.id)
    on_b = statuses(connect(clouds, "b"), tenant.id)
    problems = [f"{n} on b: {status}" for n, status in sorted(on_b.items()) if status != "ACTIVE"]
    problems += [f"{n} on a: {status}" for n, status in sorted(on_a.items()) if status != "SHUTOFF"]
    if sorted(on_b) != sorted(on_a) or len(on_a) != servers:
        problems.append(f"servers on a {sorted(on_a)}, on b {sorted(on_b)}")
    return problems


def stopped(clouds: TwoClouds, tenant: Tenant) -> bool:
    """Whether every server of ``tenant`` on a is SHUTOFF."""
    return set(statuses(connect(clouds, "a"), tenant.id).values()) == {"SHUTOFF"}


def brought(env: dict[str, str]) -> dict[str, int]:
    """The resources ephyra's last run made or reused on b, counted by kind (of KINDS)."""
    done = subprocess.run(
        [*EPHYRA, "tenant", "status", "-f", "json"], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        return {}
    resources = json.loads(done.stdout).get("resources") or []
    kept = [
        r["kind"] for r in resources if r["kind"] in KINDS and r["state"] in ("created", "reused")
    ]
    return dict(Counter(kept))


def measure(name: str, clouds: TwoClouds, tenant: Tenant, servers: int) -> Result:
    result = Result(name, tenant.name, servers)
    timeout = TIMEOUT_BASE + TIMEOUT_PER_SERVER * servers
    with tempfile.TemporaryDirectory(prefix=f"ephyra-bench-{name}-") as tmp:
        work = Path(tmp)
        argv = command(name, clouds, tenant, work, servers)
        env = {
            **os.environ,
            **clouds.env(),
            "XDG_STATE_HOME": str(work / "state"),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        print(f"{name}: moving {tenant.name} ({servers} servers) a -> b", file=sys.stderr)
        started = time.monotonic()
        try:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            result.problems.append(f"not done within {timeout:.0f} s")
            return result
        if done.returncode != 0:
            result.problems.append(f"exit {done.returncode}: {done.stderr.strip()[-800:]}")
            return result
        wait_until(lambda: stopped(clouds, tenant), timeout, f"{tenant.name} SHUTOFF on a")
        seconds = time.monotonic() - started
        if name == "ephyra":
            result.brought = brought(env)
    result.problems += verify(clouds, tenant, servers)
    result.seconds = seconds if not result.problems else None
    return result


def run(clouds: TwoClouds, servers: int, tag: str) -> dict[str, Result]:
    """Both contenders, each on a fresh tenant ``bench-TAG-CONTENDER`` of ``servers``
    servers, both made before any clock starts, one after the other (made at once, the
    first security group of a tenant's member was refused by the testbed's Neutron,
    403 "disallowed by policy", in both runs tried)."""
    names = {name: f"bench-{tag}-{name.split('-')[-1]}" for name in CONTENDERS}
    tenants = {name: make(clouds, project, servers) for name, project in names.items()}
    return {name: measure(name, clouds, tenant, servers) for name, tenant in tenants.items()}


def beyond(counts: dict[str, int]) -> str:
    """What ephyra's run brought to b besides the servers, as a note."""
    others = ", ".join(f"{kind} {counts[kind]}" for kind in KINDS[:-1] if counts.get(kind))
    return (
        "ephyra beyond the script: froze the tenant on a (writers made readers) and "
        f"unfroze it on b, brought {others or 'nothing else'} (the script's flavor, key pairs, "
        "network, security group and server group were made on b before its clock), "
        "checked every image's bytes and every copy's name, flavor, key pair and metadata, "
        "and kept an a<->b mapping in its journal to resume or roll back"
    )


def report(results: dict[str, Result]) -> list[str]:
    cli, ours = results["openstack-cli"], results["ephyra"]
    servers = cli.servers
    lines = []
    if cli.seconds is not None and ours.seconds is not None:
        lines.append(
            f"bench/tenant.py ({servers} servers): openstack CLI script {cli.seconds:.1f} s, "
            f"ephyra {ours.seconds:.1f} s, ratio {cli.seconds / ours.seconds:.1f}x"
        )
        lines.append(beyond(ours.brought))
    for r in results.values():
        lines += [f"FAILED {r.name} ({r.project}): {p}" for p in r.problems]
    return lines


@contextmanager
def testbed(root: Path) -> Iterator[TwoClouds]:
    """A Keystone and the two clouds on it, in ``root`` (about 80 s, 2.2 GiB)."""
    with (
        start_keystone(root / "keystone") as keystone,
        TwoClouds(root / "clouds", keystone) as clouds,
    ):
        yield clouds


def main(argv: list[str] | None = None, clouds: TwoClouds | None = None) -> int:
    """Run the benchmark on ``clouds`` (started here when not given)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=4, help="servers of each tenant (4)")
    parser.add_argument("--tag", default=uuid.uuid4().hex[:6], help="in the projects' names")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.servers < 1:
        parser.error("--servers: at least 1")
    if not is_name(f"bench-{args.tag}-ephyra"):
        parser.error(f"--tag {shown(args.tag)}: letters, digits and ._:@- only")
    if clouds is not None:
        results = run(clouds, args.servers, args.tag)
    else:
        with (
            tempfile.TemporaryDirectory(prefix="ephyra-bench-tenant-") as root,
            testbed(Path(root)) as started,
        ):
            results = run(started, args.servers, args.tag)
    print("\n".join(report(results)), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results.values()], indent=2))
    return 1 if any(r.problems for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
