"""Carry out a network scheme on Linux, over netlink (pyroute2): bridges, VLAN
sub-interfaces, bonds, veth patches between bridges, ports joined to or taken off
bridges (``del-port``), and the endpoints' addresses.

The applier compares the scheme with what the host has and changes only the
difference, so applying a scheme twice changes nothing the second time, and a run cut
short is finished by running it again. ``plan`` lists the changes without making them
(the dry run). It drives Linux bridges (provider ``lnx``); a scheme of Open vSwitch
bridges is refused before anything changes.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ephyra.errors import StepFailed, UsageError

IFF_UP = 0x1


@dataclass(frozen=True)
class Change:
    op: str  # bridge, vlan, bond, enslave, veth, attach, detach, delete, up, down, address, route
    name: str
    arg: str = ""
    extra: tuple[str, ...] = ()

    def __str__(self) -> str:
        texts = {
            "bridge": f"create bridge {self.name}",
            "vlan": f"create VLAN {self.name} on {self.arg}",
            "bond": f"create bond {self.name} ({self.arg})",
            "enslave": f"put {self.name} in bond {self.arg}",
            "veth": f"create patch {self.name} <-> {self.arg}",
            "attach": f"attach {self.name} to {self.arg}",
            "detach": f"detach {self.name} from {self.arg}",
            "delete": f"delete {self.name}",
            "up": f"set {self.name} up",
            "down": f"set {self.name} down",
            "address": f"add {self.arg} to {self.name}",
            "route": f"default route via {self.arg} on {self.name}",
        }
        return texts[self.op]


@dataclass
class Link:
    kind: str
    master: str | None = None
    up: bool = False
    addresses: set[str] = field(default_factory=set)


def patch_names(bridges: list[str]) -> tuple[str, str]:
    """The veth pair that patches two Linux bridges together (15 characters at most)."""
    tag = f"p_{zlib.crc32('|'.join(bridges).encode()):08x}"
    return f"{tag}a", f"{tag}b"


@contextmanager
def netlink(netns: str | None) -> Iterator[IPRoute]:
    """Netlink in a network namespace (none: this one); a missing one is not created."""
    try:
        ipr = IPRoute(netns=netns, flags=0) if netns else IPRoute()
    except FileNotFoundError as exc:
        raise UsageError(f"no network namespace {netns}") from exc
    try:
        yield ipr
    finally:
        ipr.close()


def carrying(ipr: IPRoute, name: str) -> bool:
    """Whether a link carries frames now: up, with carrier. For a Linux bridge that
    means one of its ports forwards; a port that was just set up does so only once the
    kernel has seen its carrier (a moment later, on its link-watch queue), and until
    then what the bridge sends goes nowhere."""
    found = ipr.link_lookup(ifname=name)
    if not found:
        return False
    link = ipr.get_links(found[0])[0]
    return bool(link["flags"] & IFF_UP) and link.get("operstate") == "UP"


def wait_carrying(ipr: IPRoute, name: str, timeout: float = 2.0) -> bool:
    """Wait (polling netlink every millisecond) until ``name`` carries frames; whether
    it does within ``timeout``."""
    end = time.monotonic() + timeout
    while not carrying(ipr, name):
        if time.monotonic() >= end:
            return False
        time.sleep(0.001)
    return True


@dataclass
class Host:
    links: dict[str, Link]
    gateway: str | None = None


def read(ipr: IPRoute) -> Host:
    """The host's links (kind, bridge or bond, state and addresses) and default gateway."""
    names: dict[int, str] = {}
    raw: list[Any] = list(ipr.get_links())
    for msg in raw:
        names[msg["index"]] = msg.get("ifname")
    links: dict[str, Link] = {}
    for msg in raw:
        master = msg.get("master")
        links[msg.get("ifname")] = Link(
            kind=msg.get(("linkinfo", "kind")) or "",
            master=names.get(master) if master else None,
            up=bool(msg["flags"] & IFF_UP),
        )
    for msg in ipr.get_addr(family=2):
        name = names.get(msg["index"])
        if name in links:
            links[name].addresses.add(f"{msg.get('address')}/{msg['prefixlen']}")
    gateway = next(
        (r.get("gateway") for r in ipr.get_default_routes(family=2) if r.get("gateway")), None
    )
    return Host(links, gateway)


def plan(scheme: dict[str, Any], host: Host) -> list[Change]:
    """The changes that bring ``host`` to ``scheme``, in order (``host`` is updated as
    if they were made)."""
    links = host.links
    ovs = [a for a in scheme.get("transformations", []) if a.get("provider") == "ovs"]
    if scheme.get("provider") == "ovs" or ovs:
        raise UsageError(
            "this scheme's bridges are Open vSwitch (provider ovs); the applier drives "
            "Linux bridges (provider lnx)"
        )
    changes: list[Change] = []

    def make(change: Change) -> None:
        changes.append(change)

    def up(name: str) -> None:
        if not links[name].up:
            links[name].up = True
            make(Change("up", name))

    def need(name: str, what: str) -> None:
        if name not in links:
            raise UsageError(f"{what}: no interface {name} on this host")

    def port(name: str, bridge: str) -> None:
        if name not in links and "." in name:
            parent, _, vlan = name.rpartition(".")
            need(parent, f"VLAN {name}")
            links[name] = Link("vlan")
            make(Change("vlan", name, parent, (vlan,)))
            up(parent)
        need(name, f"port of {bridge}")
        need(bridge, f"bridge of {name}")
        if links[name].master != bridge:
            if links[name].master:
                make(Change("detach", name, links[name].master or ""))
            links[name].master = bridge
            make(Change("attach", name, bridge))
        up(name)

    for action in scheme.get("transformations", []):
        kind = action.get("action")
        if kind == "add-br":
            name = action["name"]
            if name not in links:
                links[name] = Link("bridge")
                make(Change("bridge", name))
            elif links[name].kind != "bridge":
                raise UsageError(f"{name} exists and is not a bridge ({links[name].kind})")
            up(name)
        elif kind == "add-port":
            port(action["name"], action["bridge"])
        elif kind == "add-bond":
            name = action["name"]
            if name not in links:
                mode = action.get("bond_properties", {}).get("mode", "active-backup")
                links[name] = Link("bond")
                make(Change("bond", name, mode))
            for member in action["interfaces"]:
                need(member, f"member of {name}")
                if links[member].master != name:
                    links[member].master = name
                    make(Change("enslave", member, name))
            up(name)
            if action.get("bridge"):
                port(name, action["bridge"])
        elif kind == "add-patch":
            first, second = patch_names(action["bridges"])
            if first not in links:
                links[first], links[second] = Link("veth"), Link("veth")
                make(Change("veth", first, second))
            port(first, action["bridges"][0])
            port(second, action["bridges"][1])
        elif kind == "del-port":
            if "bridges" in action:
                first, _ = patch_names(action["bridges"])
                if first in links:
                    del links[first]
                    make(Change("delete", first))
            else:  # off the bridge, and down: a host answers ARP on any up interface
                name, bridge = action["name"], action["bridge"]
                if name in links and links[name].master == bridge:
                    links[name].master = None
                    make(Change("detach", name, bridge))
                carries_vlans = any(other.startswith(f"{name}.") for other in links)
                if (
                    name in links
                    and links[name].up
                    and not links[name].master
                    and not carries_vlans
                ):
                    links[name].up = False
                    make(Change("down", name))
        else:
            raise UsageError(f"unknown transformation {kind!r}")
    for bridge, endpoint in scheme.get("endpoints", {}).items():
        ips = endpoint.get("IP")
        if not isinstance(ips, list):
            continue
        need(bridge, "endpoint")
        for address in ips:
            cidr = str(IPv4Interface(address))
            if cidr not in links[bridge].addresses:
                links[bridge].addresses.add(cidr)
                make(Change("address", bridge, cidr))
        gateway = endpoint.get("gateway")
        if gateway and str(gateway) != host.gateway:
            host.gateway = str(gateway)
            make(Change("route", bridge, str(gateway)))
    return changes


def execute(ipr: IPRoute, change: Change) -> None:
    """Make one change; netlink's refusal is a failed step naming it."""
    try:
        _execute(ipr, change)
    except NetlinkError as exc:
        raise StepFailed(f"{change}: {exc}") from exc


def _execute(ipr: IPRoute, change: Change) -> None:
    def index(name: str) -> int:
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise StepFailed(f"{change}: {name} is gone")
        return int(found[0])

    op, name, arg = change.op, change.name, change.arg
    if op == "bridge":
        ipr.link("add", ifname=name, kind="bridge")
    elif op == "vlan":
        ipr.link("add", ifname=name, kind="vlan", link=index(arg), vlan_id=int(change.extra[0]))
    elif op == "bond":
        ipr.link("add", ifname=name, kind="bond", bond_mode=arg)
    elif op == "enslave":
        ipr.link("set", index=index(name), state="down")
        ipr.link("set", index=index(name), master=index(arg))
    elif op == "veth":
        ipr.link("add", ifname=name, kind="veth", peer=arg)
    elif op == "attach":
        ipr.link("set", index=index(name), master=index(arg))
    elif op == "detach":
        ipr.link("set", index=index(name), master=0)
    elif op == "delete":
        ipr.link("del", index=index(name))
    elif op == "up":
        ipr.link("set", index=index(name), state="up")
    elif op == "down":
        ipr.link("set", index=index(name), state="down")
    elif op == "address":
        cidr = IPv4Interface(arg)
        ipr.addr("add", index=index(name), address=str(cidr.ip), prefixlen=cidr.network.prefixlen)
    elif op == "route":
        ipr.route("replace", dst="0.0.0.0/0", gateway=arg, oif=index(name))


def apply(scheme: dict[str, Any], netns: str | None = None, dry_run: bool = False) -> list[Change]:
    """Bring the host (or the namespace) to the scheme; the changes made (or, dry, to make)."""
    with netlink(netns) as ipr:
        changes = plan(scheme, read(ipr))
        if dry_run:
            return changes
        for change in changes:
            execute(ipr, change)
    return changes
