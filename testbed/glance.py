"""A real Glance image API on loopback, authenticating every request with Keystone.

:class:`Glance` writes ``glance-api.conf`` under its root, creates the database
(``glance-manage db_sync``: SQLite under the root unless a database URL is given) and
serves ``glance.wsgi.api:application`` with :mod:`testbed.wsgi_serve` in a process group
of its own. Images are stored as files under the root (``images/``); image import is off.
Policies are Glance's own defaults (the new RBAC defaults, scope enforced): a project
member creates, uploads, downloads and deletes images, a project reader lists and shows
them but may not download their bytes (``download_image`` wants a member).

:func:`authtoken_config` is the ``[keystone_authtoken]`` section Neutron shares.
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from pathlib import Path
from types import TracebackType

from testbed import catalog
from testbed.daemon import Daemon, http_ok, run
from testbed.ironic import LOOPBACK, TestbedError, free_port
from testbed.keystone import Keystone

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PASTE = HERE / "glance-api-paste.ini"

#: keystonemiddleware's auth_token: the services log in with the bootstrap admin's
#: application credential (:func:`testbed.catalog.service_user`). token_cache_time = -1
#: turns its token cache off: every request is validated by Keystone again, so a user
#: whose role was removed, or whose project was disabled (a frozen tenant), loses access
#: at the very next request rather than minutes later.
AUTHTOKEN = """\
[keystone_authtoken]
www_authenticate_uri = {url}
auth_url = {url}
{service_user}
region_name = RegionOne
token_cache_time = -1
"""

#: The services' own policy defaults, as a deployment that adopted the new RBAC runs them.
POLICY = """\
[oslo_policy]
enforce_new_defaults = true
enforce_scope = true
"""

CONFIG = """\
[DEFAULT]
log_file = {dir}/logs/glance-api.log
debug = false
enabled_backends = fs:file
enabled_import_methods = []
show_image_direct_url = false
public_endpoint = {public}

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = {dir}/images

[os_glance_staging_store]
filesystem_store_datadir = {dir}/staging

[os_glance_tasks_store]
filesystem_store_datadir = {dir}/tasks

[database]
connection = {database}

[paste_deploy]
flavor = keystone
config_file = {paste}

[oslo_concurrency]
lock_path = {dir}/locks

"""


def authtoken_config(keystone: Keystone) -> str:
    """The ``[keystone_authtoken]`` section of a service checking tokens with ``keystone``."""
    return AUTHTOKEN.format(url=keystone.url, service_user=catalog.service_user(keystone))


def service_env(*extra_paths: Path) -> dict[str, str]:
    """The environment of a testbed service: the repository (and ``extra_paths``) importable."""
    paths = [str(REPO), *(str(path) for path in extra_paths)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


class Glance:
    """Glance's image API; ``root`` holds its configuration, database, images and logs."""

    def __init__(self, root: Path, keystone: Keystone, *, database_url: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.keystone = keystone
        self.port = free_port()
        self.database_url = database_url or f"sqlite:///{self.root}/glance.sqlite"
        self.start_seconds: float | None = None
        self.config = self.root / "glance-api.conf"
        env = {**service_env(), "OS_GLANCE_CONFIG_DIR": str(self.root)}
        serve = [sys.executable, "-m", "testbed.wsgi_serve", "glance.wsgi.api:application"]
        self.daemon = Daemon(
            "glance-api",
            [*serve, str(self.port)],
            self.root / "logs" / "serve.log",
            env=env,
            cwd=self.root,
        )

    def __repr__(self) -> str:
        return f"Glance({str(self.root)!r}, url={self.url})"

    @property
    def url(self) -> str:
        """The image endpoint, without ``/v2``."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        """Write the configuration, create the database, serve; wait until it answers."""
        began = time.monotonic()
        for sub in ("logs", "images", "staging", "tasks", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            CONFIG.format(dir=self.root, public=self.url, database=self.database_url, paste=PASTE)
            + authtoken_config(self.keystone)
            + POLICY
        )
        manage = Path(sys.executable).parent / "glance-manage"
        if not manage.exists():
            raise TestbedError(f"glance-manage not found next to {sys.executable}")
        run(
            [str(manage), "--config-file", str(self.config), "db_sync"],
            self.root / "logs" / "db-sync.log",
            env=self.daemon.env,
            cwd=self.root,
        )
        self.daemon.start()
        self.daemon.wait_until(partial(http_ok, f"{self.url}/healthcheck"), timeout, "up")
        self.start_seconds = time.monotonic() - began

    def stop(self) -> None:
        self.daemon.stop()

    def __enter__(self) -> Glance:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
