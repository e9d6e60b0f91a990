"""Real Ironic control planes on loopback: one standalone all-in-one ``ironic`` per plane.

Each :class:`IronicService` owns a work directory (config, sqlite DB, logs, locks) and runs
``ironic`` in its own process group, so that stopping or killing it also reaches the worker
process it forks. :class:`Testbed` starts several of them in parallel and writes the
``clouds.yaml`` that openstacksdk and the ``openstack`` CLI read.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from testbed import catalog
from testbed.started import Started

if TYPE_CHECKING:
    from openstack.connection import Connection

    from testbed.keystone import Keystone

LOOPBACK = "127.0.0.1"
TEMPLATE = Path(__file__).with_name("ironic.conf.template")
STOP_GRACE_S = 10.0

#: Delay options of Ironic's ``[fake]`` group (ironic/conf/fake.py), in seconds.
FAKE_DELAY_OPTIONS = (
    "power_delay",
    "boot_delay",
    "deploy_delay",
    "vendor_delay",
    "management_delay",
    "inspect_delay",
    "raid_delay",
    "bios_delay",
    "storage_delay",
    "rescue_delay",
    "firmware_delay",
)

#: Test-only policy: the API returns BMC passwords and instance secrets unmasked.
SHOW_SECRETS_POLICY = {"show_password": "@", "show_instance_secrets": "@"}


class TestbedError(RuntimeError):
    """A testbed service could not be started or stopped."""

    __test__ = False  # not a test class, whatever its name


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _executable(name: str) -> str:
    """``name`` from the running interpreter's bin directory, else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise TestbedError(f"{name!r} not found next to {sys.executable} nor on PATH")
    return found


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _wait_group_gone(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Reap the leader and wait until no live process is left in its group."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.poll()
        if proc.returncode is not None and not _group_members(proc.pid):
            return True
        time.sleep(0.05)
    return False


def stop_process_group(pgid: int, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM a process group another process started; SIGKILL it after ``grace`` seconds."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _group_members(pgid):
        if time.monotonic() > deadline:
            _signal_group(pgid, signal.SIGKILL)
            break
        time.sleep(0.05)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class IronicService:
    """One standalone Ironic (API + conductor in one process) with fake hardware: noauth,
    or with a ``keystone`` (:class:`testbed.keystone.Keystone`, started) whose tokens its
    API validates (keystonemiddleware, no token cache) under Ironic's default policies,
    logging in as the testbed's services (:func:`testbed.catalog.service_user`) and
    telling Nova of power changes through the catalog of ``region``."""

    def __init__(
        self,
        name: str,
        port: int,
        workdir: str | os.PathLike[str],
        *,
        show_secrets: bool = False,
        fake_delay: float = 0.0,
        fake_delays: Mapping[str, float] | None = None,
        start_timeout: float = 60.0,
        keystone: Keystone | None = None,
        region: str = "RegionOne",
        database_url: str | None = None,
    ) -> None:
        """``fake_delay`` slows the fake deploy interface: each of its calls sleeps that long,
        and deploy and undeploy each make two (so each takes about twice the delay).
        ``fake_delays`` sets any ``[fake]`` option, e.g. ``{"power_delay": 2}``. Ironic reads
        these options as whole seconds: fractions are rounded up, so a step lasts at least
        the delay asked for."""
        unknown = set(fake_delays or {}) - set(FAKE_DELAY_OPTIONS)
        if unknown:
            known = ", ".join(FAKE_DELAY_OPTIONS)
            raise ValueError(f"unknown [fake] options {sorted(unknown)}; known: {known}")
        self.name = name
        self.port = port or free_port()
        self.workdir = Path(workdir).resolve()
        self.show_secrets = show_secrets
        delays = {"deploy_delay": fake_delay, **(fake_delays or {})}
        if any(value < 0 for value in delays.values()):
            raise ValueError(f"negative delay in {delays}")
        self.delays = {key: math.ceil(value) for key, value in delays.items()}
        self.start_timeout = start_timeout
        self.keystone = keystone
        self.region = region
        #: a database server's URL (PostgreSQL): Ironic's API, conductor and Nova's
        #: driver writing at once make SQLite answer "database is locked"
        self.database_url = database_url
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IronicService({self.name!r}, {self.url}, running={self.is_running})"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.workdir / "ironic.conf"

    @property
    def log_file(self) -> Path:
        return self.workdir / "ironic.log"

    @property
    def db_file(self) -> Path:
        return self.workdir / "ironic.sqlite"

    @property
    def pid(self) -> int | None:
        """Process id of the ``ironic`` leader, which is also its process group id."""
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the live processes of this Ironic."""
        if self._proc is None:
            return 0.0
        total = 0
        for pid in _group_members(self._proc.pid):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def write_config(self) -> Path:
        """Write ``ironic.conf`` and the policy file into the work directory."""
        (self.workdir / "locks").mkdir(parents=True, exist_ok=True)
        policy = self.workdir / "policy.yaml"
        policy.write_text(yaml.safe_dump(SHOW_SECRETS_POLICY if self.show_secrets else {}))
        fake = "\n".join(f"{key} = {value}" for key, value in sorted(self.delays.items()))
        text = (
            TEMPLATE.read_text()
            .replace("@NAME@", self.name)
            .replace("@PORT@", str(self.port))
            .replace("@DIR@", str(self.workdir))
            .replace("@POLICY@", str(policy))
            .replace("@FAKE_OPTIONS@", fake)
        )
        if self.database_url is not None:
            text = text.replace(f"sqlite:///{self.db_file}", self.database_url)
        if self.keystone is not None:
            text = text.replace("auth_strategy = noauth", "auth_strategy = keystone")
            text += self._keystone_options(self.keystone)
        self.config_file.write_text(text)
        return self.config_file

    def _keystone_options(self, keystone: Keystone) -> str:
        login = f"auth_url = {keystone.url}\n{catalog.service_user(keystone)}\n"
        return (
            "\n[keystone_authtoken]\n"
            f"www_authenticate_uri = {keystone.url}\n{login}"
            "# no token cache: a role taken away counts at the next request\n"
            "token_cache_time = -1\n"
            "\n[nova]\n"
            f"{login}region_name = {self.region}\nvalid_interfaces = public\n"
        )

    def _create_schema(self) -> None:
        made = self.workdir / "schema-created"
        if self.db_file.exists() or made.exists():
            return
        cmd = [_executable("ironic-dbsync"), "--config-file", str(self.config_file)]
        with open(self.workdir / "dbsync.log", "wb") as log:
            done = subprocess.run(
                [*cmd, "create_schema"], stdout=log, stderr=subprocess.STDOUT, check=False
            )
        if done.returncode != 0:
            raise TestbedError(f"{self.name}: create_schema failed, see {self.workdir}/dbsync.log")
        made.touch()

    def start(self) -> float:
        """Write the config, create the DB once, start Ironic and wait until its API answers.

        Returns the seconds it took.
        """
        with self._lock:
            if self.is_running:
                raise TestbedError(f"{self.name} is already running")
            started = time.monotonic()
            self.write_config()
            self._create_schema()
            with open(self.workdir / "stdout.log", "ab") as out:
                self._proc = subprocess.Popen(
                    [_executable("ironic"), "--config-file", str(self.config_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=self.workdir,
                )
            self._wait_ready(started + self.start_timeout)
            return time.monotonic() - started

    def _answers(self) -> bool:
        # with Keystone, only the API's root answers without a token
        path = "/v1/nodes" if self.keystone is None else "/"
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=1.0) as reply:
                return int(reply.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._answers():
                return
            if self._proc.poll() is not None:
                raise TestbedError(
                    f"{self.name}: ironic exited with {self._proc.returncode}:\n"
                    f"{_tail(self.log_file)}\n{_tail(self.workdir / 'stdout.log')}"
                )
            time.sleep(0.1)
        self._kill_group()
        raise TestbedError(f"{self.name}: no answer on {self.url} in time:\n{_tail(self.log_file)}")

    def stop(self) -> None:
        """SIGTERM the process group; SIGKILL it if still alive after 10 s."""
        with self._lock:
            if self._proc is None:
                return
            _signal_group(self._proc.pid, signal.SIGTERM)
            if not _wait_group_gone(self._proc, STOP_GRACE_S):
                self._kill_group()
            self._proc = None

    def kill(self) -> None:
        """SIGKILL the process group at once, as when a control plane dies."""
        with self._lock:
            if self._proc is None:
                return
            self._kill_group()
            self._proc = None

    def _kill_group(self) -> None:
        assert self._proc is not None
        _signal_group(self._proc.pid, signal.SIGKILL)
        if not _wait_group_gone(self._proc, STOP_GRACE_S):
            raise TestbedError(f"{self.name}: process group {self._proc.pid} survived SIGKILL")

    def restart(self) -> float:
        """Stop (if running) and start again on the same port and database."""
        self.stop()
        return self.start()


class Testbed(Started):
    """Several Ironic control planes, started in parallel, plus their ``clouds.yaml``."""

    __test__ = False  # not a test class, whatever its name

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        names: Iterable[str] = ("cp1", "cp2"),
        **kw: Any,
    ) -> None:
        """``kw`` goes to every :class:`IronicService` (``show_secrets``, ``fake_delay``...)."""
        self.root_dir = Path(root_dir).resolve()
        self.services = {name: IronicService(name, 0, self.root_dir / name, **kw) for name in names}
        self.start_seconds: dict[str, float] = {}

    def __getitem__(self, name: str) -> IronicService:
        return self.services[name]

    @property
    def names(self) -> list[str]:
        return list(self.services)

    @property
    def clouds_yaml(self) -> Path:
        return self.root_dir / "clouds.yaml"

    def env(self) -> dict[str, str]:
        """Environment variables that point openstack clients at this testbed."""
        return {"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}

    def start(self) -> None:
        """Start every control plane in parallel; on any failure stop them all and raise."""
        self.root_dir.mkdir(parents=True, exist_ok=True)
        self.write_clouds_yaml()
        with ThreadPoolExecutor(max_workers=len(self.services)) as pool:
            futures = {name: pool.submit(svc.start) for name, svc in self.services.items()}
        errors = []
        for name, future in futures.items():
            try:
                self.start_seconds[name] = future.result()
            except Exception as exc:
                errors.append(f"{name}: {exc}")
        if errors:
            self.stop()
            raise TestbedError("testbed failed to start:\n" + "\n".join(errors))

    def stop(self) -> None:
        """Stop every control plane (in parallel)."""
        with ThreadPoolExecutor(max_workers=max(1, len(self.services))) as pool:
            list(pool.map(lambda svc: svc.stop(), self.services.values()))

    def write_clouds_yaml(self) -> Path:
        clouds = {
            name: {"auth_type": "none", "baremetal_endpoint_override": svc.url}
            for name, svc in self.services.items()
        }
        self.clouds_yaml.write_text(yaml.safe_dump({"clouds": clouds}, sort_keys=True))
        return self.clouds_yaml

    def connect(self, name: str) -> Connection:
        """An openstacksdk connection to control plane ``name``, from this ``clouds.yaml`` only."""
        return connect(self.clouds_yaml, name)


def connect(clouds_yaml: str | os.PathLike[str], cloud: str) -> Connection:
    """An openstacksdk connection to ``cloud`` as described in ``clouds_yaml`` (env ignored)."""
    from openstack import connection
    from openstack.config import loader

    config = loader.OpenStackConfig(config_files=[str(clouds_yaml)], load_envvars=False)
    return connection.Connection(config=config.get_one(cloud=cloud))
