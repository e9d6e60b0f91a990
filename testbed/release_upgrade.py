"""The upgrade of a Nova testbed that runs real releases (``release_venvs``), as an
operator of this cloud writes it: for ``ephyra upgrade`` (:func:`write_files`), and as
the runbook of the upgrade guides in a bash script (:func:`runbook`).

Both take every host from Nova 33.0.2 and Placement 15.0.0 to Nova 34.0.0 and Placement
16.0.0, the wheels installed into each host's venv (``pip install --no-index
--find-links WHEELS --no-deps``), each service restarted with ``python -m testbed
nova-restart``, in the guides' order: Placement's code and database, then Nova pinned
(``[upgrade_levels] compute = auto`` in each host's file), its databases synced from the
controller once the new code is there, conductor, scheduler and API restarted, each
compute emptied by live migration, upgraded, restarted and enabled again, the pins
removed and every service restarted, then the online data migrations until done.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from testbed import novavenv
from testbed.nova import NovaTestbed
from testbed.releases import version_int

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OLD = {"nova": "33.0.2", "openstack-placement": "15.0.0"}
NEW = {"nova": "34.0.0", "openstack-placement": "16.0.0"}
CONTROLLER = "controller"
CONTROL_SERVICES = ("nova-conductor", "nova-scheduler", "nova-api")


def answers() -> str:
    """The shell words of a command that exits 0 when the URL after them answers."""
    probe = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)"
    return shlex.join([sys.executable, "-c", probe])


def restart_command(nova: NovaTestbed) -> str:
    """The shell words that restart one service of the testbed: add SERVICE HOST."""
    argv = ["env", f"PYTHONPATH={REPO}", sys.executable, "-m", "testbed", "nova-restart"]
    return shlex.join([*argv, str(nova.root)])


def _pip_options(nova: NovaTestbed) -> list[str]:
    return ["--no-index", "--find-links", str(nova.wheels), "--no-deps"]


def spec(nova: NovaTestbed, *, availability: float = 1.0) -> dict[str, Any]:
    """The upgrade specification (docs/upgrade.md) of this testbed."""
    root = nova.root
    bin_ = f"{root}/hosts/{{host}}/venv/bin"
    conf = f"--config-file {root}/etc/nova.conf --config-file {root}/etc/{{host}}.conf"
    venv = f"{root}/hosts/{{host}}/venv"

    def source(distribution: str) -> dict[str, Any]:
        return {
            "type": "source",
            "requirement": f"{distribution}=={{version}}",
            "distribution": distribution,
            "venv": venv,
            "pip_options": _pip_options(nova),
        }

    return {
        "release": "2026.2",
        "strategies": {"nova": source("nova"), "placement": source("openstack-placement")},
        "versions": {"nova": NEW["nova"], "placement": NEW["openstack-placement"]},
        "strategy": "nova",
        "services": {"placement-api": {"strategy": "placement"}},
        "restart": f"{restart_command(nova)} {{service}} {{host}}",
        "project_steps": {
            "placement": {
                "sync": [
                    f"{bin_}/placement-manage --config-file {root}/etc/placement.conf db sync"
                ],
                "expand_only": True,
            },
            "compute": {
                "pin": {"file": f"{root}/etc/{{host}}.conf", "options": {"compute": "auto"}},
                "sync": [
                    f"{bin_}/nova-manage {conf} api_db sync",
                    f"{bin_}/nova-manage {conf} db sync",
                ],
                "expand_only": True,
                "migrate": f"{bin_}/nova-manage {conf} db online_data_migrations",
                "status": f"{bin_}/nova-status {conf} upgrade check",
            },
        },
        "roles": {"controller": {"max_at_once": 1}, "compute": {"max_at_once": 1}},
        "gates": {
            "services_up": True,
            "hypervisor_version": "{version}",
            "timeout": 120,
            "interval": 0.5,
            "checks": [{"name": "placement", "command": f"{answers()} {nova.placement_url}"}],
        },
        "evacuation": {"concurrency": 2, "per_host": 2, "max_per_group": 0},
        "availability": {"interval": availability},
    }


def inventory(nova: NovaTestbed) -> dict[str, Any]:
    """The testbed's hosts and the services each runs, as a static inventory."""
    control = ["placement-api", *CONTROL_SERVICES]
    return {
        "hosts": {
            CONTROLLER: {"roles": ["controller"], "services": control},
            **{host: {"roles": ["compute"], "services": ["nova-compute"]} for host in nova.hosts},
        }
    }


def write_files(nova: NovaTestbed, directory: Path, *, availability: float = 1.0) -> list[str]:
    """Write ``upgrade.yaml`` and ``hosts.yaml`` into ``directory``; the arguments of
    ``ephyra upgrade plan|preflight|start`` that name them and the cloud. The wheels of
    the release upgraded to are fetched into the testbed's wheel directory first (the
    upgrade installs from there only)."""
    novavenv.fetch_wheels([f"{name}=={version}" for name, version in NEW.items()], nova.wheels)
    (directory / "upgrade.yaml").write_text(yaml.safe_dump(spec(nova, availability=availability)))
    (directory / "hosts.yaml").write_text(yaml.safe_dump(inventory(nova)))
    return [
        "--spec",
        str(directory / "upgrade.yaml"),
        "--source",
        f"static:{directory / 'hosts.yaml'}",
        "--os-cloud",
        nova.cloud,
    ]


RUNBOOK = r"""#!/bin/bash
# The upgrade of the Nova testbed by hand: the commands of the upgrade guides, in order.
set -euo pipefail
export OS_CLIENT_CONFIG_FILE=@CLOUDS@ OS_CLOUD=@CLOUD@
R=@ROOT@
COMPUTES=(@COMPUTES@)
restart() { @RESTART@ "$1" "$2" >/dev/null; }
pipi() { "$R/hosts/$1/venv/bin/pip" install -q --disable-pip-version-check @PIP@ "$2"; }
manage() { "$R/hosts/controller/venv/bin/nova-manage" --config-file "$R/etc/nova.conf" \
  --config-file "$R/etc/controller.conf" "$@"; }
up() {  # wait until service $1 of host $2 reports up
  until [ "$(openstack compute service list --service "$1" --host "$2" -f value -c State)" = up ]
  do sleep 2; done
}

# 1. Placement: code, database, service
pipi controller openstack-placement==@PLACEMENT@
"$R/hosts/controller/venv/bin/placement-manage" --config-file "$R/etc/placement.conf" db sync
restart placement-api controller
until @ANSWERS@ @PLACEMENT_URL@; do sleep 1; done

# 2. Pin the compute RPC API on every host
for h in controller "${COMPUTES[@]}"; do
  printf '\n[upgrade_levels]\ncompute = auto\n' >> "$R/etc/$h.conf"
done

# 3. Nova's code and databases on the controller, then its services
pipi controller nova==@NOVA@
manage api_db sync
manage db sync
for s in nova-conductor nova-scheduler nova-api; do restart "$s" controller; done
up nova-conductor controller
up nova-scheduler controller

# 4. Each compute: disable, live-migrate its servers away, upgrade, restart, enable
for h in "${COMPUTES[@]}"; do
  openstack compute service set --disable --disable-reason upgrade "$h" nova-compute
  for s in $(openstack server list --all-projects --host "$h" -f value -c ID); do
    openstack server migrate --live-migration "$s"
  done
  while [ -n "$(openstack server list --all-projects --host "$h" -f value -c ID)" ] || \
        openstack server list --all-projects -f value -c Status | grep -q MIGRATING; do
    sleep 2
  done
  pipi "$h" nova==@NOVA@
  restart nova-compute "$h"
  until [ "$(openstack hypervisor show "$h" -f value -c hypervisor_version)" = @NOVA_INT@ ]
  do sleep 2; done
  up nova-compute "$h"
  openstack compute service set --enable "$h" nova-compute
done

# 5. Remove the pins; restart every service
for h in controller "${COMPUTES[@]}"; do
  sed -i '/^\[upgrade_levels\]$/,/^compute = auto$/d' "$R/etc/$h.conf"
done
for s in nova-conductor nova-scheduler nova-api; do restart "$s" controller; done
for h in "${COMPUTES[@]}"; do restart nova-compute "$h"; done

# 6. Online data migrations, until done (exit 1: some migrated, more to do)
while true; do
  rc=0; manage db online_data_migrations || rc=$?
  [ "$rc" -eq 0 ] && break
  [ "$rc" -eq 1 ] || exit "$rc"
done
"""


def runbook(nova: NovaTestbed) -> str:
    """The bash script of the upgrade guides' commands for this testbed (every value
    quoted where it stands)."""
    values = {
        "@CLOUDS@": shlex.quote(str(nova.clouds_yaml)),
        "@CLOUD@": shlex.quote(nova.cloud),
        "@ROOT@": shlex.quote(str(nova.root)),
        "@COMPUTES@": " ".join(shlex.quote(h) for h in nova.hosts),
        "@RESTART@": restart_command(nova),
        "@PIP@": shlex.join(_pip_options(nova)),
        "@PLACEMENT@": NEW["openstack-placement"],
        "@NOVA@": NEW["nova"],
        "@NOVA_INT@": str(version_int(NEW["nova"])),
        "@PLACEMENT_URL@": shlex.quote(nova.placement_url),
        "@ANSWERS@": answers(),
    }
    text = RUNBOOK
    for key, value in values.items():
        text = text.replace(key, value)
    return text
