"""A real Cinder on loopback: cinder-api, cinder-scheduler and one cinder-volume per storage host.

:class:`CinderTestbed` starts, from a fresh database, what a small Cinder deployment runs,
each process in its own process group and on free 127.0.0.1 ports:

- cinder-api (``cinder.wsgi.api:application`` in :mod:`testbed.wsgi_serve`), which
  authenticates with :mod:`testbed.cinder_noauth` as nova-api does with
  :mod:`testbed.nova_noauth`: a token ``user:project``, user ``admin`` an admin, any other
  user a member of its project, under Cinder's default policies; a service token (Nova
  sends one) is a service's;
- cinder-scheduler (host ``controller``);
- ``storage_hosts`` cinder-volumes ``storage-1``, ``storage-2``... each its own process,
  ``host`` and state directory, with one backend (:data:`BACKEND`) of ``volume_driver``:
  by default :data:`FILE_DRIVER` (:mod:`testbed.cinder_driver`: Cinder's fake driver with
  each volume a sparse file of its host, which Cinder's generic migration copies), or
  Cinder's own :data:`FAKE_DRIVER` (stores nothing; its iSCSI connections Nova's fake virt
  driver accepts, but a cinder-volume host cannot attach: the migration of a detached
  volume fails). Backend ``storage-N@fake``, pool ``storage-N@fake#fake``
  (:meth:`CinderTestbed.pool`).

They share a PostgreSQL (database ``cinder``) and a RabbitMQ: given (started, e.g. a Nova
testbed's), or started by the testbed itself in a scratch directory.

With a ``nova`` (:class:`testbed.nova.NovaTestbed`) Cinder calls that Nova (its ``[nova]``
section: the admin token, nova-api's URL): a migration of an attached volume asks Nova to
swap the volume, and Nova then completes the migration in Cinder. Nova reaches this Cinder
when it is given to it (``NovaTestbed(cinder=...)``: its ``[cinder]`` section is
:meth:`CinderTestbed.nova_settings`). The port of cinder-api is chosen when the testbed is
made, so either may be made first; :class:`NovaCinderTestbed` does all of that wiring.

It writes ``clouds.yaml`` (cloud ``cinder``, the admin token) with the block-storage
endpoint ``URL/v3`` for openstacksdk and the ``openstack`` CLI (:meth:`CinderTestbed.sdk_settings`;
a Nova testbed given this Cinder adds them to its own ``clouds.yaml``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
import yaml

from testbed.daemon import Daemon, http_ok, run
from testbed.ironic import LOOPBACK, TestbedError, _executable, _tail, free_port
from testbed.postgres import Postgres
from testbed.rabbitmq import RabbitMQ
from testbed.started import Started

if TYPE_CHECKING:
    from openstack.connection import Connection

    from testbed.nova import NovaTestbed

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CLOUD = "cinder"
DATABASE = "cinder"
CONTROLLER_HOST = "controller"
#: The volume backend (``enabled_backends``) of every storage host.
BACKEND = "fake"
#: Cinder's own fake driver: no storage, every call logged.
FAKE_DRIVER = "cinder.tests.fake_driver.FakeLoggingVolumeDriver"
#: The same with each volume a sparse file on its host (:mod:`testbed.cinder_driver`).
FILE_DRIVER = "testbed.cinder_driver.FileVolumeDriver"
#: The block-storage API microversion of the testbed's own requests.
MICROVERSION = "3.60"
#: The microversion of the testbed's ``GET /os-services`` (see :meth:`CinderTestbed.services`).
SERVICES_MICROVERSION = "3.7"
API = "cinder-api"
SCHEDULER = "cinder-scheduler"
VOLUME = "cinder-volume"
#: Seconds between two heartbeats of a service, and without one before it counts as down.
REPORT_INTERVAL = 2
SERVICE_DOWN_TIME = 10
POLL_S = 0.1
START_TIMEOUT_S = 120.0
WAIT_TIMEOUT_S = 120.0
#: Seconds a Cinder process gets to stop on SIGTERM before its group is killed.
STOP_GRACE_S = 8.0
HTTP_TIMEOUT_S = 30.0


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.rstrip("Z")).replace(tzinfo=None)


class CinderTestbed(Started):
    """Cinder's API, scheduler and storage hosts on loopback; see the module docstring."""

    __test__ = False  # not a test class, whatever its name

    def __init__(
        self,
        root: str | os.PathLike[str],
        storage_hosts: int = 2,
        *,
        postgres: Postgres | None = None,
        rabbit: RabbitMQ | None = None,
        nova: NovaTestbed | None = None,
        volume_driver: str = FILE_DRIVER,
    ) -> None:
        """``root`` holds configuration, logs and each host's state (recreated by start).
        ``postgres`` and ``rabbit``, when given, are started servers the testbed uses
        (creating its database) but neither starts nor stops. ``nova``: the Nova that
        Cinder calls (its API URL is read at start, so it may be started after this
        testbed is made, but before it starts)."""
        if storage_hosts < 1:
            raise ValueError("at least one storage host")
        self.root = Path(root).resolve()
        self.cloud = CLOUD
        self.hosts = [f"storage-{n}" for n in range(1, storage_hosts + 1)]
        self.nova = nova
        self.volume_driver = volume_driver
        self.port = free_port()
        self.start_seconds: float | None = None
        self._shared_postgres = postgres
        self._shared_rabbit = rabbit
        self._postgres: Postgres | None = None
        self._rabbit: RabbitMQ | None = None
        self._scratch: Path | None = None
        self._daemons: dict[tuple[str, str], Daemon] = {}
        self._connections: dict[tuple[str, str], Connection] = {}
        self._prepared = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CinderTestbed({str(self.root)!r}, hosts={self.hosts}, api={self.url})"

    # -- where things are ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """cinder-api's root URL (the version document; the API is ``URL/v3/<project>``)."""
        return f"http://{LOOPBACK}:{self.port}"

    def endpoint(self, project: str = "admin") -> str:
        """The block-storage endpoint of ``project``, as a Keystone catalog lists it."""
        return f"{self.url}/v3/{project}"

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
        """Every host: ``controller`` (cinder-api, cinder-scheduler), then the storage hosts."""
        return [CONTROLLER_HOST, *self.hosts]

    def backend(self, host: str) -> str:
        """The volume service's host of storage host ``host``: ``storage-N@fake``."""
        self._check_storage_host(host)
        return f"{host}@{BACKEND}"

    def pool(self, host: str) -> str:
        """The pool of storage host ``host``, which a migration names: ``storage-N@fake#fake``
        (the fake driver calls its only pool ``fake``)."""
        return f"{self.backend(host)}#{BACKEND}"

    def host_config(self, host: str) -> Path:
        """The configuration file the Cinder services of ``host``, and only they, read
        after ``cinder.conf``: ``etc/controller.conf`` or ``etc/storage-N.conf``."""
        if host not in self.host_names:
            raise ValueError(f"unknown host {host!r}; hosts: {self.host_names}")
        return self.etc / f"{host}.conf"

    def config_files(self, host: str) -> list[Path]:
        """The configuration files a Cinder command of ``host`` reads, in order."""
        return [self.etc / "cinder.conf", self.host_config(host)]

    def _check_storage_host(self, host: str) -> None:
        if host not in self.hosts:
            raise ValueError(f"unknown storage host {host!r}; hosts: {self.hosts}")

    def env(self) -> dict[str, str]:
        """Environment variables that point openstack clients at this testbed."""
        return {"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}

    # -- what Nova needs ----------------------------------------------------------------

    def nova_settings(self) -> str:
        """The ``[cinder]`` section of a nova.conf that reaches this Cinder: the user's
        token on the user's project endpoint, the admin token when Nova acts alone (and
        as the service token Nova sends along, ``[service_user]`` of the Nova testbed)."""
        return (
            "\n# Cinder of the testbed (testbed/cinder.py)\n"
            "[cinder]\n"
            "os_region_name = RegionOne\n"
            "auth_type = admin_token\n"
            "token = admin:admin\n"
            f"endpoint = {self.url}/v3\n"
            f"endpoint_template = {self.url}/v3/%(project_id)s\n"
        )

    # -- processes ----------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        """Process (and process group) id of every running process, by name."""
        daemons = list(self._daemons.values())
        if self._rabbit is not None and self._shared_rabbit is None:
            daemons += [self._rabbit.daemon, self._rabbit.epmd]
        if self._postgres is not None and self._shared_postgres is None:
            daemons.append(self._postgres.daemon)
        return {d.name: d.pid for d in daemons if d.pid is not None and d.is_running}

    def memory_mb_used(self) -> float:
        """Proportional set size (PSS) of all the testbed's processes, in MiB."""
        from testbed.nova import pss_mb

        return pss_mb(self.pids().values())

    def daemon(self, service: str, host: str) -> Daemon:
        """The process of ``service`` (cinder-api, cinder-scheduler, cinder-volume) on
        ``host`` (``controller``, ``storage-N``)."""
        found = self._daemons.get((service, host))
        if found is None:
            raise ValueError(f"no {service} on {host}; services: {sorted(self._daemons)}")
        return found

    # -- start and stop -----------------------------------------------------------------

    def start(self) -> None:
        """Start everything from a fresh database; return once every service is up and the
        scheduler knows every storage host's pool. On failure stop all and raise."""
        with self._lock:
            if self._daemons:
                raise TestbedError("the Cinder testbed is already running")
            started = time.monotonic()
            try:
                self._prepare()
                self._start_services()
            except BaseException:
                self._stop()
                raise
            self.start_seconds = time.monotonic() - started

    def prepare(self) -> None:
        """What start does before any Cinder process runs: directories, PostgreSQL and
        RabbitMQ (unless shared), the database and its schema. Needs no Nova, so it may
        run while Nova starts; start does it when it has not been done."""
        with self._lock:
            try:
                self._prepare()
            except BaseException:
                self._stop()
                raise

    def _prepare(self) -> None:
        if self._prepared:
            return
        for sub in ("etc", "logs", "state"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
            (self.root / sub).mkdir(parents=True)
        for host in self.host_names:
            (self.root / "state" / host / "locks").mkdir(parents=True)
        if self._shared_postgres is None or self._shared_rabbit is None:
            # PostgreSQL and RabbitMQ run as their own users, which cannot reach a private
            # directory such as pytest's: they get a scratch directory of their own.
            self._scratch = Path(tempfile.mkdtemp(prefix="ephyra-cinder-"))
            self._scratch.chmod(0o755)
        self._postgres = self._shared_postgres or Postgres(
            self._require_scratch() / "postgres", self.logs / "postgres.log"
        )
        self._rabbit = self._shared_rabbit or RabbitMQ(
            self._require_scratch() / "rabbitmq", self.logs
        )
        with ThreadPoolExecutor(max_workers=1) as pool:
            rabbit = pool.submit(self._rabbit.start) if self._shared_rabbit is None else None
            if self._shared_postgres is None:
                self._postgres.start((DATABASE,))
            else:
                self._postgres.create_databases(DATABASE)
            (self.etc / "manage.conf").write_text(
                f"[database]\nconnection = {self._postgres.url(DATABASE)}\n"
            )
            manage = [_executable("cinder-manage"), "--config-file", str(self.etc / "manage.conf")]
            run([*manage, "db", "sync"], self.logs / "cinder-manage.log", env=self._env())
            if rabbit is not None:
                rabbit.result()
        self._prepared = True

    def _require_scratch(self) -> Path:
        assert self._scratch is not None
        return self._scratch

    def _start_services(self) -> None:
        self._connections.clear()
        self._write_config()
        self._define_daemons()
        # A cinder-volume tells the scheduler its capacity when it starts, then once a
        # minute: the scheduler first, so that it hears them (it serves after its first
        # heartbeat).
        self._daemons[(API, CONTROLLER_HOST)].start()
        self._daemons[(SCHEDULER, CONTROLLER_HOST)].start()
        self._wait(lambda: self._reported(SCHEDULER, CONTROLLER_HOST), "cinder-scheduler serving")
        for host in self.hosts:
            self._daemons[(VOLUME, host)].start()
        self._wait(lambda: http_ok(f"{self.url}/healthcheck"), "cinder-api answering")
        self._wait(self._all_services_up, "every Cinder service up")
        self._wait(self._all_pools_known, "the scheduler knowing every storage host's pool")

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
        self._daemons = {}
        if self._rabbit is not None and self._shared_rabbit is None:
            attempt(self._rabbit.stop)
        if self._postgres is not None and self._shared_postgres is None:
            attempt(self._postgres.stop)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch = None
        self._postgres = self._rabbit = None
        self._prepared = False
        self._connections.clear()
        if errors:
            raise TestbedError("the Cinder testbed did not stop cleanly:\n" + "\n".join(errors))

    # -- configuration ------------------------------------------------------------------

    def _write_config(self) -> None:
        assert self._postgres is not None and self._rabbit is not None
        values = {
            "@DIR@": str(self.root),
            "@TRANSPORT_URL@": self._rabbit.transport_url,
            "@DATABASE@": self._postgres.url(DATABASE),
            "@REPORT_INTERVAL@": str(REPORT_INTERVAL),
            "@SERVICE_DOWN_TIME@": str(SERVICE_DOWN_TIME),
            "@BACKEND@": BACKEND,
            "@VOLUME_DRIVER@": self.volume_driver,
            "@PRIVSEP_HELPER@": _executable("privsep-helper"),
        }
        conf = _rendered("cinder.conf.template", values)
        if self.nova is not None:
            conf += (
                "\n# the Nova of the testbed (testbed/nova.py): Cinder asks it to swap the\n"
                "# volumes of a server when it migrates an attached volume\n"
                "[nova]\n"
                "region_name = RegionOne\n"
                "auth_type = admin_token\n"
                "token = admin:admin\n"
                f"endpoint = {self.nova.api_url}\n"
            )
        (self.etc / "cinder.conf").write_text(conf)
        (self.etc / "api-paste.ini").write_text(_rendered("cinder-api-paste.ini", values))
        for host in self.host_names:
            state = self.root / "state" / host
            self.host_config(host).write_text(
                f"# {host}'s own settings, read after cinder.conf\n"
                f"[DEFAULT]\nhost = {host}\nstate_path = {state}\n"
            )
        self.write_clouds_yaml()

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
        env["PYTHONPATH"] = str(REPO)
        return env

    def _define_daemons(self) -> None:
        def daemon(service: str, host: str, argv: list[str]) -> None:
            name = service if host == CONTROLLER_HOST else f"{service}-{host}"
            confs = [
                arg for conf in self.config_files(host) for arg in ("--config-file", str(conf))
            ]
            log = ["--log-file", str(self.logs / f"{name}.log")]
            self._daemons[(service, host)] = Daemon(
                name,
                [*argv, *confs, *log],
                self.logs / f"{name}.out",
                env=self._env(),
                cwd=self.root,
                grace=STOP_GRACE_S,
            )

        python = _executable("python")
        wsgi = [python, "-m", "testbed.wsgi_serve", "cinder.wsgi.api:application", str(self.port)]
        daemon(API, CONTROLLER_HOST, wsgi)
        daemon(SCHEDULER, CONTROLLER_HOST, [_executable("cinder-scheduler")])
        for host in self.hosts:
            daemon(VOLUME, host, [_executable("cinder-volume")])

    # -- clients ------------------------------------------------------------------------

    def sdk_settings(self) -> dict[str, str]:
        """What openstacksdk/``openstack`` CLI settings need to reach this Cinder: the v3
        endpoint without a project (Cinder takes the token's, microversion 3.67 on), whose
        version document keystoneauth reads (no endpoint with a project has one)."""
        return {
            "block_storage_api_version": "3",
            "volume_api_version": "3",
            "block_storage_endpoint_override": f"{self.url}/v3",
        }

    def cloud_config(self, token: str = "admin:admin") -> dict[str, Any]:
        """The openstacksdk/``openstack`` CLI settings of this Cinder for ``token``
        (``user:project``): the admin token plugin and :meth:`sdk_settings`."""
        return {
            "auth_type": "admin_token",
            "auth": {"token": token, "endpoint": f"{self.url}/v3"},
            "region_name": "RegionOne",
            **self.sdk_settings(),
        }

    def write_clouds_yaml(self) -> Path:
        clouds = {"clouds": {self.cloud: self.cloud_config()}}
        self.clouds_yaml.write_text(yaml.safe_dump(clouds, sort_keys=True))
        return self.clouds_yaml

    def connect(self, project: str | None = None, user: str | None = None) -> Connection:
        """An openstacksdk connection: the admin (roles admin, member, reader) when
        ``project`` is None, else user ``user`` (default ``<project>-user``), a member of
        ``project``. ``conn.block_storage`` is the v3 API of that project."""
        if project is None:
            project, user = "admin", user or "admin"
        user = user or f"{project}-user"
        key = (project, user)
        conn = self._connections.get(key)
        if conn is None:
            import openstack

            config = self.cloud_config(f"{user}:{project}")
            conn = openstack.connect(load_yaml_config=False, load_envvars=False, **config)
            self._connections[key] = conn
        return conn

    def request(
        self,
        method: str,
        path: str,
        *,
        project: str = "admin",
        user: str | None = None,
        json: Mapping[str, Any] | None = None,
        microversion: str = MICROVERSION,
    ) -> requests.Response:
        """One request to ``URL/v3/<project><path>`` as ``user`` (default: ``admin`` for
        project admin, else ``<project>-user``), at ``microversion``."""
        who = user or ("admin" if project == "admin" else f"{project}-user")
        headers = {
            "X-Auth-Token": f"{who}:{project}",
            "OpenStack-API-Version": f"volume {microversion}",
            "Accept": "application/json",
        }
        return requests.request(
            method,
            f"{self.endpoint(project)}{path}",
            headers=headers,
            json=json,
            timeout=HTTP_TIMEOUT_S,
        )

    def _json(self, reply: requests.Response, what: str) -> Any:
        if reply.status_code >= 400:
            raise TestbedError(f"{what}: {reply.status_code} {reply.text}")
        return reply.json() if reply.content else None

    # -- services -----------------------------------------------------------------------

    def services(self) -> list[dict[str, Any]]:
        """``GET /os-services`` (admin): every Cinder service, with its state."""
        # from 3.49 on the listing asks the scheduler (an RPC call) for every backend's state
        reply = self.request("GET", "/os-services", microversion=SERVICES_MICROVERSION)
        return list(self._json(reply, "os-services")["services"])

    def service_states(self) -> dict[tuple[str, str], str]:
        """``up``/``down`` of every service by (binary, host): ``("cinder-volume",
        "storage-1@fake")``, ``("cinder-scheduler", "controller")``."""
        return {(s["binary"], s["host"]): s["state"] for s in self.services()}

    def _service_host(self, service: str, host: str) -> str:
        return self.backend(host) if service == VOLUME else host

    def _reported(self, binary: str, host: str) -> bool:
        """Whether the service has sent a heartbeat (from its database record)."""
        assert self._postgres is not None
        sql = (
            'SELECT count(*) FROM services WHERE "binary" = %s AND host = %s '
            "AND report_count > 0 AND NOT deleted"
        )
        return int(self._postgres.query(DATABASE, sql, binary, host)[0][0]) > 0

    def _all_services_up(self) -> bool:
        states = self.service_states()
        wanted = [(SCHEDULER, CONTROLLER_HOST)] + [(VOLUME, self.backend(h)) for h in self.hosts]
        return all(states.get(key) == "up" for key in wanted)

    def pools(self) -> list[str]:
        """The pools the scheduler knows (``GET /scheduler-stats/get_pools``, admin)."""
        reply = self.request("GET", "/scheduler-stats/get_pools")
        return sorted(p["name"] for p in self._json(reply, "get_pools")["pools"])

    def _all_pools_known(self) -> bool:
        return {self.pool(h) for h in self.hosts} <= set(self.pools())

    def set_service_enabled(self, host: str, enabled: bool) -> None:
        """Enable or disable the cinder-volume of storage host ``host``: the scheduler
        places no new volume on a disabled one. Cinder 29.0.0's ``PUT
        /os-services/enable`` and ``/os-services/disable`` answer 200 but change nothing
        (they save the service without setting ``disabled``; only
        ``disable-log-reason`` disables), so the testbed sets the flag in Cinder's
        database, where they would."""
        assert self._postgres is not None
        sql = (
            "UPDATE services SET disabled = %s, disabled_reason = %s "
            'WHERE host = %s AND "binary" = %s AND NOT deleted'
        )
        reason = None if enabled else "testbed: placing a volume elsewhere"
        self._postgres.execute(DATABASE, sql, not enabled, reason, self.backend(host), VOLUME)

    def stop_service(self, service: str, host: str) -> None:
        """Stop ``service`` on ``host`` (SIGTERM, then SIGKILL after the grace): Cinder
        shows it down once its last heartbeat is :data:`SERVICE_DOWN_TIME` s old."""
        self.daemon(service, host).stop()

    def start_service(self, service: str, host: str, timeout: float = WAIT_TIMEOUT_S) -> None:
        """Start ``service`` on ``host`` again (same database, same configuration as it now
        is) and wait until it serves: cinder-api answering; a scheduler or cinder-volume
        up with a heartbeat since this call, and the pools known to the scheduler (a
        cinder-volume's own; a scheduler's, those of every cinder-volume running)."""
        since = _utcnow()
        self.daemon(service, host).start()
        self.wait_service(service, host, since, timeout)

    def restart(
        self, service: str, host: str, *, timeout: float = WAIT_TIMEOUT_S
    ) -> tuple[int, int]:
        """Restart ``service`` (cinder-api, cinder-scheduler, cinder-volume) of ``host``
        (``controller``, ``storage-N``), as an upgrade does: its process stops and starts
        again with the configuration as it now is. Returns (old pid, new pid) once the
        new process serves (see :meth:`start_service`)."""
        daemon = self.daemon(service, host)
        old = daemon.pid
        self.stop_service(service, host)
        self.start_service(service, host, timeout)
        new = daemon.pid
        assert old is not None and new is not None
        return old, new

    def wait_service(
        self,
        service: str,
        host: str,
        since: datetime | None = None,
        timeout: float = WAIT_TIMEOUT_S,
    ) -> None:
        """Wait until ``service`` of ``host`` serves (see :meth:`start_service`)."""
        if service == API:
            self._wait(lambda: http_ok(f"{self.url}/healthcheck"), "cinder-api answering", timeout)
            return
        service_host = self._service_host(service, host)

        def reported() -> bool:
            for record in self.services():
                if (record["binary"], record["host"]) != (service, service_host):
                    continue
                updated = _parse_time(record.get("updated_at"))
                fresh = since is None or (updated is not None and updated >= since)
                return bool(record["state"] == "up" and fresh)
            return False

        self._wait(reported, f"{service} up on {host}", timeout)
        # the scheduler knows a pool once its cinder-volume reported to it: a new
        # cinder-volume reports when it starts, a new scheduler asks every one to
        hosts = [host] if service == VOLUME else []
        if service == SCHEDULER:
            hosts = [h for (s, h), d in self._daemons.items() if s == VOLUME and d.is_running]
        self._wait(
            lambda: all(self.pool(h) in self.pools() for h in hosts),
            f"pools of {', '.join(hosts)} scheduled",
            timeout,
        )

    def wait_service_state(
        self, service: str, host: str, state: str, timeout: float = WAIT_TIMEOUT_S
    ) -> None:
        """Wait until ``GET /os-services`` shows ``service`` of ``host`` ``state``
        (``up``/``down``), whether its process runs or not."""
        key = (service, self._service_host(service, host))
        deadline = time.monotonic() + timeout
        while self.service_states().get(key) != state:
            if time.monotonic() > deadline:
                raise TestbedError(f"{service} of {host} not {state} after {timeout:.0f} s")
            time.sleep(POLL_S)

    # -- volumes ------------------------------------------------------------------------

    def volume(self, volume_id: str) -> dict[str, Any]:
        """The volume as the admin sees it (with ``os-vol-host-attr:host`` and
        ``os-vol-mig-status-attr:migstat``)."""
        reply = self.request("GET", f"/volumes/{volume_id}")
        return dict(self._json(reply, f"volume {volume_id}")["volume"])

    def volumes(self) -> list[dict[str, Any]]:
        """Every volume of every project (admin view)."""
        reply = self.request("GET", "/volumes/detail?all_tenants=1")
        return list(self._json(reply, "volumes")["volumes"])

    def volume_file(self, volume_id: str) -> Path:
        """Where :data:`FILE_DRIVER` keeps the volume's data: ``state/<host>/volumes/
        volume-<name id>`` of the storage host it is on (after a migration Cinder may keep
        the temporary volume's name, ``os-vol-mig-status-attr:name_id``)."""
        volume = self.volume(volume_id)
        host = self.volume_host(volume)
        if host is None:
            raise TestbedError(f"volume {volume_id} is on no host")
        name_id = volume.get("os-vol-mig-status-attr:name_id") or volume["id"]
        return self.root / "state" / host / "volumes" / f"volume-{name_id}"

    @staticmethod
    def volume_host(volume: Mapping[str, Any]) -> str | None:
        """The storage host a volume is on (``storage-1`` of ``storage-1@fake#fake``)."""
        host = volume.get("os-vol-host-attr:host")
        return str(host).partition("@")[0] if host else None

    def create_volume(
        self,
        size: int = 1,
        project: str = "demo",
        host: str | None = None,
        name: str | None = None,
        wait: bool = True,
        timeout: float = WAIT_TIMEOUT_S,
    ) -> str:
        """Create a volume of ``size`` GB in ``project`` (as ``<project>-user``) and return
        its id; with ``host``, on that storage host: the cinder-volumes of the other
        hosts are disabled (:meth:`set_service_enabled`) until the scheduler has placed it
        (a volume created meanwhile lands there too). Waits until it is ``available``
        unless ``wait`` is false."""
        others = [h for h in self.hosts if h != host] if host is not None else []
        if host is not None:
            self._check_storage_host(host)
        body = {"volume": {"size": size, "name": name or f"volume-{time.monotonic_ns()}"}}
        try:
            for other in others:
                self.set_service_enabled(other, False)
            reply = self.request("POST", "/volumes", project=project, json=body)
            volume_id = str(self._json(reply, "create volume")["volume"]["id"])
            if host is not None:
                self._wait(
                    lambda: self.volume_host(self.volume(volume_id)) is not None,
                    f"volume {volume_id} scheduled",
                    timeout,
                )
        finally:
            for other in others:
                self.set_service_enabled(other, True)
        if wait:
            self.wait_volume(volume_id, "available", timeout=timeout)
        return volume_id

    def wait_volume(
        self,
        volume_id: str,
        status: str | Iterable[str],
        *,
        migration_status: str | None = None,
        host: str | None = None,
        timeout: float = WAIT_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Poll (every 0.1 s) until the volume has ``status`` (one or several), and
        ``migration_status`` and is on storage host ``host`` when given; raise when it goes
        to ``error`` (or its migration does) or on time-out. Returns the volume."""
        statuses = {status} if isinstance(status, str) else set(status)
        deadline = time.monotonic() + timeout
        while True:
            volume = self.volume(volume_id)
            migstat = volume.get("os-vol-mig-status-attr:migstat")
            if volume["status"] in ("error", "error_deleting") and volume["status"] not in statuses:
                raise TestbedError(f"volume {volume_id} went to {volume['status']}")
            if migstat == "error" and migration_status not in (None, "error"):
                raise TestbedError(f"migration of volume {volume_id} failed: {volume}")
            if (
                volume["status"] in statuses
                and (migration_status is None or migstat == migration_status)
                and (host is None or self.volume_host(volume) == host)
            ):
                return volume
            if time.monotonic() > deadline:
                state = (volume["status"], migstat, volume.get("os-vol-host-attr:host"))
                raise TestbedError(
                    f"volume {volume_id} not {sorted(statuses)} "
                    f"(migration {migration_status}, host {host}) after {timeout:.0f} s: {state}"
                )
            time.sleep(POLL_S)

    def migrate(
        self, volume_id: str, host: str, *, force_host_copy: bool = False
    ) -> requests.Response:
        """Ask Cinder (as the admin) to migrate the volume to the pool of storage host
        ``host``: ``POST /volumes/{id}/action {"os-migrate_volume": ...}``. Returns the
        reply (202 when accepted); the migration goes on in the background."""
        body = {
            "os-migrate_volume": {
                "host": self.pool(host),
                "force_host_copy": force_host_copy,
                "lock_volume": False,
            }
        }
        return self.request("POST", f"/volumes/{volume_id}/action", json=body)

    def delete_volumes(self, timeout: float = WAIT_TIMEOUT_S) -> None:
        """Delete every volume of every project (the admin resets first any that is not
        ``available`` or ``error``, is attached or is migrating), and wait until none is
        left."""
        deadline = time.monotonic() + timeout
        while True:
            volumes = self.volumes()
            if not volumes:
                return
            for volume in volumes:
                if volume["status"] == "deleting":
                    continue
                path = f"/volumes/{volume['id']}"
                if (
                    volume["status"] not in ("available", "error")
                    or volume.get("attachments")
                    or volume.get("os-vol-mig-status-attr:migstat")
                    not in (None, "success", "error")
                ):
                    reset = {"status": "available", "attach_status": "detached"}
                    reset["migration_status"] = "none"
                    self.request("POST", f"{path}/action", json={"os-reset_status": reset})
                self.request("DELETE", f"{path}?cascade=true&force=true")
            if time.monotonic() > deadline:
                left = [(v["id"], v["status"]) for v in volumes]
                raise TestbedError(f"volumes not deleted after {timeout:.0f} s: {left}")
            time.sleep(POLL_S)

    # -- waiting ------------------------------------------------------------------------

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT_S) -> None:
        """Poll ``ready``; raise if it is not true in time or a Cinder process died."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                if ready():
                    return
            except Exception as exc:  # not answering yet
                last_error = exc
            for daemon in self._daemons.values():
                if daemon.pid is not None and not daemon.is_running:
                    tail = self.log_tail(daemon.name)
                    raise TestbedError(f"{daemon.name} died while waiting for {what}:\n{tail}")
            if time.monotonic() > deadline:
                reason = f" (last error: {last_error})" if last_error else ""
                raise TestbedError(f"not {what} after {timeout:.0f} s{reason}")
            time.sleep(POLL_S)

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last lines of the log and output of process ``name`` (``cinder-api``,
        ``cinder-volume-storage-1``...)."""
        parts = []
        for path in (self.logs / f"{name}.log", self.logs / f"{name}.out"):
            if path.exists():
                parts.append(_tail(path, lines))
        return "\n".join(parts)


def _rendered(template: str, values: Mapping[str, str]) -> str:
    text = (HERE / template).read_text()
    for key, value in values.items():
        text = text.replace(key, value)
    return text


class NovaCinderTestbed(Started):
    """A Nova testbed and a Cinder testbed that call each other, on one PostgreSQL and one
    RabbitMQ: ``nova`` (:class:`testbed.nova.NovaTestbed`, ``computes`` nova-computes) and
    ``cinder`` (:class:`CinderTestbed`, ``storage_hosts`` cinder-volumes), in
    ``ROOT/nova`` and ``ROOT/cinder``. Cinder's schema is made while Nova starts; the
    Cinder services start once nova-api's URL is known."""

    __test__ = False

    def __init__(
        self,
        root: str | os.PathLike[str],
        computes: int = 1,
        storage_hosts: int = 2,
        *,
        volume_driver: str = FILE_DRIVER,
        **nova_options: Any,
    ) -> None:
        """``nova_options``: more arguments of :class:`testbed.nova.NovaTestbed` (not
        ``keystone``: this Cinder authenticates with the testbed's tokens only)."""
        from testbed.nova import NovaTestbed

        self.root = Path(root).resolve()
        self.start_seconds: float | None = None
        # PostgreSQL and RabbitMQ run as their own users, which cannot reach a private
        # directory such as pytest's: they get a scratch directory, made at start.
        self._scratch = Path(tempfile.gettempdir()) / f"ephyra-nova-cinder-{uuid.uuid4().hex[:12]}"
        logs = self.root / "logs"
        self.postgres = Postgres(self._scratch / "postgres", logs / "postgres.log")
        self.rabbit = RabbitMQ(self._scratch / "rabbitmq", logs)
        self.cinder = CinderTestbed(
            self.root / "cinder",
            storage_hosts,
            postgres=self.postgres,
            rabbit=self.rabbit,
            volume_driver=volume_driver,
        )
        self.nova = NovaTestbed(
            self.root / "nova",
            computes,
            postgres=self.postgres,
            rabbit=self.rabbit,
            cinder=self.cinder,
            **nova_options,
        )
        self.cinder.nova = self.nova
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NovaCinderTestbed({self.nova!r}, {self.cinder!r})"

    def start(self) -> None:
        """Start PostgreSQL and RabbitMQ, then Nova while Cinder's schema is made, then
        Cinder. On failure stop all and raise."""
        with self._lock:
            started = time.monotonic()
            try:
                (self.root / "logs").mkdir(parents=True, exist_ok=True)
                self._scratch.mkdir(mode=0o755)
                self._scratch.chmod(0o755)
                with ThreadPoolExecutor(max_workers=1) as pool:
                    broker = pool.submit(self.rabbit.start)
                    self.postgres.start()
                    broker.result()
                with ThreadPoolExecutor(max_workers=1) as pool:
                    schema = pool.submit(self.cinder.prepare)
                    self.nova.start()
                    schema.result()
                self.cinder.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    self._stop()
                raise
            self.start_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stop Cinder, Nova, then RabbitMQ and PostgreSQL."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        errors: list[str] = []
        for action in (self.cinder.stop, self.nova.stop, self.rabbit.stop, self.postgres.stop):
            try:
                action()
            except Exception as exc:
                errors.append(str(exc))
        shutil.rmtree(self._scratch, ignore_errors=True)
        if errors:
            raise TestbedError(
                "the Nova and Cinder testbed did not stop cleanly:\n" + "\n".join(errors)
            )

    def pids(self) -> dict[str, int]:
        """Every running process of both, and of PostgreSQL and RabbitMQ."""
        found = {**self.nova.pids(), **{f"cinder:{k}": v for k, v in self.cinder.pids().items()}}
        for daemon in (self.rabbit.daemon, self.rabbit.epmd, self.postgres.daemon):
            if daemon.pid is not None and daemon.is_running:
                found[daemon.name] = daemon.pid
        return found

    def memory_mb_used(self) -> float:
        """Proportional set size (PSS) of every process, in MiB."""
        from testbed.nova import pss_mb

        return pss_mb(self.pids().values())
