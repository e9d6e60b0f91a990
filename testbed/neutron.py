"""A real Neutron API (ML2, no agents) on loopback, authenticating every request with Keystone.

:class:`Neutron` writes ``neutron.conf`` under its root, migrates the given database
(``neutron-db-manage``, see :data:`MIGRATION`; Neutron's migrations need PostgreSQL
or MySQL, see :mod:`testbed.postgres`) and serves ``neutron.wsgi.api:application`` with
:mod:`testbed.wsgi_serve` in a process group of its own: one API process, no RPC server
and no agent. ML2 has the flat, VLAN and VXLAN type drivers (project networks are VXLAN)
and one mechanism driver, :mod:`testbed.neutron_mech`, which binds every port to the host
it names. Networks, subnets, routers, security groups and their rules, and ports work;
nothing forwards a packet. Nova is not notified of port changes.

Without a ``transport_url`` its RPC casts (to agents that do not exist) go to
oslo.messaging's in-process ``fake`` driver. Policies are Neutron's own defaults (the new
RBAC defaults, scope enforced): a project member creates networks, subnets, routers,
security groups and ports, a project reader only reads.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path
from types import TracebackType

from testbed.daemon import Daemon, http_ok, run
from testbed.glance import POLICY, authtoken_config, service_env
from testbed.ironic import LOOPBACK, TestbedError, free_port
from testbed.keystone import Keystone
from testbed.neutron_mech import NAME as MECHANISM_DRIVER

HERE = Path(__file__).resolve().parent
PASTE = HERE / "neutron-api-paste.ini"
#: oslo.messaging's in-process driver: casts are queued in memory and never delivered.
FAKE_TRANSPORT = "fake:/"
#: The distribution whose entry point makes ML2 find :mod:`testbed.neutron_mech`.
DIST_INFO = "testbed_neutron-1.0.dist-info"
#: ``neutron-db-manage`` steps. Migration d553edeb540f (2025.2, "tag case sensitive") runs
#: MySQL's ``ALTER TABLE tags CONVERT TO CHARACTER SET utf8mb4`` and forgives only MySQL's
#: error: on PostgreSQL it is a syntax error and the upgrade stops. Its effect is MySQL's
#: alone (PostgreSQL compares tags case-sensitively already), so the database is migrated
#: up to its parent, stamped past it, and migrated to the heads.
MIGRATION = (
    ("upgrade", "ad80a9f07c5c"),
    ("stamp", "d553edeb540f"),
    ("upgrade", "heads"),
)

CONFIG = """\
[DEFAULT]
log_file = {dir}/logs/neutron-api.log
debug = false
state_path = {dir}/state
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
api_paste_config = {paste}
allow_overlapping_ips = true
transport_url = {transport}
rpc_workers = 0
rpc_state_report_workers = 0
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
dhcp_agent_notification = false

[database]
connection = {database}

[oslo_concurrency]
lock_path = {dir}/locks

[ml2]
type_drivers = flat,vlan,vxlan
project_network_types = vxlan
mechanism_drivers = {mechanism}
extension_drivers = port_security

[ml2_type_vxlan]
vni_ranges = 1:1000

[ml2_type_flat]
flat_networks = public

[securitygroup]
enable_security_group = true

"""


def write_entry_point(site: Path) -> None:
    """A ``.dist-info`` in ``site`` naming :mod:`testbed.neutron_mech` as an ML2 driver."""
    dist = site / DIST_INFO
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: testbed-neutron\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[neutron.ml2.mechanism_drivers]\n"
        f"{MECHANISM_DRIVER} = testbed.neutron_mech:HostBindingDriver\n"
    )


class Neutron:
    """Neutron's API; ``root`` holds its configuration, state and logs."""

    def __init__(
        self,
        root: Path,
        keystone: Keystone,
        *,
        database_url: str,
        transport_url: str | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.keystone = keystone
        self.port = free_port()
        self.database_url = database_url
        self.transport_url = transport_url or FAKE_TRANSPORT
        self.start_seconds: float | None = None
        self.config = self.root / "neutron.conf"
        self.site = self.root / "site"
        env = {
            **service_env(self.site),
            "OS_NEUTRON_CONFIG_DIR": str(self.root),
            "OS_NEUTRON_CONFIG_FILES": self.config.name,
            # stevedore caches entry points by path: this one is new with every root.
            "XDG_CACHE_HOME": str(self.root / "cache"),
        }
        serve = [sys.executable, "-m", "testbed.wsgi_serve", "neutron.wsgi.api:application"]
        self.daemon = Daemon(
            "neutron-api",
            [*serve, str(self.port)],
            self.root / "logs" / "serve.log",
            env=env,
            cwd=self.root,
        )

    def __repr__(self) -> str:
        return f"Neutron({str(self.root)!r}, url={self.url})"

    @property
    def url(self) -> str:
        """The network endpoint, without ``/v2.0``."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        """Write the configuration, migrate the database, serve; wait until it answers."""
        began = time.monotonic()
        for sub in ("logs", "state", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        write_entry_point(self.site)
        self.config.write_text(
            CONFIG.format(
                dir=self.root,
                paste=PASTE,
                transport=self.transport_url,
                database=self.database_url,
                mechanism=MECHANISM_DRIVER,
            )
            + authtoken_config(self.keystone)
            + POLICY
        )
        manage = Path(sys.executable).parent / "neutron-db-manage"
        if not manage.exists():
            raise TestbedError(f"neutron-db-manage not found next to {sys.executable}")
        for step in MIGRATION:
            run(
                [str(manage), "--config-file", str(self.config), *step],
                self.root / "logs" / "db-manage.log",
                env=self.daemon.env,
                cwd=self.root,
            )
        self.daemon.start()
        self.daemon.wait_until(partial(http_ok, f"{self.url}/healthcheck"), timeout, "up")
        self.start_seconds = time.monotonic() - began

    def stop(self) -> None:
        self.daemon.stop()

    def __enter__(self) -> Neutron:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
