"""``ephyra inventory``: what the cloud is made of, as the discovery sources see it."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ephyra.cli import runs
from ephyra.cli.backend import backend
from ephyra.cli.output import emit

DESCRIPTION = """\
What the cloud is made of: its hosts, their roles and services, as discovery sources see
them (see docs/inventory.md).

show        discover, merge in the order given, and print the inventory

sources (--source, repeatable; later ones win where they disagree, but an unknown
value never replaces a known one):
  openstack[:CLOUD]          the cloud's APIs (default cloud: --os-cloud / OS_CLOUD)
  static:FILE                a YAML file (what `inventory show -f yaml` prints)
  ansible:INVENTORY[?roles=MAP.yaml]
                             an Ansible inventory (groups -> roles, variables -> facts)
  puppetdb:URL[?roles=MAP.yaml&short=true&cacert=CA&cert=CRT&key=KEY]
                             PuppetDB (classes -> roles and services, facts -> facts)
  osa:CONFIG[?env_d=DIR]     an OpenStack-Ansible openstack_user_config.yml, with
                             OpenStack-Ansible's env.d (what runs where)
Without --source, the cloud of --os-cloud is discovered through its APIs.

With --url, the server discovers only what its operator configured: openstack[:CLOUD]
(its clouds.yaml) and the names given in its --config (ephyra serve --config);
a path, a URL or ?options are refused.
"""


def do_show(args: argparse.Namespace) -> int:
    from ephyra.inventory.model import Inventory

    data = backend(args).inventory(args.source, args.os_cloud, args.role)
    if args.format != "table":
        emit(data, args.format)
        return 0
    found = Inventory.from_dict(data)
    emit(
        [
            {
                "host": h.name,
                "roles": ",".join(sorted(h.roles)),
                "services": " ".join(f"{s.name}:{s.status}" for s in h.services),
                "servers": h.servers,
                "volumes": h.volumes,
                "sources": ",".join(sorted(h.sources)),
            }
            for h in found.hosts
        ],
        "table",
        ["host", "roles", "services", "servers", "volumes", "sources"],
        title=f"{len(found.hosts)} host(s) from {', '.join(found.sources)}",
    )
    if found.endpoints:
        emit(
            [vars(e) for e in found.endpoints],
            "table",
            ["region", "service", "interface", "url", "version"],
            title="endpoints",
        )
    for place, types in sorted((found.fact.get("absent") or {}).items()):
        for service_type, why in sorted(types.items()):
            print(f"absent: {place}: {service_type}: {why}")
    return 0


def register(sub: Any, exit_codes: str) -> None:
    """Add ``ephyra inventory`` to the command tree."""
    action = runs.command_group(
        sub,
        "inventory",
        "what the cloud is made of: hosts, roles, services",
        DESCRIPTION,
        exit_codes,
    )
    show = action("show", do_show, "discover the inventory and print it")
    show.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="KIND[:ARG]",
        help="inventory source, repeatable, merged in order: openstack[:CLOUD], static:FILE, "
        "ansible:INVENTORY, puppetdb:URL, osa:CONFIG (default: openstack, with --os-cloud); "
        "with --url: openstack[:CLOUD] or a NAME the server configured",
    )
    show.add_argument("--role", metavar="ROLE", help="only the hosts of this role")
    show.add_argument(
        "--os-cloud",
        default=os.environ.get("OS_CLOUD"),
        metavar="NAME",
        help="cloud from clouds.yaml for the openstack source (default: OS_CLOUD)",
    )
