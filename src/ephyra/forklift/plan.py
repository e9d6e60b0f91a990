"""The forklift plan: which nodes move, in which batches, and what each move does.

Planning is a dry run: it reads both control planes and changes nothing. It
refuses, with every reason at once, nodes that cannot move safely.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.tree import Tree

from ephyra.clouds import INTERFACES, ControlPlane
from ephyra.errors import PlanRefused
from ephyra.forklift.model import MASK, MOVABLE_STATES, NodeSnapshot, instance_secrets
from ephyra.forklift.secrets import CredentialSource, NoCredentials, SourceCredentials
from ephyra.forklift.servers import ServerRecord, Servers
from ephyra.forklift.settings import Settings
from ephyra.forklift.steps import titles


@dataclass(frozen=True)
class PlannedNode:
    uuid: str
    name: str | None
    provision_state: str
    ports: tuple[str, ...]
    secrets: tuple[str, ...]
    server: ServerRecord | None = None

    @property
    def label(self) -> str:
        return self.name or self.uuid


@dataclass(frozen=True)
class ForkliftPlan:
    source: str
    target: str
    settings: Settings
    credentials: str
    nodes: tuple[PlannedNode, ...]
    planes: tuple[ControlPlane, ControlPlane] = field(compare=False, repr=False)

    @property
    def batches(self) -> list[list[PlannedNode]]:
        size = self.settings.batch
        return [list(self.nodes[i : i + size]) for i in range(0, len(self.nodes), size)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.target,
            "concurrency": self.settings.concurrency,
            "workload": self.settings.workload,
            "credentials": self.credentials,
            **({"nova": True} if self.settings.nova else {}),
            "steps": titles(self.settings.nova),
            "batches": [
                [
                    {
                        "uuid": n.uuid,
                        "name": n.name,
                        "provision_state": n.provision_state,
                        "ports": list(n.ports),
                        "secrets": list(n.secrets),
                        **(
                            {"server": n.server.to_dict() if n.server else None}
                            if self.settings.nova
                            else {}
                        ),
                    }
                    for n in batch
                ]
                for batch in self.batches
            ],
        }

    def tree(self) -> Tree:
        s = self.settings
        root = Tree(
            f"forklift {self.source} -> {self.target}: {len(self.nodes)} node(s) in "
            f"{len(self.batches)} batch(es), {s.concurrency} at once, workload {s.workload}, "
            f"secrets from {self.credentials}"
        )
        root.add("each node: " + " -> ".join(titles(s.nova)))
        root.add(f"stop when more than {s.max_failures} node(s) fail; a failed node is moved back")
        for number, batch in enumerate(self.batches, 1):
            gate = ", then application health gate" if number < len(self.batches) else ""
            branch = root.add(f"batch {number} ({len(batch)} node(s)){gate}")
            for node in batch:
                secrets = f", secrets: {', '.join(node.secrets)}" if node.secrets else ""
                server = ""
                if node.server is not None:
                    server = (
                        f", server {node.server.name} ({node.server.flavor}, "
                        f"{node.server.image_name or 'no image'}) booted again on it"
                    )
                branch.add(
                    f"{node.label} ({node.uuid}) {node.provision_state}, "
                    f"{len(node.ports)} port(s){secrets}{server}"
                )
        return root


def _select(nodes: list[Any], wanted: Sequence[str] | None, source: str) -> list[Any]:
    if not wanted:
        return sorted(nodes, key=lambda n: (n.name or "", n.id))
    by_key = {n.id: n for n in nodes} | {n.name: n for n in nodes if n.name}
    unknown = [w for w in wanted if w not in by_key]
    if unknown:
        raise PlanRefused(f"not enrolled in {source}: {', '.join(unknown)}")
    chosen = {by_key[w].id: by_key[w] for w in wanted}
    return list(chosen.values())


@dataclass(frozen=True)
class TargetRules:
    """What the target accepts of a node: its conductor groups, the hardware types and
    interface implementations it enables, and the project its login is scoped to (Ironic
    makes that project the owner of a node enrolled with none)."""

    name: str
    conductor_groups: frozenset[str] | None  # None: not readable with this login
    interfaces: dict[str, dict[str, set[str]]] | None
    project: str | None

    @classmethod
    def of(cls, target: ControlPlane) -> TargetRules:
        groups = target.conductor_groups()
        return cls(
            target.name,
            None if groups is None else frozenset(groups),
            target.enabled_interfaces(),
            getattr(target.connection, "current_project_id", None),
        )

    def problems(self, node: Any, label: str) -> list[str]:
        found = []
        group = str(getattr(node, "conductor_group", "") or "")
        if group and self.conductor_groups is None:
            found.append(
                f"{label}: its conductor group {group!r} cannot be checked: {self.name} lets "
                "only a system-scoped login list its conductors"
            )
        elif self.conductor_groups is not None and group not in self.conductor_groups:
            found.append(
                f"{label}: no conductor of group {group!r} in {self.name}: start one "
                "there, or move the node to a group it has"
            )
        if self.interfaces is not None:  # None: not readable, the enrollment will say
            found += self._drift(node, label, self.interfaces)
        if not getattr(node, "owner", None) and self.project:
            found.append(
                f"{label}: has no owner; {self.name} would make the forklift's project "
                f"({self.project}) its owner and hide it from other projects' views: give "
                f"it an owner first, or log in to {self.name} with a system scope"
            )
        return found

    def _drift(
        self, node: Any, label: str, interfaces: dict[str, dict[str, set[str]]]
    ) -> list[str]:
        enabled = interfaces.get(node.driver)
        if enabled is None:
            return [f"{label}: {self.name} does not enable hardware type {node.driver!r}"]
        return [
            f"{label}: {self.name} does not enable {interface} {value!r} for "
            f"{node.driver}: enable it there (enabled_{interface}s)"
            for interface in INTERFACES
            if (value := getattr(node, interface, None))
            and value not in enabled.get(interface, set())
        ]


def _problems(
    node: Any,
    ports: list[Any],
    target_nodes: list[Any],
    target_macs: dict[str, str],
    credentials: CredentialSource,
    source: str,
    target: str,
    server: ServerRecord | None = None,
    nova: bool = False,
    rules: TargetRules | None = None,
) -> list[str]:
    label = node.name or node.id
    found: list[str] = rules.problems(node, label) if rules is not None else []
    if getattr(node, "fault", None):
        found.append(
            f"{label}: Ironic reports a {node.fault} in {source}: fix its BMC first (a node "
            f"whose BMC does not answer drops into maintenance in {target})"
        )
    if getattr(node, "target_power_state", None):
        found.append(
            f"{label}: a power change to {node.target_power_state!r} is under way in {source}: "
            "plan again once it has ended"
        )
    if server is not None and server.volumes:
        found.append(
            f"{label}: its server {server.name} has volumes attached "
            f"({', '.join(server.volumes)}), which do not move with the node: detach them, "
            "or move the node without --nova"
        )
    instance = getattr(node, "instance_id", None)
    if nova and instance and server is None:
        found.append(
            f"{label}: is deployed for instance {instance}, which {source}'s Nova does not "
            "know: move it without --nova, or delete the instance first"
        )
    if node.provision_state not in MOVABLE_STATES:
        found.append(
            f"{label}: is {node.provision_state!r}; only "
            f"{', '.join(sorted(MOVABLE_STATES))} nodes can move"
        )
    if node.is_maintenance:
        found.append(f"{label}: in maintenance ({node.maintenance_reason!r}); not ours to move")
    if any(t.id == node.id for t in target_nodes):
        found.append(f"{label}: already enrolled in {target}")
    elif node.name and any(t.name == node.name for t in target_nodes):
        found.append(f"{label}: {target} already has a node named {node.name!r}")
    for port in ports:
        owner = target_macs.get(port.address.lower())
        if owner and owner != node.id:
            found.append(f"{label}: MAC {port.address} already used in {target} by node {owner}")
    deployed = node.provision_state == "active" and server is None  # a server boots again
    hidden_info = instance_secrets(node.instance_info or {}) if deployed else []
    given = credentials.instance_secrets(NodeSnapshot.of(node, [])) if hidden_info else {}
    carried = [k for k in hidden_info if k not in given]
    if carried:
        found.append(
            f"{label}: instance_info {', '.join(carried)} hold(s) a secret the journal never "
            f"keeps, which its deploy in {target} would need; give it in the credential "
            f"file (nodes: {label}: instance_info:), remove it from the node (a configdrive, "
            "a URL with user:password@) or move the node undeployed"
        )
    if isinstance(credentials, SourceCredentials):
        hidden = sorted(k for k, v in (node.driver_info or {}).items() if v == MASK)
        if hidden:
            found.append(
                f"{label}: {source} masks {', '.join(hidden)}; credential source "
                "'source' needs a policy that shows them (or use file:PATH)"
            )
    else:
        lacking = credentials.missing(NodeSnapshot.of(node, ports))
        if lacking and isinstance(credentials, NoCredentials):
            found.append(
                f"{label}: {source} masks {', '.join(lacking)}; give --credentials file:PATH "
                "(or 'source' if its policy shows them)"
            )
        elif lacking:
            found.append(
                f"{label}: {source} masks {', '.join(lacking)}, and "
                f"{credentials.description} has no value for it"
            )
    return found


def make_plan(
    source: ControlPlane,
    target: ControlPlane,
    settings: Settings,
    credentials: CredentialSource,
    wanted: Sequence[str] | None = None,
) -> ForkliftPlan:
    source.check()
    target.check()
    chosen = _select(source.nodes(), wanted, source.name)
    if not chosen:
        raise PlanRefused(f"nothing to move: {source.name} has no nodes")
    ports_by_node: dict[str, list[Any]] = defaultdict(list)
    for port in source.ports():
        ports_by_node[port.node_id].append(port)
    target_nodes = target.nodes()
    target_macs = {p.address.lower(): p.node_id for p in target.ports()}
    rules = TargetRules.of(target)
    servers: dict[str, ServerRecord] = {}
    lacking: list[str] = []
    if settings.nova:
        reader = Servers(source.name, source.connection)
        on_nodes = reader.on_nodes(n.id for n in chosen)
        groups = reader.groups_of(str(s["id"]) for s in on_nodes.values())  # listed once
        servers = {uuid: reader.record(server, groups) for uuid, server in on_nodes.items()}
        booter = Servers(target.name, target.connection)
        lacking = [f"{target.name} has no {what}" for what in booter.missing(servers.values())]
        by_project: dict[str, list[str]] = defaultdict(list)
        for record in servers.values():
            by_project[record.project_id].append(record.name)
        lacking += [
            f"the forklift's login to {target.name} cannot act in project {project}, where "
            f"it boots {', '.join(sorted(names))}: give its user a role there"
            for project, names in sorted(by_project.items())
            if not booter.can_act_in(project)
        ]
    problems = lacking + [
        problem
        for node in chosen
        for problem in _problems(
            node,
            ports_by_node[node.id],
            target_nodes,
            target_macs,
            credentials,
            source.name,
            target.name,
            servers.get(node.id),
            settings.nova,
            rules,
        )
    ]
    if problems:
        raise PlanRefused("cannot plan this forklift:\n  " + "\n  ".join(problems))
    planned = tuple(
        PlannedNode(
            uuid=n.id,
            name=n.name,
            provision_state=n.provision_state,
            ports=tuple(sorted(p.address.lower() for p in ports_by_node[n.id])),
            secrets=tuple(NodeSnapshot.of(n, []).secret_fields),
            server=servers.get(n.id),
        )
        for n in chosen
    )
    return ForkliftPlan(
        source.name, target.name, settings, credentials.description, planned, (source, target)
    )
