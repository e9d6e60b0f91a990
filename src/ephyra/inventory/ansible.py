"""The ``ansible`` source: an Ansible inventory, read by ansible-core's own inventory API.

``ansible:PATH[?roles=MAP.yaml]``: any inventory ansible-core reads (ini, yaml, a
directory, an inventory plugin's file), with ``group_vars``/``host_vars`` beside it.

A host's roles, in this order:

1. ``ephyra_roles`` (a host or group variable: a list, or names separated by commas):
   exactly those roles;
2. else each group it is in (parents included), by the first rule that matches (a
   group's name read in lower case, ``_`` as ``-``):

   - the operator's mapping (``roles=``, see :mod:`ephyra.inventory.rolemap`);
   - the well-known groups of Kolla-Ansible and OpenStack-Ansible (``control``,
     ``compute``, ``compute_hosts``, ``*-infra_hosts``..., and infrastructure groups such
     as ``rabbitmq``, ``kolla_logs`` or ``baremetal`` that give no role: :data:`GROUPS`);
     Kolla's ``compute`` also means the host runs ``nova-compute`` (:data:`IMPLIED`);
   - a variant of a service's group (Kolla's ``cinder-volume-lvm``,
     ``ovn-controller-compute``: :data:`VARIANTS`) is that service;
   - a group named after an OpenStack service (``nova-compute``, ``nova_compute``,
     ``neutron_l3_agent``) is a service the host runs, not a role;
   - a project's group (Kolla's ``nova``; any group whose name begins another's, as
     ``blazar`` begins ``blazar-api``) gives nothing;
   - a group made only of other groups whose name is a project's and a word
     (``blazar-api``, ``masakari-instancemonitor``: Kolla's groups of services, of
     projects Ephyra knows or not), where that project has a group or another such
     service, is a service of that project;
   - otherwise the group's name is the role;
3. plus the roles its services imply (``nova-compute`` -> compute).

``ephyra_services`` (a list) adds services. Every other variable is a fact, except
those named like a secret (password, secret, token, key, vault...) and Ansible's own
magic variables; ``ansible_groups`` lists the host's groups.

ansible-core warns on stderr about what it cannot parse; Ephyra then refuses the source.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import import_module
from pathlib import Path
from typing import Any

from ephyra.errors import PluginError, UsageError
from ephyra.inventory import catalog
from ephyra.inventory.catalog import COMPUTE, CONTROLLER, NETWORK, STORAGE
from ephyra.inventory.model import UNKNOWN, Host, Inventory, Service, inventory, make_host
from ephyra.inventory.rolemap import RoleMap
from ephyra.inventory.source import options

OPTIONS = ("roles",)
ROLES_VAR, SERVICES_VAR = "ephyra_roles", "ephyra_services"

#: Group name patterns (shell-style) -> role, or None: the group gives no role.
GROUPS: tuple[tuple[str, str | None], ...] = (
    ("all", None),
    ("ungrouped", None),
    # Kolla-Ansible's host groups; its "baremetal" is every host it bootstraps.
    ("control", CONTROLLER),
    ("network", NETWORK),
    ("compute", COMPUTE),
    ("storage", STORAGE),
    ("monitoring", "monitoring"),
    ("deployment", None),
    ("baremetal", None),
    # OpenStack-Ansible's host groups.
    ("compute_hosts", COMPUTE),
    ("storage_hosts", STORAGE),
    ("network_hosts", NETWORK),
    ("network-agent_hosts", NETWORK),
    ("network-gateway_hosts", NETWORK),
    ("*-infra_hosts", CONTROLLER),
    ("identity_hosts", CONTROLLER),
    ("image_hosts", CONTROLLER),
    ("dashboard_hosts", CONTROLLER),
    ("orchestration_hosts", CONTROLLER),
    ("haproxy_hosts", None),
    ("load_balancer_hosts", None),
    ("log_hosts", None),
    ("*_all", None),
    ("*_containers", None),
    ("hosts", None),
    ("lxc_hosts", None),
    # Infrastructure groups of both: where a service runs, not what a host is for.
    *(
        (name, None)
        for name in (
            "mariadb",
            "galera*",
            "rabbitmq*",
            "memcached*",
            "loadbalancer",
            "haproxy",
            "keepalived",
            "etcd*",
            "redis*",
            "valkey*",
            "opensearch*",
            "fluentd",
            "kolla-logs",
            "kolla-toolbox",
            "cron",
            "common",
            "chrony*",
            "openvswitch",
            "ovn-database",
            "ovn-*-db*",
            "prometheus*",
            "grafana",
            "hacluster*",
            "iscsid",
            "multipathd",
            "tgtd",
            "collectd",
            "telegraf",
            "letsencrypt*",
            "proxysql",
            "utility*",
            "repo*",
            "tls-backend",
            "bifrost",
        )
    ),
)
#: Services a well-known group means its hosts run, where the tool names no group for them.
IMPLIED: dict[str, tuple[str, ...]] = {"compute": ("nova-compute",)}
#: Kolla's groups for one service on some hosts or in some configurations -> the service.
VARIANTS: dict[str, str] = {
    "cinder-volume-lvm": "cinder-volume",
    "cinder-volume-multiple": "cinder-volume",
    "cinder-backup-lvm": "cinder-backup",
    "cinder-backup-multiple": "cinder-backup",
    "ovn-controller-compute": "ovn-controller",
    "ovn-controller-network": "ovn-controller",
}

#: ansible-core settings while Ephyra reads an inventory:
#: ansible-core constant -> (the environment variable that sets it, Ephyra's value).
SETTINGS: dict[str, tuple[str, Any]] = {
    "TRANSFORM_INVALID_GROUP_CHARS": ("ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS", "ignore"),
    "INVENTORY_UNPARSED_IS_FAILED": ("ANSIBLE_INVENTORY_UNPARSED_FAILED", True),
    "INVENTORY_ANY_UNPARSED_IS_FAILED": ("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", True),
}
#: Ansible's magic variables and connection details: never facts.
MAGIC = frozenset(
    {
        "ansible_config_file",
        "ansible_facts",
        "ansible_playbook_python",
        "ansible_version",
        "ansible_check_mode",
        "ansible_diff_mode",
        "ansible_forks",
        "ansible_inventory_sources",
        "ansible_verbosity",
        "ansible_run_tags",
        "ansible_skip_tags",
        "group_names",
        "groups",
        "hostvars",
        "inventory_dir",
        "inventory_file",
        "inventory_hostname",
        "inventory_hostname_short",
        "omit",
        "playbook_dir",
        "role_names",
    }
)


class AnsibleSource:
    """Reads one Ansible inventory source."""

    def __init__(self, path: str, role_map: RoleMap | None = None) -> None:
        self.path = path
        self.role_map = role_map or RoleMap()
        self.name = f"ansible:{path}"
        self.groups = Groups()

    @classmethod
    def from_argument(cls, argument: str, cloud: str | None) -> AnsibleSource:
        del cloud
        path, found = options("ansible", argument, OPTIONS)
        if not path:
            raise UsageError("inventory source ansible needs an inventory: ansible:PATH")
        return cls(path, RoleMap.load(found["roles"]) if "roles" in found else None)

    def discover(self) -> Inventory:
        if not Path(self.path).exists():
            raise UsageError(f"ansible inventory {self.path}: no such file or directory")
        manager, variables = _load(self.path)
        self.groups = Groups.of(manager)
        hosts = [
            self._host(h.name, [g.name for g in h.get_groups()], variables.get_vars(host=h))
            for h in manager.get_hosts()
        ]
        if not hosts:
            raise UsageError(
                f"ansible inventory {self.path}: no host in it (see ansible-core's warnings)"
            )
        return inventory(hosts, sources=[self.name])

    def _host(self, name: str, groups: list[str], raw: Mapping[str, Any]) -> Host:
        variables = {k: v for k, v in _plain(raw).items() if k not in MAGIC}
        where = f"ansible inventory {self.path}: host {name}"
        explicit = _names(variables.pop(ROLES_VAR, None), f"{where}: {ROLES_VAR}")
        service_names = set(
            _names(variables.pop(SERVICES_VAR, None), f"{where}: {SERVICES_VAR}") or ()
        )
        roles: set[str] = set()
        projects: dict[str, str] = {}
        for group in groups:
            mapped = self.role_map.roles(group)
            group_name = canonical(group)
            if mapped is not None:
                roles.update(mapped)
            elif (known := known_group(group_name)) is not None:
                roles.update(known)
                service_names.update(IMPLIED.get(group_name, ()))
            elif group_name in VARIANTS:
                service_names.add(VARIANTS[group_name])
            elif catalog.is_service(group_name):
                service_names.add(group_name)
            elif self.groups.is_project(group_name):
                pass  # a project's group (Kolla's "nova"): its services say more
            elif project := self.groups.project_of_service(group_name):
                service_names.add(group_name)
                projects[group_name] = project
            else:
                roles.add(catalog.role_alias(group_name))
        services = [
            Service(
                s, catalog.project_of(s) or projects.get(s, ""), status=UNKNOWN, source=self.name
            )
            for s in sorted(service_names)
        ]
        if explicit is not None:
            roles = set(explicit)
        else:
            roles |= catalog.roles_of(service_names)
        facts = catalog.public_facts(variables)
        facts["ansible_groups"] = sorted(g for g in groups if g not in ("all", "ungrouped"))
        return make_host(name, roles=roles, services=services, facts=facts, sources=[self.name])


@dataclass(frozen=True)
class Groups:
    """What the inventory's group structure says of a group's name: every group's name
    (canonical) and those made only of other groups."""

    names: frozenset[str] = frozenset()
    of_groups: frozenset[str] = frozenset()

    @classmethod
    def of(cls, manager: Any) -> Groups:
        groups = manager.groups.values()
        return cls(
            frozenset(canonical(g.name) for g in groups),
            frozenset(canonical(g.name) for g in groups if g.child_groups and not g.hosts),
        )

    def is_project(self, name: str) -> bool:
        """A project's group: a project Ephyra knows, or a name that begins another's."""
        if "-" not in name and catalog.project_of(name):
            return True
        return any(other.startswith(f"{name}-") for other in self.names)

    def project_of_service(self, name: str) -> str:
        """The project of a group of services of a project Ephyra may not know
        (``blazar-api``), or ``""``: the group is made of groups only, and its project
        (the name's first word) has a group or another such group of services."""
        project, dash, rest = name.partition("-")
        if not dash or not rest or name not in self.of_groups:
            return ""
        siblings = [
            other for other in self.of_groups if other != name and other.startswith(f"{project}-")
        ]
        return project if project in self.names or siblings else ""


def canonical(group: str) -> str:
    """A group's name as Ephyra compares it: lower case, ``_`` as ``-``."""
    return group.strip().lower().replace("_", "-")


def known_group(name: str) -> tuple[str, ...] | None:
    """The role a well-known group (its canonical name) gives, ``()`` for none, or None
    for a group that is not well known."""
    for pattern, role in GROUPS:
        if fnmatchcase(name, pattern.replace("_", "-")):
            return (role,) if role else ()
    return None


def _names(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise UsageError(f"{where}: expected a list of names, got {value!r}")


def _load(path: str) -> tuple[Any, Any]:
    """ansible-core's inventory and variable managers for ``path``."""
    # Kolla's group names have dashes: read them as they are, without a warning for each;
    # an inventory ansible-core cannot parse is an error, not an empty inventory. These
    # settings hold while Ephyra reads the inventory, unless the operator set them.
    try:
        constants = import_module("ansible.constants")
        dataloader = import_module("ansible.parsing.dataloader")
        manager = import_module("ansible.inventory.manager")
        variables = import_module("ansible.vars.manager")
        errors = import_module("ansible.errors")
    except ImportError as exc:
        raise PluginError(
            f"the ansible inventory source needs ansible-core (pip install ansible-core): {exc}"
        ) from exc
    chosen = {k: value for k, (env, value) in SETTINGS.items() if env not in os.environ}
    saved = {k: getattr(constants, k) for k in chosen if hasattr(constants, k)}
    loader = dataloader.DataLoader()
    try:
        for key, value in chosen.items():
            setattr(constants, key, value)
        inv = manager.InventoryManager(loader=loader, sources=[str(Path(path).resolve())])
    except errors.AnsibleError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(
            f"ansible inventory {path}: ansible-core cannot read it: {message} "
            "(its warnings above say why)"
        ) from exc
    finally:
        for key in chosen:
            if key in saved:
                setattr(constants, key, saved[key])
    return inv, variables.VariableManager(loader=loader, inventory=inv)


def _plain(value: Any) -> Any:
    """Ansible's values (tagged strings, encrypted ones) as plain YAML-able data; an
    encrypted (vault) value is dropped."""
    if isinstance(value, Mapping):
        out = {}
        for key, inner in value.items():
            plain = _plain(inner)
            if plain is not _SKIP:
                out[str(key)] = plain
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = value if isinstance(value, list | tuple) else sorted(value, key=str)
        return [p for p in (_plain(v) for v in items) if p is not _SKIP]
    if value is None or type(value) in (bool, int, float, str):
        return value
    if "vault" in type(value).__name__.lower() or "encrypt" in type(value).__name__.lower():
        return _SKIP
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            try:
                return kind(value)
            except Exception:  # an encrypted value that cannot be read without its secret
                return _SKIP
    return str(value)


_SKIP = object()
