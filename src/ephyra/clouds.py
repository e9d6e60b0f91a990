"""Control planes reached through openstacksdk, with errors translated at the edge.

Clouds come from ``clouds.yaml`` (its standard locations and ``OS_CLIENT_CONFIG_FILE``).
openstacksdk's own ``wait=True`` polls every 2 s; every wait here polls every 50 ms.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import openstack
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc
from openstack import utils as sdk_utils
from openstack.baremetal.v1 import node as sdk_node
from openstack.config import exceptions as config_exc

from ephyra.errors import CloudError, CloudNotFound, ControlPlaneUnreachable, StepFailed

POLL_INTERVAL = 0.05

Node = Any  # openstack.baremetal.v1.node.Node: untyped upstream
Port = Any


@contextlib.contextmanager
def translated(cloud: str, action: str) -> Iterator[None]:
    """Turn openstacksdk and keystoneauth errors into Ephyra's."""
    try:
        yield
    except (ks_exc.ConnectionError, ks_exc.EndpointNotFound, ks_exc.DiscoveryFailure) as exc:
        raise ControlPlaneUnreachable(
            f"{cloud}: cannot {action}: control plane unreachable"
        ) from exc
    except sdk_exc.HttpException as exc:
        status = exc.status_code or 0
        text = (exc.details or exc.message or str(exc)).strip()
        if status >= 500 or status in (0, 502, 503, 504):
            raise ControlPlaneUnreachable(f"{cloud}: cannot {action}: HTTP {status}") from exc
        raise CloudError(f"{cloud}: cannot {action}: HTTP {status}: {text}") from exc
    except (sdk_exc.SDKException, ks_exc.ClientException) as exc:
        raise CloudError(f"{cloud}: cannot {action}: {exc}") from exc


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

    @property
    def baremetal(self) -> Any:
        return self._conn.baremetal

    def check(self) -> None:
        """Raise ControlPlaneUnreachable unless the bare-metal API answers."""
        with translated(self.name, "list nodes"):
            list(self.baremetal.nodes(limit=1))

    def nodes(self) -> list[Node]:
        with translated(self.name, "list nodes"):
            return list(self.baremetal.nodes(details=True))

    def find_node(self, ident: str) -> Node | None:
        with translated(self.name, f"show node {ident}"):
            try:
                return self.baremetal.get_node(ident)
            except sdk_exc.NotFoundException:
                return None

    def ports(self, node_uuid: str | None = None) -> list[Port]:
        with translated(self.name, "list ports"):
            if node_uuid is None:
                return list(self.baremetal.ports(details=True))
            return list(self.baremetal.ports(node_uuid=node_uuid, details=True))

    def create_node(self, fields: Mapping[str, Any]) -> Node:
        with translated(self.name, f"enroll node {fields.get('id')}"):
            return self.baremetal.create_node(**fields)

    def update_node(self, uuid: str, **fields: Any) -> Node:
        with translated(self.name, f"update node {uuid}"):
            return self.baremetal.update_node(uuid, **fields)

    def create_port(self, fields: Mapping[str, Any]) -> Port:
        with translated(self.name, f"create port {fields.get('address')}"):
            return self.baremetal.create_port(**fields)

    def delete_node(self, uuid: str) -> None:
        with translated(self.name, f"delete node {uuid}"):
            self.baremetal.delete_node(uuid, ignore_missing=True)

    def _call(self, verb: str, path: str, body: Any, action: str) -> None:
        """One API call, without the node fetch openstacksdk makes after most actions."""
        with translated(self.name, action):
            if self._microversion is None:
                self._microversion = sdk_utils.maximum_supported_microversion(
                    self.baremetal, sdk_node.Node._max_microversion
                )
            response = getattr(self.baremetal, verb)(
                path, json=body, microversion=self._microversion, raise_exc=False
            )
            sdk_exc.raise_from_response(response, error_message=f"{self.name}: {action}")

    def set_maintenance(self, uuid: str, reason: str) -> None:
        self._call(
            "put",
            f"/nodes/{uuid}/maintenance",
            {"reason": reason},
            f"set maintenance on {uuid}",
        )

    def unset_maintenance(self, uuid: str) -> None:
        self._call("delete", f"/nodes/{uuid}/maintenance", None, f"unset maintenance on {uuid}")

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
            with translated(self.name, f"show node {uuid}"):
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
