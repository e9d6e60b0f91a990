"""The cutover: the old control plane leaves the VIP networks and the new one joins them.

1. Plan every node's changes first (a dry run); anything wrong stops it here, before
   any change.
2. Take the old plane's VIP-network ports away (its ``cutover`` scheme: ``del-port``).
3. Join the new plane to them (its usual scheme) and announce the VIPs it holds
   (gratuitous ARP) as soon as its bridges carry frames, so the network sends to it at
   once; announce again a moment later.
4. Record the old nodes as ``detached``; check that the new plane's VIP bridges carry
   frames and that nobody else answers for the VIPs, or fail naming the node.

Old ports go before new ones join, so the two planes never share a VIP network: the
VIPs are unreachable for the moment between 2 and 3, which is what ``window`` measures.
Each step compares with the host first, so a cutover cut short (a crash, a kill) is
finished by running it again; ``rollback`` is the same in reverse (the new plane leaves,
the old one joins back and announces).

Nodes are reached where their ``netns`` says: a network namespace on this machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from typing import Any

from ephyra.engine.locks import holding
from ephyra.errors import IllegalTransition, StepFailed, UsageError
from ephyra.netscheme import applier, arp
from ephyra.netscheme.lifecycle import node_status
from ephyra.netscheme.model import Environment, Node
from ephyra.netscheme.serializers import Mode, network_scheme, new_plane
from ephyra.netscheme.store import Environments

#: After the window, the announcements are sent again this many seconds apart: a switch
#: port forwards a moment after the link behind it comes up, and a lost one costs seconds
REPEATS = (0.05, 0.2)
#: How long the check waits for a joining bridge to carry frames
CARRIER_WAIT = 2.0


@dataclass
class Report:
    environment: str
    direction: str
    leaving: list[str]
    joining: list[str]
    changes: dict[str, list[str]] = field(default_factory=dict)
    announced: list[str] = field(default_factory=list)
    window_ms: float | None = None
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _old(env: Environment) -> list[Node]:
    return [n for n in env.nodes if env.holds_vips(n) and n.target_release != env.release_id]


def _target(node: Node) -> str:
    if not node.netns:
        raise UsageError(
            f"{node.name} has no netns: apply its scheme on the node "
            f"(`ephyra env deployment-info` there, then `ephyra env apply`)"
        )
    return node.netns


def vips_on(env: Environment, host: applier.Host) -> list[tuple[str, str]]:
    """The (bridge, VIP) pairs a host holds now."""
    held: list[tuple[str, str]] = []
    for vip in env.vips:
        bridge = env.network(vip.network).bridge
        addresses = host.links[bridge].addresses if bridge in host.links else set()
        if any(a.split("/")[0] == str(vip.address) for a in addresses):
            held.append((bridge, str(vip.address)))
    return held


def cutover(
    envs: Environments,
    ref: str,
    rollback: bool = False,
    dry_run: bool = False,
    lock_url: str | None = None,
    say: Callable[[str], None] = print,
) -> Report:
    env = envs.get(ref)
    if env.status != "upgrade":
        raise IllegalTransition(
            f"environment {env.name} is {env.status}: a cutover belongs to an upgrade"
        )
    old, new = _old(env), new_plane(env)
    if not old:
        raise IllegalTransition(f"environment {env.name} has no node of an older release")
    if not new:
        raise IllegalTransition(
            f"no VIP-holding node of release {env.release_id} is installed: install one "
            "first (`ephyra env installed`)"
        )
    leaving, joining = (new, old) if rollback else (old, new)
    report = Report(
        env.name,
        "rollback" if rollback else "cutover",
        [n.name for n in leaving],
        [n.name for n in joining],
        dry_run=dry_run,
    )
    steps: list[tuple[Node, Mode]] = [(n, "cutover") for n in leaving]
    steps += [(n, "default") for n in joining]
    with ExitStack() as stack:
        if not dry_run:
            stack.enter_context(
                holding([f"environment {env.name}"], lock_url, lambda _: "another cutover runs")
            )
        # everything is read, planned and opened before the first change, so that the
        # moment the VIPs are unreachable holds netlink calls and nothing else
        handles = {n.name: stack.enter_context(applier.netlink(_target(n))) for n, _ in steps}
        hosts = {name: applier.read(ipr) for name, ipr in handles.items()}
        held = {n.name: vips_on(env, hosts[n.name]) for n in joining}
        plans = {
            n.name: applier.plan(network_scheme(env, n, mode), hosts[n.name]) for n, mode in steps
        }
        report.changes = {name: [str(c) for c in changes] for name, changes in plans.items()}
        if dry_run:
            return report
        announcements = [
            (stack.enter_context(closing(arp.Announcement(bridge, address, node.netns))), node)
            for node in joining
            for bridge, address in held[node.name]
        ]
        started = time.perf_counter()
        for node, _ in steps:
            for change in plans[node.name]:
                applier.execute(handles[node.name], change)
        for announcement, node in announcements:
            # sent before the bridge carries, an announcement is lost and the network
            # keeps sending to the plane that left until its neighbour entries expire
            applier.wait_carrying(handles[node.name], announcement.ifname)
            announcement.send(handles[node.name])
        report.window_ms = round((time.perf_counter() - started) * 1000, 2)
        for pause in REPEATS:  # for the switch ports beyond the node, which it cannot see
            time.sleep(pause)
            for announcement, node in announcements:
                announcement.send(handles[node.name])
    for name, texts in report.changes.items():
        for text in texts:
            say(f"{name}: {text}")
    report.announced = [f"{a} from {n} {b}" for n in held for b, a in held[n]]
    for line in report.announced:
        say(f"announced {line}")
    envs.change(env.name, node_status([n.name for n in old], "ready" if rollback else "detached"))
    _check(env, joining, f"ephyra env cutover {env.name}" + (" --rollback" if rollback else ""))
    return report


def _check(env: Environment, joining: list[Node], again: str) -> None:
    """The joining plane is on the VIP networks and nobody else answers for its VIPs:
    each bridge that holds a VIP carries frames, and an ARP probe for the VIP (as
    duplicate address detection sends it) has no answer from another host. ``again``:
    the command that finishes the move once the cause is fixed."""
    for node in joining:
        with applier.netlink(node.netns) as ipr:
            held = vips_on(env, applier.read(ipr))
            dark = [(b, a) for b, a in held if not applier.wait_carrying(ipr, b, CARRIER_WAIT)]
        if dark:
            bridge, address = dark[0]
            raise StepFailed(
                f"{node.name} is off the VIP network: it holds VIP {address} but its {bridge} "
                f"carries nothing (no port up with a carrier); once its link is up, run "
                f"`{again}` again"
            )
        for bridge, address in held:
            others = arp.probe(bridge, address, node.netns)
            if others:
                raise StepFailed(
                    f"VIP {address} is also answered by {', '.join(sorted(others))} "
                    f"besides {node.name}: a host still on that network holds it"
                )
