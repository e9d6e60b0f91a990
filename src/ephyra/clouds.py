"""Control planes reached through openstacksdk, with errors translated at the edge.

Clouds come from ``clouds.yaml`` (its standard locations and ``OS_CLIENT_CONFIG_FILE``).
openstacksdk's own ``wait=True`` polls every 2 s; every wait here polls every 50 ms.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import openstack
import openstack.config
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc
from openstack import utils as sdk_utils
from openstack.baremetal.v1 import node as sdk_node
from openstack.config import exceptions as config_exc

from ephyra import net
from ephyra.errors import (
    CloudAuthFailed,
    CloudError,
    CloudNotFound,
    CloudTimeout,
    ControlPlaneUnreachable,
    EndpointMissing,
    StepFailed,
)
from ephyra.urls import redact

POLL_INTERVAL = 0.05
#: The services as messages name them.
BAREMETAL = "bare metal (Ironic)"
COMPUTE = "compute (Nova)"
PLACEMENT = "placement"

Node = Any  # openstack.baremetal.v1.node.Node: untyped upstream
Port = Any


@contextlib.contextmanager
def translated(cloud: str, action: str, service: str = "") -> Iterator[None]:
    """Turn openstacksdk and keystoneauth errors into Ephyra's, each one line: the cloud, the
    action, the service or address that failed (its credentials removed) and why.

    ``service`` names the API called (``"compute"``, ``"bare metal"``...), for the message.
    This is the one place where those libraries' errors are translated: every call that may
    reach a cloud (a proxy's first use authenticates and reads the catalog) runs inside it.
    """
    try:
        yield
    except (ks_exc.ClientException, sdk_exc.SDKException) as exc:
        raise failure(cloud, action, exc, service) from exc


#: What openstacksdk and keystoneauth raise for a service the cloud does not offer.
NO_ENDPOINT = (
    ks_exc.EndpointNotFound,
    sdk_exc.NotSupported,
    sdk_exc.EndpointNotFound,
    sdk_exc.ServiceDisabledException,  # a proxy made for a service not in the catalog
)
#: The URL a keystoneauth connection error names ("... to URL: why" / "Request to URL timed out").
_FAILED_URL = re.compile(r"(?P<url>[a-z][a-z0-9+.-]*://\S+?)(?=:\s|\s+timed out|\s*$)")
#: Every ``http://...`` of a text.
_ANY_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\",;]+[^\s'\",;.:]")


def failure(cloud: str, action: str, exc: BaseException, service: str = "") -> CloudError:
    """The Ephyra error, with its one-line message, that ``exc`` of openstacksdk or
    keystoneauth stands for (see :func:`translated`)."""
    where = f"{cloud}: cannot {action}"
    if net.in_chain(exc, NO_ENDPOINT) is not None:
        what = f"{service} " if service else ""
        return EndpointMissing(
            f"{where}: the cloud has no {what}endpoint (none in its catalog nor in clouds.yaml)"
        )
    down = net.in_chain(exc, (ks_exc.ConnectionError,))
    if down is not None:
        return connection_failure(f"{where}: {_peer(cloud, _url_of(down), service)}", down)
    if isinstance(exc, ks_exc.Unauthorized):
        peer = _peer(cloud, exc.url or "", service or "Keystone")  # Keystone at its URL
        return CloudAuthFailed(f"{where}: {peer} refused the credentials of clouds.yaml (HTTP 401)")
    if isinstance(exc, ks_exc.DiscoveryFailure):  # keystoneauth drops the connection error
        urls = _ANY_URL.findall(str(exc))
        peer = _peer(cloud, urls[0] if urls else "", service)
        return ControlPlaneUnreachable(
            f"{where}: {peer}: unreachable, or it serves no API version document"
        )
    status = _status(exc)
    if isinstance(exc, (sdk_exc.HttpException, ks_exc.HttpError)) and (status >= 500 or not status):
        return ControlPlaneUnreachable(f"{where}: HTTP {status}")
    if status:
        text = _first_line(getattr(exc, "details", None) or getattr(exc, "message", None) or exc)
        return CloudError(f"{where}: HTTP {status}: {text}")
    return CloudError(f"{where}: {_first_line(exc)}")


def connection_failure(where: str, exc: BaseException) -> ControlPlaneUnreachable:
    """``where`` (a service at an address) could not be connected to: "WHERE unreachable:
    connection refused" ("WHERE: timed out", a timeout its own error)."""
    if isinstance(exc, ks_exc.ConnectTimeout) or net.timed_out(exc):
        return CloudTimeout(f"{where}: timed out")
    reason = net.why(exc) or ("TLS failed" if isinstance(exc, ks_exc.SSLError) else None)
    return ControlPlaneUnreachable(f"{where} unreachable: {reason or 'cannot connect'}")


def _url_of(exc: BaseException) -> str:
    """The URL a connection error names (empty if none)."""
    found = _FAILED_URL.search(str(exc))
    return found["url"] if found else ""


def _peer(cloud: str, url: str, service: str) -> str:
    """Which service at which address: Keystone for the cloud's auth URL."""
    shown = redact(url.split("?")[0]) if url else ""
    auth = _auth_url(cloud) if url else ""
    if auth and url.startswith(auth.rstrip("/")):
        service = "Keystone"
    if service and shown:
        return f"{service} at {shown}"
    return shown or service or "the cloud"


def _auth_url(cloud: str) -> str:
    """The cloud's Keystone URL in clouds.yaml (empty if it has none)."""
    try:
        config = openstack.config.OpenStackConfig().get_one(cloud=cloud)
    except (config_exc.OpenStackConfigException, sdk_exc.SDKException, ks_exc.ClientException):
        return ""
    return str((config.config.get("auth") or {}).get("auth_url") or "")


def _status(exc: BaseException) -> int:
    """The HTTP status an error answer had (0 if none)."""
    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    return int(status) if isinstance(status, int) else 0


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__


def connect(name: str) -> Any:
    """An openstacksdk connection to the cloud ``name`` of clouds.yaml."""
    try:
        return openstack.connect(cloud=name)
    except config_exc.OpenStackConfigException as exc:
        raise CloudNotFound(f"cloud {name!r} is not in clouds.yaml: {exc}") from exc


class ControlPlane:
    """One cloud's bare-metal service."""

    def __init__(self, name: str, conn: Any) -> None:
        self.name = name
        self._conn = conn
        self._microversion: str | None = None

    @classmethod
    def connect(cls, name: str) -> ControlPlane:
        return cls(name, connect(name))

    def _doing(self, action: str) -> contextlib.AbstractContextManager[None]:
        return translated(self.name, action, BAREMETAL)

    @property
    def baremetal(self) -> Any:
        return self._conn.baremetal

    @property
    def connection(self) -> Any:
        """The openstacksdk connection (the cloud's other services, through its catalog)."""
        return self._conn

    def check(self) -> None:
        """Raise ControlPlaneUnreachable unless the bare-metal API answers."""
        with self._doing("list nodes"):
            list(self.baremetal.nodes(limit=1))

    def nodes(self) -> list[Node]:
        with self._doing("list nodes"):
            return list(self.baremetal.nodes(details=True))

    def find_node(self, ident: str) -> Node | None:
        with self._doing(f"show node {ident}"):
            try:
                return self.baremetal.get_node(ident)
            except sdk_exc.NotFoundException:
                return None

    def ports(self, node_uuid: str | None = None) -> list[Port]:
        with self._doing("list ports"):
            if node_uuid is None:
                return list(self.baremetal.ports(details=True))
            return list(self.baremetal.ports(node_uuid=node_uuid, details=True))

    def create_node(self, fields: Mapping[str, Any]) -> Node:
        with self._doing(f"enroll node {fields.get('id')}"):
            return self.baremetal.create_node(**fields)

    def update_node(self, uuid: str, **fields: Any) -> Node:
        with self._doing(f"update node {uuid}"):
            return self.baremetal.update_node(uuid, **fields)

    def create_port(self, fields: Mapping[str, Any]) -> Port:
        with self._doing(f"create port {fields.get('address')}"):
            return self.baremetal.create_port(**fields)

    def conductor_groups(self) -> set[str] | None:
        """The groups of its registered conductors ('' is the default group); None when
        its policy does not let this login list them (a project scope). Whether each is
        alive is not asked: a conductor that serves its API in-process (no RPC, as Bifrost
        runs it) does not refresh the heartbeat the answer's ``alive`` reads."""
        listed = self._listed_if_allowed("list conductors", self.baremetal.conductors)
        return None if listed is None else {str(c.conductor_group or "") for c in listed}

    def enabled_interfaces(self) -> dict[str, dict[str, set[str]]] | None:
        """Per enabled hardware type: each interface's enabled implementations
        (``{"ipmi": {"power_interface": {"ipmitool"}, ...}}``); None when its policy does
        not let this login list them."""
        drivers = self._listed_if_allowed("list drivers", self.baremetal.drivers)
        if drivers is None:
            return None
        return {
            str(driver.name): {
                interface: set(getattr(driver, f"enabled_{interface}s", None) or ())
                for interface in INTERFACES
            }
            for driver in drivers
        }

    def _listed_if_allowed(self, action: str, lister: Callable[..., Any]) -> list[Any] | None:
        """``lister(details=True)`` as a list; None when this login may not list (a 403,
        or Ironic's 500 for a project-scoped token: its policy's InvalidScope is not
        mapped to 403)."""
        with self._doing(action):
            try:
                return list(lister(details=True))
            except sdk_exc.HttpException as exc:
                if exc.status_code in (403, 500):
                    return None
                raise

    def attached(self, kind: str, node_uuid: str) -> list[Any]:
        """The node's port groups, volume connectors or volume targets (``kind``:
        ``port_group``, ``volume_connector``, ``volume_target``)."""
        with self._doing(f"list the {kind.replace('_', ' ')}s of {node_uuid}"):
            return list(getattr(self.baremetal, f"{kind}s")(details=True, node=node_uuid))

    def create_attached(self, kind: str, fields: Mapping[str, Any]) -> Any:
        with self._doing(f"create {kind.replace('_', ' ')} {fields.get('id')}"):
            return getattr(self.baremetal, f"create_{kind}")(**fields)

    def set_traits(self, uuid: str, traits: list[str]) -> None:
        self._call("put", f"/nodes/{uuid}/traits", {"traits": traits}, f"set traits of {uuid}")

    def set_raid_config(self, uuid: str, config: Mapping[str, Any]) -> None:
        self._call(
            "put", f"/nodes/{uuid}/states/raid", dict(config), f"set the RAID config of {uuid}"
        )

    def delete_node(self, uuid: str) -> None:
        with self._doing(f"delete node {uuid}"):
            self.baremetal.delete_node(uuid, ignore_missing=True)

    def bios_settings(self, uuid: str) -> dict[str, str]:
        """The node's BIOS settings as Ironic has them cached (name -> value)."""
        found = self._call("get", f"/nodes/{uuid}/bios", None, f"read the BIOS settings of {uuid}")
        return {str(s["name"]): str(s["value"]) for s in found.get("bios", [])}

    def apply_bios(
        self,
        uuid: str,
        settings: Mapping[str, str],
        *,
        timeout: float,
        checkpoint: Callable[[], None] = lambda: None,
    ) -> None:
        """Apply BIOS ``settings`` to a ``manageable`` node by manual cleaning (the BIOS
        interface's ``apply_configuration`` step) and wait until it is manageable again."""
        step = {
            "interface": "bios",
            "step": "apply_configuration",
            "args": {"settings": [{"name": k, "value": v} for k, v in sorted(settings.items())]},
        }
        self._call(
            "put",
            f"/nodes/{uuid}/states/provision",
            {"target": "clean", "clean_steps": [step]},
            f"apply BIOS settings to {uuid}",
        )
        self.wait_for_state(uuid, "manageable", timeout=timeout, checkpoint=checkpoint)

    def _call(self, verb: str, path: str, body: Any, action: str) -> dict[str, Any]:
        """One API call, without the node fetch openstacksdk makes after most actions; its
        answer's JSON ({} when it has none)."""
        with self._doing(action):
            if self._microversion is None:
                self._microversion = sdk_utils.maximum_supported_microversion(
                    self.baremetal, sdk_node.Node._max_microversion
                )
            response = getattr(self.baremetal, verb)(
                path, json=body, microversion=self._microversion, raise_exc=False
            )
            sdk_exc.raise_from_response(response, error_message=f"{self.name}: {action}")
            try:
                found = response.json() if response.content else {}
            except ValueError:
                found = {}
        return found if isinstance(found, dict) else {}

    def set_maintenance(self, uuid: str, reason: str) -> None:
        self._call(
            "put",
            f"/nodes/{uuid}/maintenance",
            {"reason": reason},
            f"set maintenance on {uuid}",
        )

    def unset_maintenance(self, uuid: str) -> None:
        self._call("delete", f"/nodes/{uuid}/maintenance", None, f"unset maintenance on {uuid}")

    def power_off_if_unknown(
        self, uuid: str, *, timeout: float, checkpoint: Callable[[], None] = lambda: None
    ) -> None:
        """Power the node off if Ironic does not know its power state yet (Nova holds such
        a node back): a node whose server was deleted is off, so this changes nothing on
        the machine, only what Ironic knows of it."""
        with self._doing(f"show node {uuid}"):
            node = self.baremetal.get_node(uuid, fields=["power_state"])
        if node.power_state is not None:
            return
        self._call(
            "put", f"/nodes/{uuid}/states/power", {"target": "power off"}, f"power off {uuid}"
        )
        deadline = time.monotonic() + timeout
        while True:
            with self._doing(f"show node {uuid}"):
                node = self.baremetal.get_node(uuid, fields=["power_state"])
            if node.power_state == "power off":
                return
            if time.monotonic() > deadline:
                raise StepFailed(f"{self.name}: node {uuid} not powered off after {timeout:.0f}s")
            checkpoint()
            time.sleep(POLL_INTERVAL)

    def provision(
        self,
        uuid: str,
        target: str,
        want: str,
        *,
        timeout: float,
        checkpoint: Callable[[], None] = lambda: None,
    ) -> Node:
        """Ask for a provision-state change and wait for ``want``, polling every 50 ms.

        ``checkpoint`` is called between polls: it raises to interrupt a long wait.
        """
        self._call(
            "put",
            f"/nodes/{uuid}/states/provision",
            {"target": target},
            f"move node {uuid} to {target}",
        )
        return self.wait_for_state(uuid, want, timeout=timeout, checkpoint=checkpoint)

    def settle(
        self, uuid: str, *, timeout: float, checkpoint: Callable[[], None] = lambda: None
    ) -> Node | None:
        """The node once no provision-state change is under way (None if not enrolled)."""
        deadline = time.monotonic() + timeout
        while True:
            node = self.find_node(uuid)
            if node is None or not node.target_provision_state:
                return node
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"{self.name}: node {uuid} still {node.provision_state!r} after {timeout:.0f}s"
                )
            checkpoint()
            time.sleep(POLL_INTERVAL)

    def wait_for_state(
        self,
        uuid: str,
        want: str,
        *,
        timeout: float,
        checkpoint: Callable[[], None] = lambda: None,
    ) -> Node:
        deadline = time.monotonic() + timeout
        fields = ["provision_state", "target_provision_state", "last_error"]
        while True:
            with self._doing(f"show node {uuid}"):
                node = self.baremetal.get_node(uuid, fields=fields)
            if node.provision_state == want and not node.target_provision_state:
                return node
            state = node.provision_state or ""
            if state.endswith("failed") or state == "error":
                raise StepFailed(
                    f"{self.name}: node {uuid} went to {state!r} waiting for {want!r}: "
                    f"{node.last_error or 'no error given'}"
                )
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"{self.name}: node {uuid} still {state!r} after {timeout:.0f}s "
                    f"waiting for {want!r}"
                )
            checkpoint()
            time.sleep(POLL_INTERVAL)


#: A node's hardware interfaces, as Ironic names their fields.
INTERFACES = tuple(
    f"{name}_interface"
    for name in (
        "bios",
        "boot",
        "console",
        "deploy",
        "firmware",
        "inspect",
        "management",
        "network",
        "power",
        "raid",
        "rescue",
        "storage",
        "vendor",
    )
)


def answer(
    proxy: Any,
    verb: str,
    path: str,
    cloud: str,
    action: str,
    service: str = "",
    body: Any = None,
    *,
    missing_ok: bool = False,
    **extra: Any,
) -> Any:
    """One REST call through an openstacksdk proxy, errors translated: the answer's JSON
    ({} when it has none; None for a 404 when ``missing_ok``)."""
    with translated(cloud, action, service):
        response = getattr(proxy, verb)(path, json=body, raise_exc=False, **extra)
        if missing_ok and response.status_code == 404:
            return None
        sdk_exc.raise_from_response(response, error_message=f"{cloud}: {action}")
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        return {}


def keystone_pages(
    call: Callable[[str], Mapping[str, Any]], path: str, key: str
) -> Iterator[dict[str, Any]]:
    """The ``key`` entries of a Keystone listing, page after page (``call`` GETs a path)."""
    while path:
        raw = call(path)
        yield from raw.get(key) or ()
        following = (raw.get("links") or {}).get("next")
        path = following.split("/v3", 1)[1] if following and "/v3" in following else ""
