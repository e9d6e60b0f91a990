"""The ``osa`` source: an OpenStack-Ansible deployment's own configuration, read as its
inventory generator reads it.

``osa:CONFIG[?env_d=DIR]``: ``CONFIG`` is the deployment's ``openstack_user_config.yml``
(the ``conf.d/*.yml`` beside it are merged in, as OpenStack-Ansible does); ``DIR`` is
OpenStack-Ansible's own ``inventory/env.d`` (default ``/opt/openstack-ansible/inventory/env.d``),
and the deployment's ``env.d`` beside ``CONFIG`` overrides it, file by file, key by key.

What a host runs follows env.d: a host listed under ``X_hosts`` in the configuration gets
every container type that ``belongs_to`` ``X_containers`` (``container_skel``), and runs
every component that container type ``contains``. A component is a service under its
usual name (``nova_api_os_compute`` -> ``nova-api``, ``neutron_ovn_controller`` ->
``ovn-controller``: :data:`COMPONENTS`; otherwise ``_`` as ``-``), whether Ephyra knows its
project or not; the infrastructure's components (``galera``, ``rabbitmq``...:
:data:`INFRASTRUCTURE`) are none. A host's roles are those its ``X_hosts`` groups give as
OpenStack-Ansible's well-known groups (``compute_hosts``, ``*_infra_hosts``...: see
:mod:`ephyra.inventory.ansible`), plus those its services imply; its facts are its
``ip`` and ``osa_groups``, the ``X_hosts`` groups it is in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from ephyra import yamlfile
from ephyra.errors import UsageError
from ephyra.inventory import catalog
from ephyra.inventory.ansible import canonical, known_group
from ephyra.inventory.model import UNKNOWN, Host, Inventory, Service, inventory, make_host
from ephyra.inventory.source import options

OPTIONS = ("env_d",)
#: Where OpenStack-Ansible's own env.d is, when ``env_d=`` does not say.
DEFAULT_ENV_D = "/opt/openstack-ansible/inventory/env.d"
#: OpenStack-Ansible's components whose services go by other names.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "nova_api_os_compute": ("nova-api",),
    "nova_console": ("nova-novncproxy",),
    "ironic_compute": ("nova-compute-ironic",),
    "neutron_agent": ("neutron-ovn-agent",),
    "neutron_ovn_controller": ("ovn-controller",),
    "neutron_ovn_gateway": ("ovn-controller",),
    "neutron_ovn_northd": ("ovn-northd",),
    "neutron_sriov_nic_agent": ("neutron-sriov-agent",),
    "ceilometer_agent_central": ("ceilometer-central",),
    "ceilometer_agent_compute": ("ceilometer-compute",),
    "ceilometer_agent_notification": ("ceilometer-notification",),
    "aodh_alarm_evaluator": ("aodh-evaluator",),
    "aodh_alarm_notifier": ("aodh-notifier",),
    "magnum": ("magnum-api", "magnum-conductor"),
    "skyline": ("skyline-apiserver",),
    "swift_proxy": ("swift-proxy-server",),
    "swift_acc": ("swift-account-server",),
    "swift_cont": ("swift-container-server",),
    "swift_obj": ("swift-object-server",),
}
#: Components of the infrastructure (shell-style patterns): no OpenStack service.
INFRASTRUCTURE = (
    "galera",
    "haproxy",
    "memcached",
    "rabbitmq",
    "pkg_repo",
    "utility",
    "unbound",
    "zookeeper",
    "ceph_*",
    "k8s_*",
    "swift_remote",
)
HOST_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*_hosts$")


class OSASource:
    """Reads one OpenStack-Ansible deployment configuration."""

    def __init__(self, config: str, env_d: str = DEFAULT_ENV_D) -> None:
        self.config = config
        self.env_d = env_d
        self.name = f"osa:{config}"

    @classmethod
    def from_argument(cls, argument: str, cloud: str | None) -> OSASource:
        del cloud
        path, found = options("osa", argument, OPTIONS)
        if not path:
            raise UsageError("inventory source osa needs a file: osa:openstack_user_config.yml")
        return cls(path, found.get("env_d") or DEFAULT_ENV_D)

    def discover(self) -> Inventory:
        config_path = Path(self.config)
        config = _config(config_path)
        skeleton = _environment([Path(self.env_d), config_path.parent / "env.d"], self.config)
        placed = _containers(skeleton)
        groups: dict[str, list[str]] = {}
        addresses: dict[str, str] = {}
        for group, members in config.items():
            if not HOST_GROUP.match(group) or not isinstance(members, Mapping):
                continue
            for host, settings in members.items():
                groups.setdefault(str(host), []).append(group)
                if isinstance(settings, Mapping) and isinstance(settings.get("ip"), str):
                    addresses.setdefault(str(host), settings["ip"])
        if not groups:
            raise UsageError(f"osa {self.config}: no host in any *_hosts group")
        hosts = [
            self._host(host, sorted(mine), placed, addresses.get(host))
            for host, mine in sorted(groups.items())
        ]
        return inventory(hosts, sources=[self.name])

    def _host(
        self, name: str, groups: list[str], placed: Mapping[str, set[str]], ip: str | None
    ) -> Host:
        components = set().union(*(placed.get(group, set()) for group in groups))
        names = {s for c in components for s in service_names(c)}
        roles = {r for g in groups for r in known_group(canonical(g)) or ()}
        roles |= catalog.roles_of(names)
        services = [
            Service(s, catalog.project_of(s) or s.partition("-")[0], UNKNOWN, source=self.name)
            for s in sorted(names)
        ]
        facts: dict[str, Any] = {"osa_groups": groups, **({"ip": ip} if ip else {})}
        return make_host(name, roles=roles, services=services, facts=facts, sources=[self.name])


def service_names(component: str) -> tuple[str, ...]:
    """The services an OpenStack-Ansible component runs (none for the infrastructure)."""
    if any(fnmatchcase(component, pattern) for pattern in INFRASTRUCTURE):
        return ()
    return COMPONENTS.get(component, (component.replace("_", "-"),))


def _containers(skeleton: Mapping[str, Any]) -> dict[str, set[str]]:
    """``X_hosts`` -> the components its hosts run: those of every container type that
    belongs to ``X_containers`` (OpenStack-Ansible's generator names a container type's
    host group so: the last word of the group it belongs to replaced by ``hosts``)."""
    placed: dict[str, set[str]] = {}
    for container in _mapping(skeleton.get("container_skel")).values():
        if not isinstance(container, Mapping):
            continue
        contains = [str(c) for c in container.get("contains") or ()]
        for group in container.get("belongs_to") or ():
            hosts = re.sub(r"_[^_]*$", "_hosts", str(group)).replace("-", "_")
            placed.setdefault(hosts, set()).update(contains)
    return placed


def _config(path: Path) -> dict[str, Any]:
    """The configuration at ``path`` with the ``conf.d/*.yml`` beside it merged in."""
    files = [path, *sorted((path.parent / "conf.d").glob("*.yml"))]
    merged: dict[str, Any] = {}
    for file in files:
        for key, value in _mapping(_read(file, f"osa {path}")).items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


def _environment(dirs: list[Path], config: str) -> dict[str, Any]:
    """env.d: the YAML files of ``dirs`` merged in order (a later one overrides)."""
    if not dirs[0].is_dir():
        raise UsageError(
            f"osa {config}: OpenStack-Ansible's env.d {dirs[0]} is not a directory "
            "(name it: osa:CONFIG?env_d=DIR)"
        )
    merged: dict[str, Any] = {}
    for folder in dirs:
        for file in sorted(folder.glob("*.yml")) if folder.is_dir() else ():
            merged = _deep_merge(merged, _mapping(_read(file, f"osa {config}")))
    return merged


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read(file: Path, where: str) -> Any:
    try:
        return yamlfile.read(file)
    except OSError as exc:
        raise UsageError(f"{where}: cannot read {file}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: {file} is not YAML: {exc}") from exc


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
