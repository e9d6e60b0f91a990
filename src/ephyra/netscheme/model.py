"""An environment whose control plane is replaced on the same Virtual IPs: its networks,
VIPs and nodes, each node with the release it runs (``release_id``) and the one it is
to be reinstalled with (``pending_release_id``).

An environment is ``operational``, or under ``upgrade`` once ``ephyra env upgrade``
named a new release: from then on ``release_id`` is the new release, nodes still on an
older one are the old control plane, and nodes with a ``pending_release_id`` are being
reinstalled. A node is ``ready``, or ``detached`` once a cutover took its VIP networks'
ports away.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ephyra.errors import UsageError

#: A Linux interface name: at most 15 characters, no slash or space.
IFNAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$"
IfName = Annotated[str, Field(pattern=IFNAME)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
Provider = Literal["lnx", "ovs"]
EnvStatus = Literal["operational", "upgrade"]
NodeStatus = Literal["ready", "detached"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Bond(Model):
    name: IfName
    interfaces: list[IfName] = Field(min_length=1)
    mode: str = "active-backup"


class Network(Model):
    name: Name = Field(description="management, public, storage, fw-admin, ...")
    bridge: IfName = Field(description="the logical bridge, e.g. br-mgmt")
    cidr: IPv4Network
    interface: IfName = Field(description="the physical interface (or bond) that carries it")
    vlan: int | None = Field(None, ge=1, le=4094)
    gateway: IPv4Address | None = None

    @property
    def port(self) -> str:
        """What joins the bridge to the physical network: the interface, or its VLAN."""
        return f"{self.interface}.{self.vlan}" if self.vlan else self.interface


class Vip(Model):
    name: Name
    network: Name
    address: IPv4Address
    node_roles: list[Name] = Field(default_factory=lambda: ["primary-controller", "controller"])


class Node(Model):
    id: int = Field(ge=1)
    name: Name
    roles: list[Name] = Field(min_length=1)
    status: NodeStatus = "ready"
    release_id: int = Field(ge=1)
    pending_release_id: int | None = Field(None, ge=1)
    addresses: dict[Name, IPv4Address] = Field(
        default_factory=dict, description="network name -> this node's address on it"
    )
    netns: Name | None = Field(
        None,
        description="the network namespace on this machine where `ephyra env apply` and "
        "`cutover` carry out this node's scheme (none: apply it on the node itself)",
    )

    @property
    def target_release(self) -> int:
        """The release the node runs, or the one it is being reinstalled with."""
        return self.pending_release_id or self.release_id


def _node_addresses(node: Any, cidrs: dict[Any, str]) -> Any:
    """``node`` with each ``ADDRESS/PREFIX`` of its network's prefix as ``ADDRESS``."""
    if not isinstance(node, dict) or not isinstance(node.get("addresses"), dict):
        return node
    addresses: dict[Any, Any] = {}
    for network, value in node["addresses"].items():
        if value is None:
            raise ValueError(
                f"node {node.get('name')}: addresses: {network!r} has no address "
                "(a mapping of network name -> the node's address on it)"
            )
        if isinstance(value, str) and "/" in value:
            try:
                written = IPv4Interface(value)
            except ValueError as exc:
                raise ValueError(f"node {node.get('name')}: {value}: {exc}") from exc
            if network in cidrs and str(written.network) != cidrs[network]:
                raise ValueError(
                    f"node {node.get('name')}: {value} is not in network {network} "
                    f"({cidrs[network]})"
                )
            value = str(written.ip)
        addresses[network] = value
    return {**node, "addresses": addresses}


class Environment(Model):
    id: int = Field(ge=1)
    name: Name
    status: EnvStatus = "operational"
    release_id: int = Field(ge=1)
    provider: Provider = "lnx"
    networks: list[Network] = Field(min_length=1)
    bonds: list[Bond] = Field(default_factory=list)
    vips: list[Vip] = Field(default_factory=list)
    nodes: list[Node] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _addresses_as_written(cls, data: Any) -> Any:
        """A node's address may be written with its network's prefix, as network schemes
        write it (``management: 192.168.0.11/24``): the same address. Another prefix is
        refused, and so is a network named without an address (``{...}``, ``{public: }``)."""
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
            return data
        networks = data.get("networks")
        cidrs = {  # only well-formed networks: the rest is for the fields' checks to refuse
            n["name"]: str(n.get("cidr"))
            for n in (networks if isinstance(networks, list) else [])
            if isinstance(n, dict) and isinstance(n.get("name"), str)
        }
        nodes = [_node_addresses(node, cidrs) for node in data["nodes"]]
        return {**data, "nodes": nodes}

    @model_validator(mode="after")
    def _consistent(self) -> Environment:
        nets = {n.name: n for n in self.networks}
        _unique("network", [n.name for n in self.networks], "name")
        _unique("bridge", [n.bridge for n in self.networks], "bridge")
        _unique("node", [str(n.id) for n in self.nodes], "id")
        _unique("node", [n.name for n in self.nodes], "name")
        taken: dict[tuple[str, IPv4Address], str] = {}
        for vip in self.vips:
            net = nets.get(vip.network)
            if net is None:
                raise ValueError(f"VIP {vip.name}: no network {vip.network}")
            if vip.address not in net.cidr:
                raise ValueError(f"VIP {vip.name}: {vip.address} is not in {net.cidr}")
            taken[(vip.network, vip.address)] = f"VIP {vip.name}"
        for node in self.nodes:
            for name, address in node.addresses.items():
                net = nets.get(name)
                if net is None:
                    raise ValueError(f"node {node.name}: no network {name}")
                if address not in net.cidr:
                    raise ValueError(f"node {node.name}: {address} is not in {net.cidr}")
                other = taken.setdefault((name, address), f"node {node.name}")
                if other != f"node {node.name}":
                    raise ValueError(f"node {node.name}: {address} is also {other}'s")
        return self

    @classmethod
    def parse(cls, data: object) -> Environment:
        """An environment from a document; what is wrong is a usage error."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            parts = [
                f"{'.'.join(str(p) for p in e['loc']) or 'environment'}: {e['msg']}"
                for e in exc.errors()
            ]
            raise UsageError("; ".join(parts)) from exc

    def network(self, name: str) -> Network:
        return next(n for n in self.networks if n.name == name)

    def node(self, ref: str) -> Node:
        """A node by name or id."""
        for node in self.nodes:
            if ref in (node.name, str(node.id)):
                return node
        raise UsageError(f"environment {self.name} has no node {ref}")

    def interface(self, name: str) -> Bond | None:
        return next((b for b in self.bonds if b.name == name), None)

    def vip_networks(self) -> set[str]:
        """The networks that carry a VIP: the ones a parallel control plane must not join."""
        return {v.network for v in self.vips}

    def holds_vips(self, node: Node) -> bool:
        """Whether the node runs a role that brings up VIPs."""
        return any(set(v.node_roles) & set(node.roles) for v in self.vips)


def _unique(what: str, values: list[str], field: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"two {what}s with {field} {value}")
        seen.add(value)


def interface_address(env: Environment, node: Node, network: str) -> IPv4Interface | None:
    """The node's address on a network, with the network's prefix."""
    address = node.addresses.get(network)
    if address is None:
        return None
    return IPv4Interface(f"{address}/{env.network(network).cidr.prefixlen}")
