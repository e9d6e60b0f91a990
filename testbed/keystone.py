"""A real Keystone (the ``keystone`` package, SQLite, fernet tokens) on loopback.

:func:`start_keystone` builds a fresh database and keys, bootstraps the ``admin`` user and
project (and the ``admin``, ``member`` and ``reader`` roles), and serves
``keystone.wsgi.api:application`` in a process group of its own. A second process on the
same database and keys issues tokens that expire after ``short_expiration`` seconds, so a
test gets an expired token without waiting an hour: both processes validate every token.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from testbed.daemon import Daemon, http_ok
from testbed.ironic import LOOPBACK, TestbedError, free_port

CONFIG = """\
[DEFAULT]
log_file = {dir}/keystone.log
debug = false

[database]
connection = sqlite:///{dir}/keystone.sqlite

[token]
provider = fernet
expiration = {expiration}

[fernet_tokens]
key_repository = {dir}/fernet-keys

[fernet_receipts]
key_repository = {dir}/fernet-keys

[credential]
key_repository = {dir}/credential-keys

[identity]
password_hash_rounds = 4

[cache]
# Keystone's own cache, in each process: a token checked again costs it about a twentieth
# of the CPU (it recomputes the user's roles otherwise). Keystone empties it itself on every
# role, assignment or token change it makes, so a role taken away counts at the next check.
enabled = true
backend = dogpile.cache.memory
"""
ADMIN_PASSWORD = "testbed-admin-secret"


def _manage(config: Path, *args: str) -> None:
    manage = Path(sys.executable).parent / "keystone-manage"
    done = subprocess.run(
        [str(manage), "--config-file", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise TestbedError(f"keystone-manage {args[0]} failed: {done.stderr[-2000:]}")


class Keystone:
    def __init__(self, workdir: Path, port: int, short_port: int, short_expiration: int) -> None:
        self.dir = workdir
        self.port = port
        self.short_port = short_port
        self.admin_password = ADMIN_PASSWORD
        self.setup_seconds = 0.0
        config = workdir / "keystone.conf"
        short = workdir / "short-tokens.conf"
        short.write_text(f"[token]\nexpiration = {short_expiration}\n")
        serve = [sys.executable, "-m", "testbed.wsgi_serve", "keystone.wsgi.api:application"]
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": root, "OS_KEYSTONE_CONFIG_FILES": str(config)}
        self.daemons = [
            Daemon("keystone", [*serve, str(port)], workdir / "serve.log", env=env, cwd=workdir),
            Daemon(
                "keystone-short",
                [*serve, str(short_port)],
                workdir / "serve-short.log",
                env={**env, "OS_KEYSTONE_CONFIG_FILES": f"{config};{short}"},
                cwd=workdir,
            ),
        ]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v3"

    @property
    def short_url(self) -> str:
        """The process whose tokens expire after ``short_expiration`` seconds."""
        return f"http://{LOOPBACK}:{self.short_port}/v3"

    def start(self, timeout: float = 60.0) -> None:
        for daemon, url in zip(self.daemons, (self.url, self.short_url), strict=True):
            daemon.start()
            daemon.wait_until(partial(http_ok, url), timeout, "up")

    def stop(self) -> None:
        for daemon in self.daemons:
            daemon.stop()

    def __enter__(self) -> Keystone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def clouds_entry(
        self, user: str, password: str, project: str, url: str | None = None
    ) -> dict[str, Any]:
        """A cloud of clouds.yaml for this user (openstacksdk, keystoneauth)."""
        return {
            "auth_type": "password",
            "auth": {
                "auth_url": url or self.url,
                "username": user,
                "password": password,
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": "RegionOne",
            "identity_api_version": 3,
        }

    def _admin(self) -> Any:
        import openstack

        entry = self.clouds_entry("admin", self.admin_password, "admin")
        return openstack.connect(**entry["auth"], auth_type="password", region_name="RegionOne")

    def _role(self, conn: Any, role: str) -> Any:
        found = conn.identity.find_role(role)
        return found if found is not None else conn.identity.create_role(name=role)

    def add_user(self, name: str, project: str, role: str) -> str:
        """A user with ``role`` (made if missing) on ``project`` (made if missing, in the
        Default domain); its password."""
        conn = self._admin()
        found = conn.identity.find_project(project)
        if found is None:
            found = conn.identity.create_project(name=project, domain_id="default")
        password = f"{name}-password"
        user = conn.identity.create_user(
            name=name, password=password, domain_id="default", default_project_id=found.id
        )
        conn.identity.assign_project_role_to_user(found, user, self._role(conn, role))
        return password

    def add_domain_user(self, name: str, role: str, domain: str = "default") -> str:
        """A user of the Default domain with ``role`` on the domain ``domain`` (its id);
        its password."""
        conn = self._admin()
        password = f"{name}-password"
        user = conn.identity.create_user(name=name, password=password, domain_id="default")
        conn.identity.assign_domain_role_to_user(domain, user, self._role(conn, role))
        return password

    def token(self, user: str, password: str, project: str, *, short: bool = False) -> str:
        """A project-scoped token; ``short``: from the process whose tokens expire soon."""
        from keystoneauth1 import session
        from keystoneauth1.identity import v3

        auth = v3.Password(
            auth_url=self.short_url if short else self.url,
            username=user,
            password=password,
            project_name=project,
            user_domain_name="Default",
            project_domain_name="Default",
        )
        return str(session.Session(auth=auth).get_token())

    def domain_token(self, user: str, password: str, domain: str = "Default") -> str:
        """A token scoped to the domain named ``domain``."""
        from keystoneauth1 import session
        from keystoneauth1.identity import v3

        auth = v3.Password(
            auth_url=self.url,
            username=user,
            password=password,
            domain_name=domain,
            user_domain_name="Default",
        )
        return str(session.Session(auth=auth).get_token())

    def system_token(self, user: str = "admin", password: str | None = None) -> str:
        """A system-scoped token (``system: {all: true}``); by default the bootstrap
        admin's, who holds the admin role on the system."""
        from keystoneauth1 import session
        from keystoneauth1.identity import v3

        auth = v3.Password(
            auth_url=self.url,
            username=user,
            password=password or self.admin_password,
            system_scope="all",
            user_domain_name="Default",
        )
        return str(session.Session(auth=auth).get_token())


def start_keystone(workdir: Path, *, short_expiration: int = 3) -> Keystone:
    """A bootstrapped Keystone serving on free loopback ports (about 10-15 s)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, short_port = free_port(), free_port()
    config = workdir / "keystone.conf"
    config.write_text(CONFIG.format(dir=workdir, expiration=3600))
    began = time.monotonic()
    _manage(config, "db_sync")
    for keys in ("fernet_setup", "credential_setup"):
        _manage(
            config, keys, "--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())
        )
    url = f"http://{LOOPBACK}:{port}/v3"
    _manage(
        config,
        "bootstrap",
        "--bootstrap-password",
        ADMIN_PASSWORD,
        "--bootstrap-username",
        "admin",
        "--bootstrap-project-name",
        "admin",
        "--bootstrap-role-name",
        "admin",
        "--bootstrap-service-name",
        "keystone",
        "--bootstrap-region-id",
        "RegionOne",
        "--bootstrap-admin-url",
        url,
        "--bootstrap-public-url",
        url,
        "--bootstrap-internal-url",
        url,
    )
    keystone = Keystone(workdir, port, short_port, short_expiration)
    keystone.start()
    keystone.setup_seconds = time.monotonic() - began
    return keystone
