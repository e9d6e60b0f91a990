"""ARP on a bridge, over a raw socket, in a network namespace or this one.

``probe`` asks who has an address the way duplicate address detection does (RFC 5227:
a request from 0.0.0.0) and gives the MAC addresses that answer: two answers for a VIP
is the conflict that isolation prevents. ``announce`` sends gratuitous ARP for an
address a node has just taken, so the hosts on the network send to its MAC at once
instead of to the old owner's until their neighbour entries expire.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from ipaddress import IPv4Address
from typing import Any

from pyroute2 import netns as namespaces

from ephyra.errors import UsageError
from ephyra.netscheme.applier import netlink

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
REQUEST, REPLY = 1, 2


def _mac(ifname: str, netns: str | None, ipr: Any = None) -> bytes:
    if ipr is None:
        with netlink(netns) as opened:
            return _mac(ifname, netns, opened)
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise UsageError(f"no interface {ifname}" + (f" in {netns}" if netns else ""))
    address = ipr.get_links(found[0])[0].get("address")
    return bytes.fromhex(address.replace(":", ""))


def _socket(ifname: str, netns: str | None) -> socket.socket:
    proto = socket.htons(ETH_P_ARP)
    sock: socket.socket
    if netns:
        sock = namespaces.create_socket(netns, socket.AF_PACKET, socket.SOCK_RAW, proto, flags=0)
    else:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, proto)
    sock.bind((ifname, 0))
    return sock


def _frame(op: int, sha: bytes, spa: IPv4Address, tha: bytes, tpa: IPv4Address) -> bytes:
    eth = BROADCAST + sha + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op)
    return eth + arp + sha + spa.packed + tha + tpa.packed


class Announcement:
    """Gratuitous ARP for an address from an interface, made ready (socket open) so that
    sending it takes a netlink read and a few frames: a request and a reply, ``count``
    times. The MAC is read when sending: a bridge takes its ports' lowest MAC when one
    joins, so the MAC before a change may not be the MAC after it."""

    def __init__(self, ifname: str, address: str, netns: str | None = None, count: int = 2):
        self.ifname, self.ip, self.netns, self.count = ifname, IPv4Address(address), netns, count
        self.sock = _socket(ifname, netns)

    def send(self, ipr: Any = None) -> None:
        """Send it; ``ipr``: an open netlink handle of the namespace, to read the MAC with."""
        mac = _mac(self.ifname, self.netns, ipr)
        frames = [
            _frame(REQUEST, mac, self.ip, ZERO_MAC, self.ip),
            _frame(REPLY, mac, self.ip, BROADCAST, self.ip),
        ]
        for _ in range(self.count):
            for frame in frames:
                self.sock.send(frame)

    def close(self) -> None:
        self.sock.close()


def probe(
    ifname: str, address: str, netns: str | None = None, timeout: float = 0.3, tries: int = 2
) -> set[str]:
    """The MAC addresses that answer for ``address`` on ``ifname``'s network."""
    ip, mac = IPv4Address(address), _mac(ifname, netns)
    answers: set[str] = set()
    with _socket(ifname, netns) as sock:
        for _ in range(tries):
            sock.send(_frame(REQUEST, mac, IPv4Address(0), ZERO_MAC, ip))
            end = time.monotonic() + timeout / tries
            while (left := end - time.monotonic()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                frame = sock.recv(128)
                if len(frame) < 42 or frame[12:14] != struct.pack("!H", ETH_P_ARP):
                    continue
                op = struct.unpack("!H", frame[20:22])[0]
                if op == REPLY and frame[28:32] == ip.packed and frame[32:38] == mac:
                    answers.add(frame[22:28].hex(":"))
    return answers
