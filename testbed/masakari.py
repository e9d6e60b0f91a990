"""A real Masakari API (instance HA: failover segments and their hosts) on loopback.

:class:`Masakari` writes ``masakari.conf`` and ``api-paste.ini`` under its root, creates the
database (``masakari-manage db sync``: SQLite under the root unless a database URL is given)
and runs ``masakari-api`` (pip ``masakari==22.0.0``), Masakari's own eventlet server, with one
worker, in a process group of its own. Masakari patches the standard library for eventlet
when imported, so it cannot be served by :mod:`testbed.wsgi_serve`: a request would wait
until the next connection wakes the server up. Only the API runs: no masakari-engine and no
message bus (``transport_url = fake://``), so a notification posted to it is recorded and
never processed; segments and hosts need neither.

**Authentication.** With a ``keystone`` (:class:`testbed.keystone.Keystone`, started),
keystonemiddleware checks every request's token (no token cache: a role taken away counts
at the next request) and Masakari's default policies apply: every segment and host call
wants the admin role. Without one, Masakari's own ``noauth2``: every request is an
admin's, whatever its token. ``auth="noauth2"`` with a ``keystone`` gives that too.

**Hosts are Nova's.** Masakari adds (or renames) a host only if Nova has a nova-compute of
that name: it asks Nova (``GET /os-services?binary=nova-compute&host=NAME``) as the admin of
project ``admin``, logging in to ``keystone`` with a password and finding Nova in its
catalog (service ``nova``, type ``compute``, public endpoint of ``region``). A host
unknown to Nova is refused with 400. Without a Keystone, or without a Nova in its catalog,
no host can be added at all (500): segments still work.

A stop and a start keeps the database (``db sync`` changes nothing the second time).

:meth:`Masakari.register` puts the API in Keystone's catalog (type ``instance-ha``, name
``masakari``), where openstacksdk's ``instance_ha`` proxy finds it.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path
from typing import Literal

from testbed import catalog
from testbed.daemon import Daemon, http_ok, run
from testbed.glance import service_env
from testbed.ironic import LOOPBACK, TestbedError, free_port
from testbed.keystone import Keystone
from testbed.started import Started

#: The API version path; the routes without a project id in them are the ones used here.
VERSION_PATH = "/v1"
#: The microversion header: ``enabled`` on a segment needs 1.2 (Masakari 22 serves 1.0-1.3).
MICROVERSION_HEADER = "OpenStack-API-Version"
SERVICE_TYPE = "instance-ha"

Auth = Literal["keystone", "noauth2"]

#: Masakari's own paste pipeline (its ``etc/masakari/api-paste.ini``), the health check's
#: switch file moved under the root.
PASTE = """\
[composite:masakari_api]
use = call:masakari.api.urlmap:urlmap_factory
/: apiversions
/v1: masakari_api_v1
/healthcheck: healthcheck

[composite:masakari_api_v1]
use = call:masakari.api.auth:pipeline_factory_v1
keystone = cors http_proxy_to_wsgi request_id faultwrap sizelimit authtoken keystonecontext \
osapi_masakari_app_v1
noauth2 = cors http_proxy_to_wsgi request_id faultwrap sizelimit noauth2 osapi_masakari_app_v1

[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = masakari

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware.http_proxy_to_wsgi:HTTPProxyToWSGI.factory

[filter:request_id]
paste.filter_factory = oslo_middleware:RequestId.factory

[filter:faultwrap]
paste.filter_factory = masakari.api.openstack:FaultWrapper.factory

[filter:sizelimit]
paste.filter_factory = oslo_middleware:RequestBodySizeLimiter.factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory

[filter:keystonecontext]
paste.filter_factory = masakari.api.auth:MasakariKeystoneContext.factory

[filter:noauth2]
paste.filter_factory = masakari.api.auth:NoAuthMiddleware.factory

[app:osapi_masakari_app_v1]
paste.app_factory = masakari.api.openstack.ha:APIRouterV1.factory

[pipeline:apiversions]
pipeline = faultwrap http_proxy_to_wsgi apiversionsapp

[app:apiversionsapp]
paste.app_factory = masakari.api.openstack.ha.versions:Versions.factory

[app:healthcheck]
paste.app_factory = oslo_middleware:Healthcheck.app_factory
backends = disable_by_file
disable_by_file_path = {dir}/healthcheck_disable
"""

CONFIG = """\
[DEFAULT]
auth_strategy = {auth}
masakari_api_listen = {host}
masakari_api_listen_port = {port}
masakari_api_workers = 1
log_file = {dir}/logs/masakari-api.log
debug = false
# no masakari-engine listens: nothing is sent anywhere
transport_url = fake://

[database]
connection = {database}

[taskflow]
# the engine's flow records; ``db sync`` creates their tables too and wants this set
connection = {database}

[oslo_messaging_notifications]
driver = noop

[oslo_concurrency]
lock_path = {dir}/locks

[wsgi]
api_paste_config = {dir}/api-paste.ini

"""

#: How Masakari reaches Nova: as the admin of project admin, Nova found in the catalog.
#: Masakari builds that login with the plugin named by ``[keystone_authtoken] auth_type``
#: and a user name and password, so that section logs in with the admin's password too
#: (an application credential, as the other services of the testbed use, cannot).
NOVA_ACCESS = """\
os_privileged_user_name = admin
os_privileged_user_password = {password}
os_privileged_user_tenant = admin
os_privileged_user_auth_url = {url}
os_user_domain_name = Default
os_project_domain_name = Default
os_region_name = {region}
nova_catalog_admin_info = compute:nova:publicURL

[keystone_authtoken]
www_authenticate_uri = {url}
auth_url = {url}
auth_type = password
username = admin
password = {password}
project_name = admin
user_domain_name = Default
project_domain_name = Default
# Keystone's own region (``keystone-manage bootstrap``), where its internal endpoint is
region_name = RegionOne
token_cache_time = -1

"""


class Masakari(Started):
    """Masakari's API; ``root`` holds its configuration, database and logs."""

    def __init__(
        self,
        root: Path,
        keystone: Keystone | None = None,
        *,
        region: str = "RegionOne",
        auth: Auth | None = None,
        database_url: str | None = None,
    ) -> None:
        """``region``: where Masakari finds Nova (and where :meth:`register` puts it).
        ``auth``: ``keystone`` (the default with a ``keystone``) or ``noauth2``."""
        if auth is None:
            auth = "keystone" if keystone is not None else "noauth2"
        if auth == "keystone" and keystone is None:
            raise ValueError("Keystone authentication needs a keystone")
        self.root = Path(root).resolve()
        self.keystone = keystone
        self.region = region
        self.auth: Auth = auth
        self.port = free_port()
        self.database_url = database_url or f"sqlite:///{self.root}/masakari.sqlite"
        self.config = self.root / "masakari.conf"
        self.start_seconds: float | None = None
        self.daemon = Daemon(
            "masakari-api",
            [self._command("masakari-api"), "--config-file", str(self.config)],
            self.root / "logs" / "serve.log",
            env=service_env(),
            cwd=self.root,
        )

    def __repr__(self) -> str:
        return f"Masakari({str(self.root)!r}, url={self.url}, auth={self.auth})"

    @property
    def url(self) -> str:
        """The service's root (version document at ``/``, health check at ``/healthcheck``)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def api_url(self) -> str:
        """The v1 API (``.../v1``), the endpoint :meth:`register` puts in the catalog."""
        return f"{self.url}{VERSION_PATH}"

    def write_config(self) -> None:
        for sub in ("logs", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        text = CONFIG.format(
            auth=self.auth,
            host=LOOPBACK,
            port=self.port,
            dir=self.root,
            database=self.database_url,
        )
        if self.keystone is not None:
            head, _sep, rest = text.partition("\n\n")  # the Nova access belongs in [DEFAULT]
            access = NOVA_ACCESS.format(
                password=self.keystone.admin_password, url=self.keystone.url, region=self.region
            )
            text = f"{head}\n{access}{rest}"
        self.config.write_text(text)
        (self.root / "api-paste.ini").write_text(PASTE.format(dir=self.root))

    def start(self, timeout: float = 60.0) -> None:
        """Write the configuration, create the database, serve; wait until it answers."""
        began = time.monotonic()
        self.write_config()
        run(
            [self._command("masakari-manage"), "--config-file", str(self.config), "db", "sync"],
            self.root / "logs" / "db-sync.log",
            env=self.daemon.env,
            cwd=self.root,
        )
        self.daemon.start()
        try:
            self.daemon.wait_until(partial(http_ok, f"{self.url}/healthcheck"), timeout, "up")
        except BaseException:
            self.daemon.stop()
            raise
        self.start_seconds = time.monotonic() - began

    @staticmethod
    def _command(name: str) -> str:
        found = Path(sys.executable).parent / name
        if not found.exists():
            raise TestbedError(f"{name} not found next to {sys.executable} (pip masakari)")
        return str(found)

    def stop(self) -> None:
        self.daemon.stop()

    def kill(self) -> None:
        self.daemon.kill()

    def register(self) -> str:
        """Put the API in the Keystone's catalog in :attr:`region`; the endpoint's id."""
        if self.keystone is None:
            raise TestbedError("Masakari without Keystone has no catalog to be in")
        return catalog.register(self.keystone, SERVICE_TYPE, "masakari", self.api_url, self.region)
