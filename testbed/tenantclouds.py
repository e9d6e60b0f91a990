"""Two OpenStack clouds sharing one Keystone, to move a tenant from one to the other.

:class:`TwoClouds` starts clouds ``a`` (region ``A``) and ``b`` (region ``B``) with the
services of a started :class:`testbed.keystone.Keystone`. Each :class:`Cloud` has its own
PostgreSQL and RabbitMQ, shared by its own Nova (API, conductor, scheduler, Placement and
``computes`` nova-computes, :class:`testbed.nova.NovaTestbed` with Keystone auth), its own
Glance and its own Neutron (ML2 without agents), and with ``baremetal`` an Ironic whose
nodes are Nova's (:mod:`testbed.baremetal`). Every service of a cloud is in Keystone's
catalog in the cloud's region (:mod:`testbed.catalog`), and so is Keystone itself.

It writes ``clouds.yaml`` with the admin's entries ``a`` and ``b`` (nothing but Keystone's
URL and a region: clients find every service in the catalog); :meth:`TwoClouds.add_project`
makes a project with a member and a reader and adds their entries (``a-PROJECT-member``,
``b-PROJECT-reader``...). The two clouds start in parallel, each cloud's Glance, Neutron
and Nova too once its PostgreSQL and RabbitMQ are up.

Host names are unique across the clouds: ``a`` has ``compute-1``... and ``b`` the next
numbers (``compute-3``, ``compute-4`` with two computes each). A compute host can be
handed over from one cloud to the other by :mod:`testbed.handover`, whose commands
:meth:`TwoClouds.handover_commands` gives as shell templates; it reads ``handover.json``,
written beside ``clouds.yaml``.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from testbed import catalog, handover, seed
from testbed.glance import Glance
from testbed.ironic import IronicService, TestbedError, _executable
from testbed.nova import MICROVERSION, POLL_S, REPO, WAIT_TIMEOUT_S, NovaTestbed, pss_mb
from testbed.postgres import Postgres
from testbed.rabbitmq import RabbitMQ
from testbed.started import Started

if TYPE_CHECKING:
    from openstack.connection import Connection

    from testbed.daemon import Daemon
    from testbed.keystone import Keystone
    from testbed.neutron import Neutron

#: Cloud name -> region.
REGIONS = {"a": "A", "b": "B"}
#: The roles of a project's users, each user named ``PROJECT-ROLE``.
ROLES = ("member", "reader")
#: Databases of a cloud's PostgreSQL besides Nova's.
DATABASES = ("glance", "neutron")


def _together(*tasks: Callable[[], object]) -> None:
    """Run ``tasks`` in parallel threads; raise the first error once all have ended."""
    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        futures = [pool.submit(task) for task in tasks]
    for future in futures:
        future.result()


def write_ahead_log(keystone: Keystone) -> None:
    """Switch ``keystone``'s SQLite database to write-ahead logging (it stays so). Two
    clouds' services authenticate and validate tokens at once: in SQLite's default mode
    the readers starve a writer (Keystone writes a user's ``last_active_at`` at each
    login), which fails with "database is locked" after 5 s; with a write-ahead log
    readers never block the writer."""
    database = keystone.dir / "keystone.sqlite"
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise TestbedError(f"{database}: journal mode {mode}, not wal")


class Cloud:
    """One cloud: PostgreSQL, RabbitMQ, Glance, Neutron and Nova in region ``region``."""

    def __init__(
        self,
        name: str,
        root: Path,
        keystone: Keystone,
        region: str,
        computes: int = 2,
        *,
        image: bool = True,
        network: bool = True,
        first_host: int = 1,
        baremetal: bool = False,
    ) -> None:
        """``image``/``network`` false: no Glance/Neutron, Nova's stand-in answers instead.
        ``first_host``: the number of the first compute (``compute-<first_host>``).
        ``baremetal``: an Ironic too (Keystone auth, fake hardware), whose nodes are Nova's
        through one more nova-compute, ``ironic-<name>``, with Nova's ironic driver."""
        self.name = name
        self.root = root
        self.keystone = keystone
        self.region = region
        self.computes = computes
        self.image = image
        self.network = network
        self.first_host = first_host
        self.baremetal = baremetal
        self.start_seconds: float | None = None
        self._scratch: Path | None = None
        self.postgres: Postgres | None = None
        self.rabbit: RabbitMQ | None = None
        self.glance: Glance | None = None
        self.neutron: Neutron | None = None
        self.nova: NovaTestbed | None = None
        self.ironic: IronicService | None = None

    def __repr__(self) -> str:
        return f"Cloud({self.name!r}, region={self.region!r})"

    def start(self) -> None:
        """Start every service; on failure stop what started and raise."""
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started

    def _start(self) -> None:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # PostgreSQL and RabbitMQ run as their own users: a directory they can reach.
        self._scratch = Path(tempfile.mkdtemp(prefix=f"ephyra-cloud-{self.name}-"))
        self._scratch.chmod(0o755)
        postgres = self.postgres = Postgres(self._scratch / "postgres", logs / "postgres.log")
        rabbit = self.rabbit = RabbitMQ(self._scratch / "rabbitmq", logs)
        databases = (*DATABASES, "ironic") if self.baremetal else DATABASES
        if self.baremetal:
            self.ironic = IronicService(
                f"ironic-{self.name}",
                0,
                self.root / "ironic",
                keystone=self.keystone,
                region=self.region,
                database_url=postgres.url("ironic"),
            )
            self.ironic.workdir.mkdir(parents=True, exist_ok=True)

        def database() -> None:
            postgres.start(databases)
            if self.ironic is not None:  # its database first
                self.ironic.start()

        _together(rabbit.start, database)
        if self.ironic is not None:  # in the catalog before Nova's ironic driver looks
            catalog.register(self.keystone, "baremetal", "ironic", self.ironic.url, self.region)
        if self.image:
            self.glance = Glance(
                self.root / "glance", self.keystone, database_url=postgres.url("glance")
            )
        if self.network:
            # imported here: Neutron's mechanism driver imports neutron_lib (about 1 s)
            from testbed.neutron import Neutron

            self.neutron = Neutron(
                self.root / "neutron",
                self.keystone,
                database_url=postgres.url("neutron"),
                transport_url=rabbit.transport_url,
            )
        self.nova = NovaTestbed(
            self.root / "nova",
            computes=self.computes,
            keystone=self.keystone,
            region=self.region,
            glance_url=self.glance.url if self.glance is not None else None,
            neutron_url=self.neutron.url if self.neutron is not None else None,
            postgres=postgres,
            rabbit=rabbit,
            first_host=self.first_host,
            baremetal_host=f"ironic-{self.name}" if self.baremetal else None,
        )
        services = [s for s in (self.glance, self.neutron, self.nova) if s is not None]
        _together(*(service.start for service in services))

    def stop(self) -> None:
        """Stop every service that runs (Nova, Glance and Neutron before what they use)."""
        errors: list[str] = []

        def attempt(action: Callable[[], None]) -> None:
            try:
                action()
            except Exception as exc:
                errors.append(str(exc))

        services = (self.nova, self.ironic, self.glance, self.neutron, self.rabbit, self.postgres)
        for service in services:
            if service is not None:
                attempt(service.stop)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch = None
        if errors:
            raise TestbedError(f"cloud {self.name} did not stop cleanly:\n" + "\n".join(errors))

    def clean(self) -> None:
        """No server, no server group (:meth:`NovaTestbed.clean`), then no node in Ironic."""
        if self.nova is not None:
            self.nova.clean()
            if self.ironic is not None:
                seed.clear(self.nova.connect())

    def endpoints(self) -> dict[str, tuple[str, str]]:
        """(name, URL) of every service of this cloud, by service type (the stand-in's
        for images and networks when Glance or Neutron is off)."""
        assert self.nova is not None
        nova = self.nova
        found = {
            "identity": ("keystone", self.keystone.url),
            "compute": ("nova", nova.api_url),
            "placement": ("placement", nova.placement_url),
            "image": ("glance", self.glance.url if self.glance else nova.stub_url),
            "network": ("neutron", self.neutron.url if self.neutron else nova.stub_url),
        }
        if self.ironic is not None:
            found["baremetal"] = ("ironic", self.ironic.url)
        return found

    def register(self, conn: Any = None) -> None:
        """Put every service of this cloud in Keystone's catalog, in its region."""
        catalog.register_region(self.keystone, self.region, self.endpoints(), conn=conn)

    def _daemons(self) -> list[Daemon]:
        daemons = [s.daemon for s in (self.glance, self.neutron, self.postgres) if s is not None]
        if self.rabbit is not None:
            daemons += [self.rabbit.daemon, self.rabbit.epmd]
        return daemons

    def pids(self) -> list[int]:
        """Process group ids of every running process of the cloud."""
        own = [d.pid for d in self._daemons() if d.pid is not None and d.is_running]
        if self.ironic is not None and self.ironic.pid is not None and self.ironic.is_running:
            own.append(self.ironic.pid)
        return [*own, *(self.nova.pids().values() if self.nova is not None else ())]

    def memory_mb_used(self) -> float:
        """Proportional set size (PSS) of all the cloud's processes, in MiB."""
        return pss_mb(self.pids())


class TwoClouds(Started):
    """Clouds ``a`` and ``b`` on one Keystone; see the module docstring."""

    __test__ = False

    def __init__(
        self,
        root: str | Path,
        keystone: Keystone,
        *,
        computes: int = 2,
        image: bool = True,
        network: bool = True,
        baremetal: bool = False,
    ) -> None:
        """``image``/``network``/``baremetal``: see :class:`Cloud`."""
        self.root = Path(root).resolve()
        self.keystone = keystone
        self.clouds = {
            name: Cloud(
                name,
                self.root / name,
                keystone,
                region,
                computes,
                image=image,
                network=network,
                first_host=1 + index * computes,
                baremetal=baremetal,
            )
            for index, (name, region) in enumerate(REGIONS.items())
        }
        self.start_seconds: float | None = None
        self._entries: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"TwoClouds({str(self.root)!r})"

    @property
    def a(self) -> Cloud:
        return self.clouds["a"]

    @property
    def b(self) -> Cloud:
        return self.clouds["b"]

    @property
    def clouds_yaml(self) -> Path:
        return self.root / "clouds.yaml"

    @property
    def handover_json(self) -> Path:
        """The clouds document of :mod:`testbed.handover`."""
        return self.root / handover.CONFIG_NAME

    def env(self) -> dict[str, str]:
        """Environment variables that point openstack clients at these clouds."""
        return {"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}

    def handover_commands(self) -> dict[str, str]:
        """The shell templates of the hand-over commands (:mod:`testbed.handover`):
        ``release`` with ``{host}``, ``adopt`` with ``{host}`` and ``{cloud}``, ``discover``
        with ``{cloud}``. Absolute paths only: they run from any directory, with or without
        ``OS_*`` variables."""
        env = shutil.which("env") or "/usr/bin/env"
        prefix = shlex.join(
            [
                env,
                f"PYTHONPATH={REPO}",
                _executable("python"),
                "-P",  # not the working directory's own testbed, if it has one
                "-m",
                "testbed.handover",
                "--clouds",
                str(self.handover_json),
            ]
        )
        return {
            "release": f"{prefix} release {{host}}",
            "adopt": f"{prefix} adopt {{host}} {{cloud}}",
            "discover": f"{prefix} discover {{cloud}}",
        }

    def start(self) -> None:
        """Start both clouds at once, register them in the catalog, write clouds.yaml."""
        started = time.monotonic()
        write_ahead_log(self.keystone)
        try:
            _together(*(cloud.start for cloud in self.clouds.values()))
            conn = catalog.admin(self.keystone)
            for cloud in self.clouds.values():
                cloud.register(conn)
        except BaseException:
            self.stop()
            raise
        for name in self.clouds:
            self._entries[name] = self._entry("admin", self.keystone.admin_password, "admin", name)
        self.write_clouds_yaml()
        roots = {name: cloud.nova.root for name, cloud in self.clouds.items() if cloud.nova}
        handover.write_config(self.handover_json, roots)
        self.start_seconds = time.monotonic() - started

    def stop(self) -> None:
        errors = []
        for cloud in self.clouds.values():
            try:
                cloud.stop()
            except TestbedError as exc:
                errors.append(str(exc))
        if errors:
            raise TestbedError("\n".join(errors))

    def clean(self) -> None:
        """Both clouds back to no server, no server group and no bare-metal node, every
        compute home (:meth:`bring_hosts_home`) and up (:meth:`NovaTestbed.clean`);
        images, networks and projects stay."""
        self.bring_hosts_home()
        _together(*(cloud.clean for cloud in self.clouds.values()))

    def away(self) -> dict[str, handover.Serving]:
        """The computes handed over (:mod:`testbed.handover`) and not back home: what each
        serves (or left, when released), by host."""
        found = {}
        for name, cloud in self.clouds.items():
            if cloud.nova is None:
                continue
            for host in cloud.nova.hosts:
                now = handover.serving(cloud.nova.etc / f"{host}.conf", name)
                if now.cloud != name or now.released:
                    found[host] = now
        return found

    def bring_hosts_home(self, timeout: float = WAIT_TIMEOUT_S) -> list[str]:
        """Hand every compute that is away back to its own cloud, as an operator would:
        release it, delete its servers and its compute service in the cloud it served,
        adopt it home, wait until it is up there and map it. Returns the hosts moved."""
        away = self.away()
        if not away:
            return []
        clouds = handover.Clouds.load(self.handover_json)
        homes = set()
        for host, now in sorted(away.items()):
            home = clouds.owner(host)
            handover.release(clouds, host)
            if now.cloud != home:
                self._forget(self.clouds[now.cloud], host, timeout)
            handover.adopt(clouds, host, home)
            homes.add(home)
        for host in away:
            nova = self.clouds[clouds.owner(host)].nova
            assert nova is not None
            nova.wait_service(host, timeout=timeout)
        for home in sorted(homes):
            handover.discover(clouds, home)
        return sorted(away)

    @staticmethod
    def _forget(cloud: Cloud, host: str, timeout: float) -> None:
        """Delete ``host``'s servers and its (stopped) compute service in ``cloud``."""
        from openstack.exceptions import ConflictException

        assert cloud.nova is not None
        compute = cloud.nova.connect().compute
        for server in compute.servers(all_projects=True, compute_host=host):
            compute.delete_server(server, ignore_missing=True)
        deadline = time.monotonic() + timeout
        while True:
            services = [s for s in compute.services(binary="nova-compute") if s.host == host]
            if not services:
                return
            service = services[0]
            reply = compute.put(
                f"/os-services/{service.id}", json={"forced_down": True}, microversion="2.53"
            )
            if reply.status_code != 200:
                raise TestbedError(f"{cloud.name}: forcing {host} down: {reply.text}")
            try:
                compute.delete_service(service, ignore_missing=True)
            except ConflictException:  # servers still being deleted
                if time.monotonic() > deadline:
                    raise
                time.sleep(POLL_S)

    def memory_mb_used(self) -> float:
        """PSS of every process of both clouds, in MiB (Keystone not included)."""
        return sum(cloud.memory_mb_used() for cloud in self.clouds.values())

    # -- users and clouds.yaml ------------------------------------------------------------

    def _entry(self, user: str, password: str, project: str, cloud: str) -> dict[str, Any]:
        entry = self.keystone.clouds_entry(user, password, project)
        entry["region_name"] = self.clouds[cloud].region
        entry["compute_api_version"] = MICROVERSION
        return entry

    def write_clouds_yaml(self) -> Path:
        clouds = {"clouds": self._entries}
        self.clouds_yaml.write_text(yaml.safe_dump(clouds, sort_keys=True))
        return self.clouds_yaml

    @staticmethod
    def entry_name(cloud: str, project: str, role: str) -> str:
        """The clouds.yaml entry of ``project``'s user with ``role`` on ``cloud``."""
        return f"{cloud}-{project}-{role}"

    def add_project(self, project: str, roles: Iterable[str] = ROLES) -> dict[str, str]:
        """Make project ``project`` (Default domain) and, for each of ``roles``, a user
        ``PROJECT-ROLE`` (password ``PROJECT-ROLE-password``) with that role on it, each
        only if missing; add their entries to clouds.yaml for both clouds. Returns the
        password of each user by role."""
        identity = catalog.admin(self.keystone).identity
        found = identity.find_project(project, domain_id="default")
        if found is None:
            found = identity.create_project(name=project, domain_id="default")
        passwords = {}
        for role in roles:
            name, password = f"{project}-{role}", f"{project}-{role}-password"
            user = identity.find_user(name, domain_id="default")
            if user is None:
                user = identity.create_user(
                    name=name, password=password, domain_id="default", default_project_id=found.id
                )
            identity.assign_project_role_to_user(found, user, identity.find_role(role))
            passwords[role] = password
            for cloud in self.clouds:
                self._entries[self.entry_name(cloud, project, role)] = self._entry(
                    name, password, project, cloud
                )
        self.write_clouds_yaml()
        return passwords

    def connect(self, entry: str) -> Connection:
        """An openstacksdk connection for clouds.yaml entry ``entry`` (``a``, ``b`` or one
        :meth:`add_project` wrote); its compute proxy speaks microversion MICROVERSION."""
        from openstack import connection
        from openstack.config import loader

        config = loader.OpenStackConfig(
            config_files=[str(self.clouds_yaml)], load_envvars=False
        ).get_one(cloud=entry)
        conn = connection.Connection(config=config)
        conn.compute.default_microversion = MICROVERSION
        return conn
