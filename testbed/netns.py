"""Hosts in network namespaces on one shared switch, made with iproute2, for the parallel
control plane tests: every address lives inside a namespace, none in the machine's own.

A host ``H`` is the namespace ``<prefix>H`` with one "physical" interface ``eth1``,
a veth whose other end is a port of the bridge ``sw`` in the switch namespace
``<prefix>sw``. Controllers get their bridges, ports and addresses from Ephyra's
applier; a client gets an address on ``eth1`` directly.

Run as root (``ip netns`` needs it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

VIP = "192.168.0.2"


def environment(
    ident: int, name: str, nodes: Sequence[tuple[str, str, int, str | None]]
) -> dict[str, Any]:
    """An environment of one management network (br-mgmt on eth1, 192.168.0.0/24) with
    its VIP; ``nodes``: (name, role, last octet of its address, netns)."""
    return {
        "id": ident,
        "name": name,
        "release_id": 1,
        "networks": [
            {
                "name": "management",
                "bridge": "br-mgmt",
                "cidr": "192.168.0.0/24",
                "interface": "eth1",
            }
        ],
        "vips": [{"name": "management", "network": "management", "address": VIP}],
        "nodes": [
            {
                "id": i,
                "name": node,
                "roles": [role],
                "release_id": 1,
                "addresses": {"management": f"192.168.0.{octet}"},
                "netns": netns,
            }
            for i, (node, role, octet, netns) in enumerate(nodes, 1)
        ],
    }


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done.stdout


def links(netns: str) -> dict[str, dict[str, Any]]:
    """``ip -j link`` of a namespace, by name (as iproute2 sees it, not pyroute2)."""
    return {link["ifname"]: link for link in json.loads(ip("-j", "link", "show", netns=netns))}


def addresses(netns: str, ifname: str) -> list[str]:
    found = json.loads(ip("-j", "addr", "show", "dev", ifname, netns=netns))
    return [
        f"{a['local']}/{a['prefixlen']}" for a in found[0]["addr_info"] if a["family"] == "inet"
    ]


def mac(netns: str, ifname: str) -> str:
    return str(links(netns)[ifname]["address"])


@dataclass
class Topology:
    prefix: str
    hosts: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"{self.prefix}sw"

    def ns(self, host: str) -> str:
        return f"{self.prefix}{host}"

    def __enter__(self) -> Topology:
        self.close()
        ip("netns", "add", self.switch)
        ip("link", "add", "sw", "type", "bridge", netns=self.switch)
        ip("link", "set", "sw", "up", netns=self.switch)
        ip("link", "set", "lo", "up", netns=self.switch)
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def add(self, host: str, address: str | None = None) -> str:
        """A host on the switch; with ``address`` (CIDR) on its eth1."""
        ns = self.ns(host)
        ip("netns", "add", ns)
        ip("link", "set", "lo", "up", netns=ns)
        ip(
            "link",
            "add",
            "eth1",
            "netns",
            ns,
            "type",
            "veth",
            "peer",
            "name",
            host,
            "netns",
            self.switch,
        )
        ip("link", "set", host, "master", "sw", netns=self.switch)
        ip("link", "set", host, "up", netns=self.switch)
        ip("link", "set", "eth1", "up", netns=ns)
        if address:
            ip("addr", "add", address, "dev", "eth1", netns=ns)
        self.hosts.append(host)
        return ns

    def run(self, host: str, *argv: str) -> subprocess.Popen[bytes]:
        """A process in a host's namespace, ended with the topology."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(host), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def echo(self, host: str) -> subprocess.Popen[bytes]:
        """The VIP service on a controller: answers every datagram with the host's name."""
        return self.run(host, sys.executable, "-m", "testbed.vipecho", "serve", host)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        listed = ip("netns", "list", check=False)
        for line in listed.splitlines():
            name = line.split()[0] if line.strip() else ""
            if name.startswith(self.prefix):
                ip("netns", "del", name, check=False)
        self.hosts.clear()


def wait_for(predicate: Any, timeout: float = 5.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or predicate}")
