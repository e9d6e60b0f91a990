"""Deployment information of a node, in three modes.

``default``
    every node's facts, and the network scheme as usual: each network's bridge joined to
    its physical interface (``add-port`` on Linux bridges, ``add-patch`` on Open vSwitch).
``isolated``
    for a VIP-holding node reinstalled with the new release while the old control plane
    still holds the VIPs: no port or patch joins a VIP network's bridge to the physical
    network (``del-port`` instead makes sure none does, and takes a physical port down:
    Linux answers ARP for a local address on any interface that is up), so the same VIPs
    can be up on both planes without a conflict; and only the
    facts of nodes of the new release, so it forms its own clusters (corosync, galera,
    rabbitmq) instead of joining the old ones.
``cutover``
    for the old control plane's nodes once a new VIP-holding node is ready: the ports or
    patches of the VIP networks become ``del-port`` actions, taking those nodes off the
    networks the new plane then joins.

:func:`detect_mode` picks the mode from the environment alone (its status, the nodes'
releases and states); every other node is serialized as usual.
"""

from __future__ import annotations

from typing import Any, Literal

from ephyra.errors import UsageError
from ephyra.netscheme.model import Environment, Network, Node, interface_address

Mode = Literal["default", "isolated", "cutover"]
MODES: tuple[Mode, ...] = ("default", "isolated", "cutover")
SCHEME_VERSION = "1.1"


def old_plane(env: Environment) -> list[Node]:
    """VIP-holding nodes of an older release still joined to the VIP networks."""
    return [
        n
        for n in env.nodes
        if env.holds_vips(n) and n.target_release != env.release_id and n.status != "detached"
    ]


def new_plane(env: Environment) -> list[Node]:
    """VIP-holding nodes installed with the environment's release and ready."""
    return [
        n
        for n in env.nodes
        if env.holds_vips(n) and n.release_id == env.release_id and n.pending_release_id is None
    ]


def detect_mode(env: Environment, node: Node) -> tuple[Mode, str]:
    """The mode a node's deployment needs, and why."""
    if env.status != "upgrade":
        return "default", f"environment {env.name} is {env.status}"
    if not env.holds_vips(node):
        return "default", f"{node.name} holds no VIP"
    old = old_plane(env)
    if node.target_release == env.release_id:
        if old:
            names = ", ".join(n.name for n in old)
            nets = ", ".join(sorted(env.vip_networks()))
            return "isolated", f"the VIPs of {nets} are held by {names}, of an older release"
        return "default", "no node of an older release holds the VIPs any more"
    if node.status == "detached":
        return "cutover", f"{node.name} was cut over; it stays off the VIP networks"
    new = new_plane(env)
    if new:
        names = ", ".join(n.name for n in new)
        return "cutover", f"release {env.release_id} is ready to take the VIPs on {names}"
    return "default", f"no node of release {env.release_id} is ready yet"


def deployment_info(env: Environment, ref: str, mode: Mode | None = None) -> dict[str, Any]:
    """What a node's deployment gets: its facts, the facts of the nodes it may know,
    the VIPs and its network scheme."""
    node = env.node(ref)
    reason = "asked for"
    if mode is None:
        mode, reason = detect_mode(env, node)
    elif mode not in MODES:
        raise UsageError(f"no mode {mode}: one of {', '.join(MODES)}")
    if mode == "isolated":
        known = [n for n in env.nodes if n.target_release == env.release_id]
    else:
        known = list(env.nodes)
    return {
        "uid": str(node.id),
        "fqdn": node.name,
        "roles": list(node.roles),
        "release_id": node.target_release,
        "deployment_mode": mode,
        "deployment_mode_reason": reason,
        "cluster": {
            "id": env.id,
            "name": env.name,
            "status": env.status,
            "release_id": env.release_id,
        },
        "network_metadata": {
            "nodes": {n.name: _facts(env, n) for n in known},
            "vips": {
                v.name: {
                    "network_role": v.network,
                    "ipaddr": str(v.address),
                    "node_roles": list(v.node_roles),
                }
                for v in env.vips
            },
        },
        "network_scheme": network_scheme(env, node, mode),
    }


def _facts(env: Environment, node: Node) -> dict[str, Any]:
    return {
        "uid": str(node.id),
        "fqdn": node.name,
        "node_roles": list(node.roles),
        "release_id": node.target_release,
        "network_roles": {
            name: str(address)
            for name in sorted(node.addresses)
            if (address := interface_address(env, node, name)) is not None
        },
    }


def network_scheme(env: Environment, node: Node, mode: Mode) -> dict[str, Any]:
    """The node's network scheme: interfaces, transformations, roles and endpoints."""
    vip_bridges = {env.network(name).bridge for name in env.vip_networks()}
    transformations: list[dict[str, Any]] = []
    interfaces: dict[str, dict[str, Any]] = {}
    made: set[str] = set()
    detach = mode in ("isolated", "cutover")
    for net in env.networks:
        for action in _join(env, net, made):
            joins_bridge = action["action"] in ("add-port", "add-patch") and (
                action.get("bridge") == net.bridge or net.bridge in action.get("bridges", [])
            )
            if detach and joins_bridge and net.bridge in vip_bridges:
                action = _undo(action)
            transformations.append(action)
        for physical in _physical(env, net.interface):
            interfaces.setdefault(physical, {})
    endpoints: dict[str, dict[str, Any]] = {}
    for net in env.networks:
        address = interface_address(env, node, net.name)
        endpoint: dict[str, Any] = {"IP": [str(address)] if address else "none"}
        if net.gateway and address:
            endpoint["gateway"] = str(net.gateway)
        endpoints[net.bridge] = endpoint
    return {
        "version": SCHEME_VERSION,
        "provider": env.provider,
        "interfaces": interfaces,
        "transformations": transformations,
        "roles": {net.name: net.bridge for net in env.networks},
        "endpoints": endpoints,
    }


def _physical(env: Environment, interface: str) -> list[str]:
    bond = env.interface(interface)
    return list(bond.interfaces) if bond else [interface]


def _join(env: Environment, net: Network, made: set[str]) -> list[dict[str, Any]]:
    """The actions that make a network's bridge and join it to its physical interface."""
    provider = env.provider
    actions: list[dict[str, Any]] = [{"action": "add-br", "name": net.bridge, "provider": provider}]
    bond = env.interface(net.interface)
    if provider == "lnx":
        if bond and bond.name not in made:
            made.add(bond.name)
            actions.append(_bond(bond.name, bond.interfaces, bond.mode, None, provider))
        actions.append(
            {"action": "add-port", "name": net.port, "bridge": net.bridge, "provider": provider}
        )
        return actions
    physical = f"br-{net.interface}"[:15]
    if physical not in made:
        made.add(physical)
        actions.append({"action": "add-br", "name": physical, "provider": provider})
        if bond:
            actions.append(_bond(bond.name, bond.interfaces, bond.mode, physical, provider))
        else:
            actions.append(
                {
                    "action": "add-port",
                    "name": net.interface,
                    "bridge": physical,
                    "provider": provider,
                }
            )
    patch: dict[str, Any] = {
        "action": "add-patch",
        "bridges": [net.bridge, physical],
        "provider": provider,
    }
    if net.vlan:
        patch["vlan_ids"] = [0, net.vlan]
    actions.append(patch)
    return actions


def _bond(
    name: str, interfaces: list[str], mode: str, bridge: str | None, provider: str
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "action": "add-bond",
        "name": name,
        "interfaces": list(interfaces),
        "bond_properties": {"mode": mode},
        "provider": provider,
    }
    if bridge:
        action["bridge"] = bridge
    return action


def _undo(action: dict[str, Any]) -> dict[str, Any]:
    """The ``del-port`` that takes away what an ``add-port`` or ``add-patch`` joined."""
    if action["action"] == "add-patch":
        return {
            "action": "del-port",
            "bridges": list(action["bridges"]),
            "provider": action["provider"],
        }
    return {
        "action": "del-port",
        "name": action["name"],
        "bridge": action["bridge"],
        "provider": action["provider"],
    }
