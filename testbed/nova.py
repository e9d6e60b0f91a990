"""A real Nova cloud on loopback: API, conductor, scheduler, nova-computes and Placement.

:class:`NovaTestbed` starts, from fresh databases, everything a small Nova deployment runs,
each process in its own process group and on free 127.0.0.1 ports:

- PostgreSQL (databases ``nova_api``, ``nova_cell0``, ``nova_cell1``, ``placement``) and
  RabbitMQ with its own epmd (:mod:`testbed.postgres`, :mod:`testbed.rabbitmq`);
- Placement and nova-api, served by :mod:`testbed.wsgi_serve`; nova-api authenticates
  with :mod:`testbed.nova_noauth` (a token ``user:project``) instead of Keystone;
- nova-conductor and nova-scheduler (one worker each);
- ``computes`` nova-computes ``compute-1``... (from ``compute-<first_host>`` when given,
  so that two testbeds have no host name in common) with :mod:`testbed.nova_driver`,
  Nova's fake live-migration driver reporting ``vcpus`` and ``memory_mb``;
- :mod:`testbed.nova_stub`, the minimal image and network endpoint Nova needs.

Every Nova and Placement process runs under :mod:`testbed.supervise`, which starts it again
when it exits, and :mod:`testbed.release_gate`: each has a *release* in its configuration
(:mod:`testbed.releases`; a compute reports it as ``hypervisor_version``), which
:meth:`NovaTestbed.set_release`, or ``python -m testbed nova-release`` from another
process, changes before restarting that one process. Every start resets them to 1.0.0
(to ``nova``, the installed version, with ``release_venvs``: see below).

It writes ``clouds.yaml`` (cloud ``nova``, the admin token) for openstacksdk and the
``openstack`` CLI, and helps tests boot servers on a chosen host and clear everything.

With a ``keystone`` (:class:`testbed.keystone.Keystone`, started), nova-api and Placement
authenticate every request through keystonemiddleware's ``auth_token`` instead (the
services log in with the admin's application credential,
:func:`testbed.catalog.service_user`; nova-api caches no token, so a role taken away
counts at the next request) and enforce the services' default policies: a project member
boots, suspends and deletes its servers, a project reader only reads. Nova reaches
Placement, the image service (``glance_url``) and the network service (``neutron_url``)
as that service user; without those URLs the stand-in serves images and networks as
before. ``clouds.yaml`` then logs
in to Keystone (region ``region``). ``postgres`` and ``rabbit``, when given, are started
servers the testbed uses (creating its databases) but neither starts nor stops, so that
other services of the same cloud share them (:mod:`testbed.tenantclouds`).

**Real releases.** With ``release_venvs`` (e.g. ``("nova==33.0.2",
"openstack-placement==15.0.0")``) every host runs its services from a venv of its own,
:meth:`NovaTestbed.venv` ``(host)`` = ``ROOT/hosts/<host>/venv``, made at every start by
:mod:`testbed.novavenv` from the cached wheels (:func:`testbed.novavenv.wheels_dir`):
host ``controller`` has both pins installed and runs nova-api, nova-conductor,
nova-scheduler and Placement (and ``nova-manage``, ``placement-manage`` for the schemas),
each ``compute-N`` has the nova pin only and runs its nova-compute. Every service's
release is then ``nova``: a compute reports ``convert_version_to_int`` of the nova it has
installed. Upgrading a host is ``pip install --no-index --find-links WHEELS --no-deps
nova==34.0.0`` into its venv (:func:`testbed.novavenv.pip_install_argv`) and restarting
its services (:meth:`NovaTestbed.restart`, ``python -m testbed nova-restart``), whose
supervisor starts them from the venv as it now is. Each host's services read a
configuration file that only they read (:meth:`NovaTestbed.host_config`:
``etc/controller.conf``, ``etc/compute-N.conf``), where an operator sets, say,
``[upgrade_levels] compute = auto``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from testbed import catalog, handover, novavenv, pci, releases
from testbed.daemon import Daemon, http_ok, run
from testbed.ironic import LOOPBACK, TestbedError, _executable, _group_members, free_port
from testbed.postgres import Postgres
from testbed.rabbitmq import RabbitMQ
from testbed.releases import (
    CONTROLLER_HOST,
    CONTROLLERS,
    DEFAULT_RELEASE,
    INSTALLED,
    Release,
    write_release,
)
from testbed.started import Started
from testbed.supervise import SupervisorState, read_state

if TYPE_CHECKING:
    from openstack.connection import Connection

    from testbed.cinder import CinderTestbed
    from testbed.keystone import Keystone

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CLOUD = "nova"
#: The compute API microversion of every connection: the last one before server behaviour
#: Ephyra cares about changes again (2.95: an evacuated server arrives stopped).
MICROVERSION = "2.95"
#: The hypervisor listing's microversion (see :meth:`NovaTestbed.hypervisor_versions`).
HYPERVISORS_MICROVERSION = "2.87"
#: The only image: the stand-in serves any id, this one is the testbed's.
IMAGE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://ephyra.invalid/testbed/image"))
DATABASES = ("nova_api", "nova_cell0", "nova_cell1", "placement")
#: Seconds between two heartbeats of a service, and without one before it counts as down.
REPORT_INTERVAL = 2
SERVICE_DOWN_TIME = 10
POLL_S = 0.1
START_TIMEOUT_S = 120.0
WAIT_TIMEOUT_S = 120.0
#: Seconds a Nova process gets to stop on SIGTERM before its group is killed: a graceful
#: stop takes about 5 s, but the testbed throws its databases away anyway.
NOVA_STOP_GRACE_S = 2.0
#: The distributions a host venv holds: Nova on every host, Placement on the controller.
NOVA_DIST = "nova"
PLACEMENT_DIST = "openstack-placement"
STATUS_TIMEOUT_S = 120.0


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.rstrip("Z")).replace(tzinfo=None)


def pss_mb(groups: Iterable[int]) -> float:
    """Proportional set size (PSS) of every process of the process groups ``groups``, in MiB."""
    total_kb = 0
    for pgid in groups:
        for pid in _group_members(pgid):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total_kb += int(line.split()[1])
    return total_kb / 1024


class NovaTestbed(Started):
    """Nova, Placement and their backing services on loopback; see the module docstring."""

    __test__ = False  # not a test class, whatever its name

    def __init__(
        self,
        root: str | os.PathLike[str],
        computes: int = 3,
        memory_mb: int = 16384,
        vcpus: int = 16,
        max_concurrent_live_migrations: int = 8,
        *,
        local_gb: int = 1024,
        keystone: Keystone | None = None,
        region: str = "RegionOne",
        glance_url: str | None = None,
        neutron_url: str | None = None,
        postgres: Postgres | None = None,
        rabbit: RabbitMQ | None = None,
        first_host: int = 1,
        baremetal_host: str | None = None,
        release_venvs: Sequence[str] | None = None,
        wheels: str | os.PathLike[str] | None = None,
        cinder: CinderTestbed | None = None,
        pci_devices: int = 0,
    ) -> None:
        """``root`` holds configuration, logs and per-compute state (recreated by start).
        See the module docstring for ``keystone`` and the arguments after it.
        ``release_venvs``: the pins (``nova==X``, ``openstack-placement==Y``) each host's
        venv starts with, installed from ``wheels`` (default
        :func:`testbed.novavenv.wheels_dir`, filled with what is missing at start).
        ``cinder``: the block storage Nova attaches volumes from
        (:class:`testbed.cinder.CinderTestbed`, without Keystone only).
        ``pci_devices``: plain PCI devices each compute has, passed through to a server
        whose flavor asks for them (:mod:`testbed.pci`)."""
        if computes < 1 and baremetal_host is None:
            raise ValueError("at least one compute")
        if baremetal_host is not None and keystone is None:
            raise ValueError("a bare-metal compute finds Ironic in Keystone's catalog")
        if first_host < 1:
            raise ValueError("compute numbers start at 1 or later")
        if keystone is None and (glance_url or neutron_url):
            raise ValueError("an image or network service needs Keystone")
        if cinder is not None and keystone is not None:
            raise ValueError("the Cinder testbed takes the testbed's tokens, not Keystone's")
        self.release_venvs = tuple(release_venvs) if release_venvs is not None else None
        if self.release_venvs is not None:
            pinned = {novavenv.normalize(novavenv.pin(r)[0]) for r in self.release_venvs}
            wanted = {novavenv.normalize(NOVA_DIST), novavenv.normalize(PLACEMENT_DIST)}
            if pinned != wanted or len(self.release_venvs) != 2:
                raise ValueError(
                    f"release_venvs pins {NOVA_DIST} and {PLACEMENT_DIST} once each, "
                    f"not {list(self.release_venvs)}"
                )
            if baremetal_host is not None:
                raise ValueError("a bare-metal compute has no venv of its own")
        self.wheels = Path(wheels) if wheels is not None else novavenv.wheels_dir()
        self.keystone = keystone
        self.cinder = cinder
        self.region = region
        self.glance_url = glance_url
        self.neutron_url = neutron_url
        self._shared_postgres = postgres
        self._shared_rabbit = rabbit
        self.root = Path(root).resolve()
        self.cloud = CLOUD
        self.hosts = [f"compute-{n}" for n in range(first_host, first_host + computes)]
        self.baremetal_host = baremetal_host
        self.memory_mb = memory_mb
        self.vcpus = vcpus
        self.local_gb = local_gb
        self.max_concurrent_live_migrations = max_concurrent_live_migrations
        self.pci_devices = pci_devices
        self.start_seconds: float | None = None
        self._scratch: Path | None = None
        self._postgres: Postgres | None = None
        self._rabbit: RabbitMQ | None = None
        self._daemons: dict[str, Daemon] = {}
        self._ports: dict[str, int] = {}
        self._connections: dict[tuple[str, str], Connection] = {}
        self._venvs: dict[str, Future[Path]] = {}
        self._names = itertools.count(1)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NovaTestbed({str(self.root)!r}, hosts={self.hosts}, api={self._url('api')})"

    # -- where things are ---------------------------------------------------------------

    @property
    def clouds_yaml(self) -> Path:
        return self.root / "clouds.yaml"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def host_names(self) -> list[str]:
        """Every host: ``controller``, then the computes."""
        return [CONTROLLER_HOST, *self.hosts]

    def venv(self, host: str) -> Path:
        """The venv host ``host`` runs its services from (``ROOT/hosts/<host>/venv``),
        with ``release_venvs`` only."""
        if self.release_venvs is None:
            raise TestbedError("this Nova testbed runs every host from one environment")
        self._check_host(host)
        return self.root / "hosts" / host / "venv"

    def _check_host(self, host: str) -> None:
        if host not in self.host_names:
            raise ValueError(f"unknown host {host!r}; hosts: {self.host_names}")

    def host_config(self, host: str) -> Path:
        """The configuration file that the Nova services of ``host``, and only they, read
        after ``nova.conf``: ``etc/controller.conf`` (nova-api, nova-conductor,
        nova-scheduler, nova-manage) or ``etc/compute-N.conf``. Placement reads
        ``etc/placement.conf`` alone."""
        self._check_host(host)
        return self.etc / f"{host}.conf"

    def config_files(self, host: str) -> list[Path]:
        """The configuration files a Nova command of ``host`` reads, in order
        (``--config-file`` each): ``nova.conf``, then :meth:`host_config`."""
        return [self.etc / "nova.conf", self.host_config(host)]

    def _bin(self, host: str, name: str) -> str:
        """Executable ``name`` of ``host``: from its venv, or the running interpreter's."""
        if self.release_venvs is None:
            return _executable(name)
        return str(self.venv(host) / "bin" / name)

    def installed(self, host: str, distribution: str = NOVA_DIST) -> str | None:
        """The version of ``distribution`` in the venv of ``host`` (``release_venvs``)."""
        return novavenv.installed_version(self.venv(host), distribution)

    def _release_version(self, name: str) -> str:
        """The version service ``name`` runs: its release, or for ``nova`` the version
        its host has installed."""
        configured = self.release(name)
        if configured != INSTALLED:
            return configured
        host = name if name in self.hosts else CONTROLLER_HOST
        if self.release_venvs is None:
            return releases.resolve(INSTALLED)
        version = self.installed(host)
        if version is None:
            raise TestbedError(f"no nova installed in {self.venv(host)}")
        return version

    @property
    def api_url(self) -> str:
        """The compute endpoint (``.../v2.1``)."""
        return f"{self._url('api')}/v2.1"

    @property
    def placement_url(self) -> str:
        return self._url("placement")

    @property
    def stub_url(self) -> str:
        """The image/network stand-in (running without Keystone, or without Glance or
        Neutron)."""
        return self._url("stub")

    def _url(self, name: str) -> str:
        return f"http://{LOOPBACK}:{self._ports.get(name, 0)}"

    def env(self) -> dict[str, str]:
        """Environment variables that point openstack clients at this testbed."""
        return {"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}

    @property
    def services(self) -> list[str]:
        """Names of the services with a release: the controllers, then the computes."""
        return [*CONTROLLERS, *self.hosts]

    @property
    def release_command(self) -> list[str]:
        """The argv prefix of ``python -m testbed nova-release ROOT`` for this testbed,
        runnable from any directory; add ``NAME [VERSION] [--fail]``."""
        env = shutil.which("env") or "/usr/bin/env"
        python = _executable("python")
        return [env, f"PYTHONPATH={REPO}", python, "-m", "testbed", "nova-release", str(self.root)]

    def pids(self) -> dict[str, int]:
        """Process (and process group) id of every running process, by name, in the order
        to stop them: computes first (they report to the conductor while stopping)."""
        daemons = [*self._computes(), *self._controllers()]
        if self._rabbit is not None and self._shared_rabbit is None:
            daemons += [self._rabbit.daemon, self._rabbit.epmd]
        if self._postgres is not None and self._shared_postgres is None:
            daemons.append(self._postgres.daemon)
        return {d.name: d.pid for d in daemons if d.pid is not None and d.is_running}

    def memory_mb_used(self) -> float:
        """Proportional set size (PSS) of all the testbed's processes, in MiB (without a
        shared PostgreSQL or RabbitMQ)."""
        return pss_mb(self.pids().values())

    # -- start and stop -----------------------------------------------------------------

    def start(self) -> None:
        """Start everything from fresh databases; return once every compute is up, mapped
        to the cell and a resource provider in Placement. On failure stop all and raise."""
        with self._lock:
            if self._scratch is not None:
                raise TestbedError("the Nova testbed is already running")
            started = time.monotonic()
            try:
                self._start()
            except BaseException:
                self._stop()
                raise
            self.start_seconds = time.monotonic() - started

    def _start(self) -> None:
        for sub in ("etc", "logs", "state", "run"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
            (self.root / sub).mkdir(parents=True)
        with ThreadPoolExecutor(max_workers=1) as builder:
            if self.release_venvs is not None:
                self._make_venvs(builder)
            self._start_services()

    def _make_venvs(self, builder: ThreadPoolExecutor) -> None:
        """Fetch the wheels missing from the cache, then make every host's venv in
        ``builder`` (the controller's first)."""
        assert self.release_venvs is not None
        shutil.rmtree(self.root / "hosts", ignore_errors=True)
        novavenv.fetch_wheels(self.release_venvs, self.wheels)
        deps = novavenv.shared_deps(self.root / "hosts" / "shared-deps")
        nova_pins = [
            r
            for r in self.release_venvs
            if novavenv.normalize(novavenv.pin(r)[0]) == novavenv.normalize(NOVA_DIST)
        ]
        for host in self.host_names:
            wanted = list(self.release_venvs) if host == CONTROLLER_HOST else nova_pins
            self._venvs[host] = builder.submit(
                novavenv.make_venv,
                self.venv(host),
                wanted,
                deps=deps,
                wheels=self.wheels,
                log=self.logs / f"venv-{host}.log",
            )

    def _venv_ready(self, host: str) -> None:
        """Wait until the venv of ``host`` is made (if the testbed makes venvs)."""
        future = self._venvs.get(host)
        if future is not None:
            future.result()

    def _start_services(self) -> None:
        # PostgreSQL and RabbitMQ run as their own users, which cannot reach a private
        # directory such as pytest's: they get a scratch directory of their own.
        self._scratch = Path(tempfile.mkdtemp(prefix="ephyra-nova-"))
        self._scratch.chmod(0o755)
        self._postgres = self._shared_postgres or Postgres(
            self._scratch / "postgres", self.logs / "postgres.log"
        )
        self._rabbit = self._shared_rabbit or RabbitMQ(self._scratch / "rabbitmq", self.logs)
        self._ports = {name: free_port() for name in ("api", "placement", "stub")}
        self._connections.clear()
        self._write_config()
        self._define_daemons()
        with ThreadPoolExecutor(max_workers=1) as pool:
            rabbit = pool.submit(self._rabbit.start) if self._shared_rabbit is None else None
            if "stub" in self._daemons:
                self._daemons["stub"].start()
            if self._shared_postgres is None:
                self._postgres.start(DATABASES)
            else:
                self._postgres.create_databases(*DATABASES)
            self._venv_ready(CONTROLLER_HOST)
            self._sync_databases()
            if rabbit is not None:
                rabbit.result()
        # A nova-compute that starts before the conductor listens loses its first call to
        # it and waits 10 s: the conductor comes first, the others while it starts.
        for name in ("nova-conductor", "placement", "nova-api", "nova-scheduler"):
            self._daemons[name].start()
        self._wait(lambda: self._services_in_db("nova-conductor") >= 1, "nova-conductor started")
        for host in self._compute_hosts:
            self._venv_ready(host)
            self._daemons[host].start()
        if "stub" in self._daemons:
            self._wait(lambda: http_ok(self._url("stub")), "image/network stand-in answering")
        self._wait(lambda: http_ok(self.placement_url), "Placement answering")
        self._wait(lambda: http_ok(self._url("api")), "nova-api answering")
        self._wait(self._all_services_up, "every Nova service up")
        self._wait(self._all_providers, "a resource provider for every compute")
        self._nova_manage("cell_v2", "discover_hosts")
        self._wait(self._all_hosts_mapped, "every compute mapped to cell1", timeout=0)

    def stop(self) -> None:
        """Stop every process the testbed started and remove its scratch directory."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        errors: list[str] = []

        def attempt(action: Callable[[], None]) -> None:
            try:
                action()
            except Exception as exc:
                errors.append(str(exc))

        daemons = list(self._daemons.values())
        with ThreadPoolExecutor(max_workers=max(1, len(daemons))) as pool:
            list(pool.map(lambda daemon: attempt(daemon.stop), daemons))
        if self._rabbit is not None and self._shared_rabbit is None:
            attempt(self._rabbit.stop)
        if self._postgres is not None and self._shared_postgres is None:
            attempt(self._postgres.stop)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch = None
        self._connections.clear()
        self._venvs.clear()
        if errors:
            raise TestbedError("the Nova testbed did not stop cleanly:\n" + "\n".join(errors))

    def _computes(self) -> list[Daemon]:
        return [d for name, d in self._daemons.items() if name in self._compute_hosts]

    def _controllers(self) -> list[Daemon]:
        return [d for name, d in self._daemons.items() if name not in self._compute_hosts]

    @property
    def _compute_hosts(self) -> list[str]:
        """Every nova-compute's host: the computes, then the bare-metal one if any."""
        return [*self.hosts, *([self.baremetal_host] if self.baremetal_host else [])]

    # -- configuration ------------------------------------------------------------------

    def _write_config(self) -> None:
        assert self._postgres is not None and self._rabbit is not None
        values = {
            "@DIR@": str(self.root),
            "@TRANSPORT_URL@": self._rabbit.transport_url,
            "@API_DB@": self._postgres.url("nova_api"),
            "@CELL1_DB@": self._postgres.url("nova_cell1"),
            "@PLACEMENT_DB@": self._postgres.url("placement"),
            "@PLACEMENT_URL@": self.placement_url,
            "@STUB_URL@": self._url("stub"),
            "@REPORT_INTERVAL@": str(REPORT_INTERVAL),
            "@SERVICE_DOWN_TIME@": str(SERVICE_DOWN_TIME),
            "@MAX_CONCURRENT_LIVE_MIGRATIONS@": str(self.max_concurrent_live_migrations),
            "@VCPUS@": str(self.vcpus),
            "@MEMORY_MB@": str(self.memory_mb),
            "@LOCAL_GB@": str(self.local_gb),
            "@PCI_DEVICES@": str(self.pci_devices),
            "@RELEASE@": self._first_release,
        }
        self._render("nova.conf.template", self.etc / "nova.conf", values)
        if self.cinder is not None:
            with (self.etc / "nova.conf").open("a") as nova_conf:
                nova_conf.write(self.cinder.nova_settings())
        if self.pci_devices:
            with (self.etc / "nova.conf").open("a") as nova_conf:
                nova_conf.write(pci.SETTINGS)
        self._render("nova-controller.conf.template", self.etc / "controller.conf", values)
        self._render("placement.conf.template", self.etc / "placement.conf", values)
        shutil.copyfile(HERE / "nova-api-paste.ini", self.etc / "api-paste.ini")
        if self.keystone is not None:
            self._write_keystone_config(self.keystone, values)
            if self.baremetal_host is not None:
                self._write_baremetal_config(self.keystone, values)
        for name in ("nova-conductor", "nova-scheduler", "nova-api"):
            conf = self.etc / f"{name}.conf"
            conf.write_text(f"# {name}'s own settings, read after nova.conf and controller.conf\n")
            write_release(conf, Release(self._first_release))
        if self.baremetal_host is not None:
            # a bare-metal host has a compute node only once Ironic has a node: the
            # scheduler maps it to the cell when it first has one, as Nova's guide for
            # Ironic advises
            with (self.etc / "nova-scheduler.conf").open("a") as scheduler:
                scheduler.write("\n[scheduler]\ndiscover_hosts_in_cells_interval = 2\n")
        for host in self.hosts:
            (self.root / "state" / host / "instances").mkdir(parents=True)
            self._render(
                "nova-compute.conf.template", self.etc / f"{host}.conf", {**values, "@HOST@": host}
            )
        (self.root / "state" / "locks").mkdir()
        self.write_clouds_yaml()

    @property
    def _first_release(self) -> str:
        """Every service's release at start: ``nova`` (the installed one) with venvs."""
        return DEFAULT_RELEASE if self.release_venvs is None else INSTALLED

    def _write_baremetal_config(self, keystone: Keystone, values: Mapping[str, str]) -> None:
        host = self.baremetal_host
        assert host is not None
        (self.root / "state" / host / "instances").mkdir(parents=True)
        extra = {
            **values,
            "@HOST@": host,
            "@KEYSTONE_URL@": keystone.url,
            "@REGION@": self.region,
            "@SERVICE_USER@": catalog.service_user(keystone),
        }
        self._render("nova-ironic.conf.template", self.etc / f"{host}.conf", extra)

    def _write_keystone_config(self, keystone: Keystone, values: Mapping[str, str]) -> None:
        """Append the Keystone settings to nova.conf and placement.conf; put
        keystonemiddleware's ``authtoken`` where nova-api's paste pipeline has the noauth
        filter."""
        service_user = catalog.service_user(keystone)
        stub = self._url("stub")
        extra = {
            **values,
            "@KEYSTONE_URL@": keystone.url,
            "@REGION@": self.region,
            "@SERVICE_USER@": service_user,
            "@GLANCE_URL@": self.glance_url or stub,
            "@NEUTRON_URL@": self.neutron_url or stub,
        }
        for template, target in (
            ("nova-keystone.conf.template", "nova.conf"),
            ("placement-keystone.conf.template", "placement.conf"),
        ):
            with (self.etc / target).open("a") as conf:
                conf.write(self._rendered(template, extra))
        paste = self.etc / "api-paste.ini"
        pipeline = paste.read_text().replace(
            " noauth keystonecontext ", " authtoken keystonecontext "
        )
        factory = "keystonemiddleware.auth_token:filter_factory"
        paste.write_text(f"{pipeline}\n[filter:authtoken]\npaste.filter_factory = {factory}\n")

    @staticmethod
    def _rendered(template: str, values: Mapping[str, str]) -> str:
        text = (HERE / template).read_text()
        for key, value in values.items():
            text = text.replace(key, value)
        return text

    @classmethod
    def _render(cls, template: str, target: Path, values: Mapping[str, str]) -> None:
        target.write_text(cls._rendered(template, values))

    @property
    def _needs_stub(self) -> bool:
        """Whether the image/network stand-in runs: without Keystone, or without either."""
        return self.keystone is None or self.glance_url is None or self.neutron_url is None

    def cloud_config(self, token: str = "admin:admin") -> dict[str, Any]:
        """The openstacksdk/``openstack`` CLI settings of this cloud for ``token``
        (``user:project``). With Keystone, the admin of project admin logs in with the
        services' application credential, any other user with its password: the admin's,
        or ``<user>-password`` (what :meth:`Keystone.add_user` gives)."""
        if self.keystone is not None:
            user, _sep, project = token.partition(":")
            return self._keystone_config(self.keystone, user, project or user)
        stub = self._url("stub")
        config: dict[str, Any] = {
            "auth_type": "admin_token",
            "auth": {"token": token, "endpoint": self.api_url},
            "region_name": "RegionOne",
            "compute_api_version": MICROVERSION,
            "identity_api_version": "3",
            "compute_endpoint_override": self.api_url,
            "placement_endpoint_override": self.placement_url,
            "image_endpoint_override": stub,
            "network_endpoint_override": stub,
            "identity_endpoint_override": f"{stub}/v3/",
        }
        if self.cinder is not None:
            config.update(self.cinder.sdk_settings())
        return config

    def _keystone_config(self, keystone: Keystone, user: str, project: str) -> dict[str, Any]:
        if user == "admin" and project == "admin":
            credential, secret = catalog.service_credential(keystone)
            config: dict[str, Any] = {
                "auth_type": "v3applicationcredential",
                "auth": {
                    "auth_url": keystone.url,
                    "application_credential_id": credential,
                    "application_credential_secret": secret,
                },
                "identity_api_version": 3,
            }
        else:
            password = keystone.admin_password if user == "admin" else f"{user}-password"
            config = keystone.clouds_entry(user, password, project)
        stub = self._url("stub")
        config.update(
            region_name=self.region,
            compute_api_version=MICROVERSION,
            compute_endpoint_override=self.api_url,
            placement_endpoint_override=self.placement_url,
            image_endpoint_override=self.glance_url or stub,
            network_endpoint_override=self.neutron_url or stub,
            identity_endpoint_override=f"{keystone.url}/",
        )
        return config

    def write_clouds_yaml(self) -> Path:
        clouds = {"clouds": {self.cloud: self.cloud_config()}}
        self.clouds_yaml.write_text(yaml.safe_dump(clouds, sort_keys=True))
        return self.clouds_yaml

    def _service_env(self, host: str | None = CONTROLLER_HOST) -> dict[str, str]:
        """The environment of the processes of ``host`` (None: of no host): with venvs,
        its venv's ``bin`` first on ``PATH``, as if it were activated."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
        env["PYTHONPATH"] = str(REPO)
        env["OS_NOVA_CONFIG_DIR"] = str(self.etc)
        env["OS_NOVA_CONFIG_FILES"] = "api-paste.ini;nova.conf;controller.conf"
        env["OS_PLACEMENT_CONFIG_DIR"] = str(self.etc)
        if self.release_venvs is not None and host is not None:
            venv = self.venv(host)
            env["VIRTUAL_ENV"] = str(venv)
            env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
        return env

    def _define_daemons(self) -> None:
        nova_conf = ["--config-file", str(self.etc / "nova.conf")]
        controller = [*nova_conf, "--config-file", str(self.etc / "controller.conf")]

        def daemon(
            name: str,
            argv: list[str],
            *,
            host: str | None = CONTROLLER_HOST,
            supervised: bool = True,
            **extra_env: str,
        ) -> None:
            if supervised:  # restarted when it exits, started only if its release can
                python = self._bin(host or CONTROLLER_HOST, "python")
                gate = [python, "-m", "testbed.release_gate", str(self.etc / f"{name}.conf")]
                supervise = [python, "-m", "testbed.supervise", str(self._state_file(name))]
                argv = [*supervise, "--", *gate, "--", *argv]
            self._daemons[name] = Daemon(
                name,
                argv,
                self.logs / f"{name}.out",
                env={**self._service_env(host), **extra_env},
                cwd=self.root,
                grace=NOVA_STOP_GRACE_S,
            )

        def module(host: str, name: str, *args: str) -> list[str]:
            return [self._bin(host, "python"), "-m", name, *args]

        self._daemons = {}
        if self._needs_stub:  # of no host: the running interpreter's
            stub = [_executable("python"), "-m", "testbed.nova_stub", str(self._ports["stub"])]
            daemon("stub", stub, host=None, supervised=False)
        wsgi = module(CONTROLLER_HOST, "testbed.wsgi_serve")
        placement = [*wsgi, "testbed.placement_wsgi:application", str(self._ports["placement"])]
        daemon("placement", placement)
        api_log = ["--log-file", str(self.logs / "nova-api.log")]
        files = self._service_env()["OS_NOVA_CONFIG_FILES"]
        daemon(
            "nova-api",
            [*wsgi, "nova.wsgi.osapi_compute:application", str(self._ports["api"]), *api_log],
            OS_NOVA_CONFIG_FILES=f"{files};nova-api.conf",
        )
        for binary in ("nova-conductor", "nova-scheduler"):
            own = ["--config-file", str(self.etc / f"{binary}.conf")]
            own += ["--log-file", str(self.logs / f"{binary}.log")]
            command = module(CONTROLLER_HOST, "testbed.nova_controller", binary)
            daemon(binary, [*command, *controller, *own])
        for host in self._compute_hosts:
            compute_conf = ["--config-file", str(self.etc / f"{host}.conf")]
            log = ["--log-file", str(self.logs / f"{host}.log")]
            runner = host if host in self.hosts else CONTROLLER_HOST
            argv = [*module(runner, "testbed.nova_compute"), *nova_conf, *compute_conf, *log]
            # the bare-metal host has no release of its own: Ironic's nodes are upgraded
            # by moving them (the forklift), not by restarting it
            daemon(host, argv, host=runner, supervised=host in self.hosts)

    # -- databases ----------------------------------------------------------------------

    def _nova_manage(self, *args: str, cell_config: str = "controller.conf", log: str = "") -> None:
        argv = [self._bin(CONTROLLER_HOST, "nova-manage")]
        argv += ["--config-file", str(self.etc / "nova.conf")]
        argv += ["--config-file", str(self.etc / cell_config), *args]
        log_file = self.logs / f"nova-manage{log}.log"
        run(argv, log_file, env=self._service_env(), cwd=self.root)

    def _sync_databases(self) -> None:
        """Create every schema and the cells (cell0 and cell1), several at once."""
        assert self._postgres is not None
        cell0 = self._postgres.url("nova_cell0")
        (self.etc / "cell0.conf").write_text(f"[database]\nconnection = {cell0}\n")
        placement = [
            self._bin(CONTROLLER_HOST, "placement-manage"),
            "--config-file",
            str(self.etc / "placement.conf"),
            "db",
            "sync",
        ]

        def api_and_cells() -> None:
            self._nova_manage("api_db", "sync", log="-api")
            with ThreadPoolExecutor(max_workers=2) as pool:
                futures = [
                    pool.submit(
                        self._nova_manage, "cell_v2", "map_cell0", "--database_connection", cell0
                    ),
                    pool.submit(self._nova_manage, "cell_v2", "create_cell", "--name", "cell1"),
                ]
            for future in futures:
                future.result()

        tasks: list[Callable[[], None]] = [
            lambda: run(placement, self.logs / "placement-manage.log", env=self._service_env()),
            api_and_cells,
            lambda: self._nova_manage("db", "sync", "--local_cell", log="-cell1"),
            lambda: self._nova_manage(
                "db", "sync", "--local_cell", cell_config="cell0.conf", log="-cell0"
            ),
        ]
        with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
            for future in [pool.submit(task) for task in tasks]:
                future.result()

    # -- waiting ------------------------------------------------------------------------

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT_S) -> None:
        """Poll ``ready``; raise if it is not true in time or a Nova process died (even
        when its supervisor starts it again)."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        exits = self._exits()
        while True:
            try:
                if ready():
                    return
            except Exception as exc:  # not answering yet
                last_error = exc
            for daemon in self._daemons.values():
                if daemon.pid is not None and not daemon.is_running:
                    raise TestbedError(
                        f"{daemon.name} died while waiting for {what}:\n"
                        f"{self._log_tail(daemon.name)}"
                    )
            for name, (supervisor, count) in self._exits().items():
                before = exits.get(name)
                if count > (before[1] if before is not None and before[0] == supervisor else 0):
                    state = self.supervisor_state(name)
                    code = state.last_exit if state is not None else None
                    raise TestbedError(
                        f"{name} exited with {code} while waiting for {what} (its supervisor "
                        f"starts it again):\n{self._log_tail(name)}"
                    )
            if time.monotonic() > deadline:
                reason = f" (last error: {last_error})" if last_error else ""
                raise TestbedError(f"not {what} after {timeout:.0f} s{reason}")
            time.sleep(POLL_S)

    def _exits(self) -> dict[str, tuple[int, int]]:
        """(supervisor pid, children ended) of every supervised service running, but for
        the computes handed away (:mod:`testbed.handover`), whose starts fail on purpose."""
        found = {}
        for name in self.services:
            if name in self.hosts and handover.released(self.etc / f"{name}.conf"):
                continue
            state = self.supervisor_state(name)
            if state is not None:
                found[name] = (state.supervisor, state.exits)
        return found

    def _log_tail(self, name: str, lines: int = 30) -> str:
        parts = []
        for path in (self.logs / f"{name}.log", self.logs / f"{name}.out"):
            with contextlib.suppress(OSError):
                parts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)

    def add_stale_compute(self, host: str, days: float = 1.0) -> str:
        """A nova-compute service record of ``host``, last seen ``days`` ago, at the
        service version of the computes: what a host removed without deleting its
        service leaves behind (Nova shows it down). Returns the record's id, which
        ``DELETE /os-services/{id}`` removes."""
        assert self._postgres is not None
        version = self._postgres.query(
            "nova_cell1",
            'SELECT min(version) FROM services WHERE "binary" = %s AND deleted = 0',
            "nova-compute",
        )[0][0]
        sql = (
            'INSERT INTO services (created_at, updated_at, host, "binary", topic, '
            "report_count, disabled, deleted, forced_down, version, uuid, last_seen_up) "
            "VALUES (now() - make_interval(secs => %s), now() - make_interval(secs => %s), "
            "%s, 'nova-compute', 'compute', 1, false, 0, false, %s, %s, "
            "now() - make_interval(secs => %s)) RETURNING uuid"
        )
        seconds = days * 86400
        rows = self._postgres.execute(
            "nova_cell1", sql, seconds, seconds, host, version, str(uuid.uuid4()), seconds
        )
        return str(rows[0][0])

    def _services_in_db(self, binary: str) -> int:
        assert self._postgres is not None
        sql = 'SELECT count(*) FROM services WHERE "binary" = %s AND deleted = 0'
        return int(self._postgres.query("nova_cell1", sql, binary)[0][0])

    def _all_hosts_mapped(self) -> bool:
        assert self._postgres is not None
        rows = self._postgres.query("nova_api", "SELECT host FROM host_mappings")
        return set(self.hosts) <= {row[0] for row in rows}

    def _compute_services(self) -> dict[str, Any]:
        services = self.connect().compute.services(binary="nova-compute")
        return {service.host: service for service in services}

    def _all_services_up(self) -> bool:
        services = list(self.connect().compute.services())
        up = {(s.binary, s.host) for s in services if s.state == "up"}
        wanted = {("nova-conductor", "controller"), ("nova-scheduler", "controller")}
        wanted |= {("nova-compute", host) for host in self._compute_hosts}
        return wanted <= up

    def _all_providers(self) -> bool:
        names = {rp.name for rp in self.connect().placement.resource_providers()}
        return set(self.hosts) <= names

    # -- clients ------------------------------------------------------------------------

    def connect(self, project: str | None = None, user: str | None = None) -> Connection:
        """An openstacksdk connection: the admin (roles admin, member, reader) when
        ``project`` is None, else user ``user`` (default ``<project>-user``), a member
        of ``project``. Its compute proxy speaks microversion :data:`MICROVERSION`."""
        if project is None:
            return self._connect("admin", user or "admin")
        return self._connect(project, user or f"{project}-user")

    def _connect(self, project: str, user: str) -> Connection:
        key = (project, user)
        conn = self._connections.get(key)
        if conn is None:
            import openstack

            if self.keystone is not None and user == "admin" and project != "admin":
                self._admin_of(project)
            config = self.cloud_config(f"{user}:{project}")
            conn = openstack.connect(load_yaml_config=False, load_envvars=False, **config)
            conn.compute.default_microversion = MICROVERSION
            self._connections[key] = conn
        return conn

    def _admin_of(self, project: str) -> None:
        """With Keystone: make ``project`` (Default domain) if missing and give the admin
        user the admin role on it, so that the admin acts inside that project as with
        the noauth token ``admin:project``."""
        identity: Any = self.connect().identity
        found = identity.find_project(project, domain_id="default")
        if found is None:
            found = identity.create_project(name=project, domain_id="default")
        admin = identity.find_user("admin", domain_id="default")
        role = identity.find_role("admin")
        identity.assign_project_role_to_user(found, admin, role)

    # -- servers ------------------------------------------------------------------------

    def flavor(self, name: str = "tiny", ram: int = 512, vcpus: int = 1, disk: int = 1) -> str:
        """Id of flavor ``name``, created with these sizes if missing."""
        compute = self.connect().compute
        found = compute.find_flavor(name, ignore_missing=True)
        if found is None:
            found = compute.create_flavor(name=name, ram=ram, vcpus=vcpus, disk=disk)
        return str(found.id)

    def server_group(self, name: str, project: str = "demo", policy: str = "soft-affinity") -> str:
        """Id of server group ``name`` of ``project``, created with ``policy`` if missing."""
        compute = self._connect(project, "admin").compute
        for group in compute.server_groups():
            if group.name == name:
                return str(group.id)
        return str(compute.create_server_group(name=name, policy=policy).id)

    def boot(
        self,
        host: str,
        count: int,
        project: str = "demo",
        group: str | None = None,
        flavor: str = "tiny",
        name_prefix: str = "vm",
        wait: bool = True,
        zone: str | None = "nova",
    ) -> list[str]:
        """Boot ``count`` servers of ``project`` on ``host`` (forced there with the
        availability zone ``<zone>:<host>``; with no ``zone``, asked of the scheduler as
        the requested host, no zone asked: free to move to any zone), without network, in
        server group ``group`` (an id) if given; wait until they are ACTIVE unless ``wait``
        is false. ``flavor`` is a name or id; a missing name is created with
        :meth:`flavor`'s sizes. Returns the server ids in boot order."""
        if host not in self.hosts:
            raise ValueError(f"unknown host {host!r}; hosts: {self.hosts}")
        admin = self.connect().compute
        found = admin.find_flavor(flavor, ignore_missing=True)
        flavor_id = str(found.id) if found is not None else self.flavor(flavor)
        compute = self._connect(project, "admin").compute
        extra: dict[str, Any] = {"scheduler_hints": {"group": group}} if group else {}
        ids = []
        for _ in range(count):
            name = f"{name_prefix}-{next(self._names)}"
            if zone is None:
                body = {"name": name, "flavorRef": flavor_id, "imageRef": IMAGE_ID}
                reply = compute.post(
                    "/servers",
                    json={"server": {**body, "networks": "none", "host": host}}
                    | ({"os:scheduler_hints": {"group": group}} if group else {}),
                    microversion="2.74",
                )
                if reply.status_code != 202:
                    raise RuntimeError(f"boot on {host}: HTTP {reply.status_code}: {reply.text}")
                ids.append(str(reply.json()["server"]["id"]))
                continue
            server = compute.create_server(
                name=name,
                flavor_id=flavor_id,
                image_id=IMAGE_ID,
                networks="none",
                availability_zone=f"{zone}:{host}",
                **extra,
            )
            ids.append(str(server.id))
        if wait:
            self.wait_servers(ids, status="ACTIVE", host=host)
        return ids

    def wait_servers(
        self,
        ids: Iterable[str],
        status: str | Iterable[str] = "ACTIVE",
        host: str | None = None,
        timeout: float = WAIT_TIMEOUT_S,
    ) -> list[Any]:
        """Poll (every 0.1 s) until every server in ``ids`` has ``status`` (one or several
        accepted) and no task, and is on ``host`` if given; raise on ERROR or time-out.
        Returns the servers, in the order of ``ids``."""
        wanted = [str(i) for i in ids]
        statuses = {status} if isinstance(status, str) else set(status)
        compute = self.connect().compute
        deadline = time.monotonic() + timeout
        while True:
            current = {s.id: s for s in compute.servers(all_projects=True)}
            missing = [i for i in wanted if i not in current]
            if missing:
                raise TestbedError(f"servers {missing} do not exist")
            servers = [current[i] for i in wanted]
            failed = [s for s in servers if s.status == "ERROR" and "ERROR" not in statuses]
            if failed:
                faults = {s.id: s.fault for s in failed}
                raise TestbedError(f"servers went to ERROR: {faults}")
            pending = [
                s
                for s in servers
                if s.status not in statuses
                or s.task_state
                or (host is not None and s.compute_host != host)
            ]
            if not pending:
                return servers
            if time.monotonic() > deadline:
                state = [(s.id, s.status, s.task_state, s.compute_host) for s in pending]
                raise TestbedError(f"servers not {sorted(statuses)} after {timeout:.0f} s: {state}")
            time.sleep(POLL_S)

    def servers_on(self, host: str) -> list[Any]:
        """Servers of every project whose compute host is ``host``."""
        return list(self.connect().compute.servers(all_projects=True, compute_host=host))

    # -- the API ----------------------------------------------------------------------------

    def kill_api(self) -> None:
        """SIGKILL nova-api: the cloud's API is gone, its computes go on."""
        self._daemons["nova-api"].kill()

    def start_api(self, timeout: float = WAIT_TIMEOUT_S) -> None:
        """Start nova-api again and wait until it answers."""
        daemon = self._daemons["nova-api"]
        daemon.start()
        daemon.wait_until(lambda: http_ok(self.api_url), timeout, "nova-api answering")

    # -- computes -----------------------------------------------------------------------

    def kill_compute(self, host: str) -> None:
        """SIGKILL that nova-compute (its servers keep their host, as on a real crash)."""
        self._daemons[host].kill()

    def start_compute(self, host: str, timeout: float = WAIT_TIMEOUT_S) -> None:
        """Start that nova-compute again (same database, same node) and wait until it has
        reported to the database since this call and its service is up."""
        since = _utcnow()
        self._daemons[host].start()
        self._wait_computes_up([host], since, timeout)

    def compute_running(self, host: str) -> bool:
        """Whether the nova-compute process of ``host`` is alive (not only its supervisor)."""
        return self._daemons[host].is_running and self.service_pid(host) is not None

    def _wait_computes_up(
        self, hosts: Iterable[str], since: datetime | None, timeout: float
    ) -> None:
        wanted = set(hosts)

        def up() -> bool:
            services = self._compute_services()
            for host in wanted:
                service = services.get(host)
                if service is None or service.state != "up":
                    return False
                updated = _parse_time(service.updated_at)
                if since is not None and (updated is None or updated < since):
                    return False
            return True

        self._wait(up, f"nova-compute up on {sorted(wanted)}", timeout)

    # -- releases -----------------------------------------------------------------------

    def _state_file(self, name: str) -> Path:
        return releases.state_file(self.root, name)

    def supervisor_state(self, name: str) -> SupervisorState | None:
        """What the supervisor of service ``name`` last wrote (None: not running)."""
        return read_state(self._state_file(name))

    def service_pid(self, name: str) -> int | None:
        """Pid of the running process of service ``name`` (its supervisor's child); None
        while it is not running."""
        state = self.supervisor_state(name)
        if state is None or not state.supervisor_alive or not state.child_alive:
            return None
        return state.child

    def release(self, name: str) -> str:
        """The release configured for service ``name`` (``compute-1``...,
        ``nova-conductor``, ``nova-scheduler``, ``nova-api``, ``placement``)."""
        return releases.release(self.root, name).version

    def set_release(
        self,
        name: str,
        version: str,
        *,
        fail_start: bool = False,
        timeout: float = releases.RESTART_TIMEOUT_S,
    ) -> tuple[int, int]:
        """Write release ``version`` into the configuration of service ``name`` and restart
        that service, as ``python -m testbed nova-release`` does; ``fail_start`` makes the
        new process fail at start. Returns (old pid, new pid) once the old process is gone
        and the new one started, without waiting for it to be ready. Raises
        :class:`testbed.releases.BadRelease` (nothing changed) for an unknown name or a
        version that is not one."""
        restarted = releases.set_release(
            self.root, name, version, fail_start=fail_start, timeout=timeout
        )
        assert restarted is not None
        return restarted

    def hypervisor_versions(self) -> dict[str, int]:
        """``hypervisor_version`` of every compute, from ``GET /os-hypervisors/detail``
        at 2.87: from 2.88 on Nova asks every compute it believes up for its uptime over
        RPC, and one stopped a moment ago (a released host) stalls the listing 60 s."""
        compute = self.connect().compute
        reply = compute.get("/os-hypervisors/detail", microversion=HYPERVISORS_MICROVERSION)
        if reply.status_code != 200:
            raise TestbedError(f"GET /os-hypervisors/detail: {reply.status_code} {reply.text}")
        return {
            h["hypervisor_hostname"]: h["hypervisor_version"] for h in reply.json()["hypervisors"]
        }

    def wait_service(
        self, name: str, since: datetime | None = None, timeout: float = WAIT_TIMEOUT_S
    ) -> None:
        """Wait until service ``name`` serves again: a compute, nova-conductor or
        nova-scheduler up in Nova with a heartbeat since ``since`` (naive UTC) if given, a
        compute also reporting the hypervisor_version of its release (release ``nova``:
        of the nova its venv has); nova-api or Placement answering. Raises if its process
        exits meanwhile."""
        if name in self.hosts:
            self._wait_computes_up([name], since, timeout)
            version = releases.version_int(self._release_version(name))
            self._wait(
                lambda: self.hypervisor_versions().get(name) == version,
                f"{name} reporting hypervisor_version {version}",
                timeout,
            )
        elif name in ("nova-conductor", "nova-scheduler"):

            def reported() -> bool:
                for service in self.connect().compute.services(binary=name):
                    updated = _parse_time(service.updated_at)
                    fresh = since is None or (updated is not None and updated >= since)
                    if service.host == "controller" and service.state == "up" and fresh:
                        return True
                return False

            self._wait(reported, f"{name} up", timeout)
        elif name in ("nova-api", "placement"):
            url = self._url("api" if name == "nova-api" else "placement")
            self._wait(lambda: http_ok(url), f"{name} answering", timeout)
        else:
            raise ValueError(f"unknown service {name!r}; services: {self.services}")

    def restart(
        self, service: str, host: str, *, timeout: float = releases.RESTART_TIMEOUT_S
    ) -> tuple[int, int]:
        """Restart Nova service ``service`` (``nova-api``, ``nova-conductor``,
        ``nova-scheduler``, ``placement-api``, ``nova-compute``) of ``host``
        (``controller``, ``compute-N``), as ``python -m testbed nova-restart`` does: its
        process stops and its supervisor starts it again, from the host's venv as it now
        is and with the configuration as it now is. Returns (old pid, new pid) once the
        new process started, without waiting for it to serve (:meth:`wait_service` with
        :func:`testbed.releases.service_name`). Raises
        :class:`testbed.releases.BadRelease` for a pair that runs nowhere."""
        name = releases.service_name(service, host)
        releases.check_service(self.root, name)
        return releases.restart_service(self.root, name, timeout=timeout)

    def nova_status(self, *args: str, timeout: float = STATUS_TIMEOUT_S) -> tuple[int, str]:
        """Run ``nova-status --config-file etc/nova.conf --config-file
        etc/controller.conf ARGS`` (default ``upgrade check``) on the controller, from
        its venv with ``release_venvs``; (exit code, output with stderr)."""
        argv = [self._bin(CONTROLLER_HOST, "nova-status")]
        for conf in self.config_files(CONTROLLER_HOST):
            argv += ["--config-file", str(conf)]
        argv += list(args or ("upgrade", "check"))
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self._service_env(),
            cwd=self.root,
            timeout=timeout,
            check=False,
        )
        return done.returncode, done.stdout

    # -- clean --------------------------------------------------------------------------

    def clean(self, timeout: float = WAIT_TIMEOUT_S) -> None:
        """Back to an empty cloud: every server (all projects) deleted, every server group
        and host aggregate deleted, every nova-compute running, enabled, not forced down and up."""
        since = _utcnow()
        dead = [host for host in self.hosts if not self._daemons[host].is_running]
        for host in dead:
            self._daemons[host].start()
        compute = self.connect().compute
        for service in compute.services(binary="nova-compute"):
            if service.status != "enabled":
                compute.enable_service(service)
            if service.is_forced_down:
                self._force_up(service, timeout)
        if dead:
            self._wait_computes_up(dead, since, timeout)
        # A live migration still under way when its server is deleted puts allocations back
        # when it ends: let it end first (the driver takes about 5 s).
        self._wait(self._no_live_migration, "live migrations finished", timeout)
        self._delete_servers(timeout)
        self._delete_allocations()
        for group in compute.server_groups(all_projects=True):
            compute.delete_server_group(group, ignore_missing=True)
        for aggregate in compute.aggregates():
            for name in aggregate.hosts or ():
                compute.remove_host_from_aggregate(aggregate, name)
            compute.delete_aggregate(aggregate, ignore_missing=True)
        self._wait_computes_up(self.hosts, None, timeout)

    def _no_live_migration(self) -> bool:
        servers = self.connect().compute.servers(all_projects=True)
        return not any(server.task_state == "migrating" for server in servers)

    def _delete_allocations(self) -> None:
        """Remove allocations left without a server: Nova keeps those a migration held
        when its server is deleted in the middle of it."""
        placement = self.connect().placement
        for provider in placement.resource_providers():
            reply = placement.get(f"/resource_providers/{provider.id}/allocations")
            for consumer in reply.json().get("allocations", {}):
                placement.delete(f"/allocations/{consumer}")

    def _force_up(self, service: Any, timeout: float) -> None:
        """Unset forced_down. Nova refuses while evacuations from the host are not completed,
        which a (re)started nova-compute does first: ask until it accepts."""
        from openstack.exceptions import BadRequestException

        compute = self.connect().compute
        deadline = time.monotonic() + timeout
        while True:
            try:
                compute.update_service_forced_down(service, forced=False)
                return
            except BadRequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(POLL_S)

    def _delete_servers(self, timeout: float) -> None:
        compute = self.connect().compute
        asked: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while True:
            servers = list(compute.servers(all_projects=True))
            if not servers:
                return
            for server in servers:
                # ask again when a delete did not take (the server is back with no task)
                if server.id not in asked or (
                    server.task_state is None and asked[server.id] == "deleting"
                ):
                    compute.delete_server(server, ignore_missing=True)
                    asked[server.id] = "asked"
                elif server.task_state == "deleting":
                    asked[server.id] = "deleting"
            if time.monotonic() > deadline:
                state = [(s.id, s.status, s.task_state, s.compute_host) for s in servers]
                raise TestbedError(f"servers not deleted after {timeout:.0f} s: {state}")
            time.sleep(POLL_S)
