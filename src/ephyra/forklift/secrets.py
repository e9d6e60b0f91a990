"""Credential sources: where the BMC secrets Ironic masks come from.

``file:PATH``  a YAML file ``{nodes: {NAME-or-UUID: {field: secret}}, defaults: {...}}``;
               a node's ``instance_info`` mapping there gives the secrets of its
               ``instance_info`` (a ``configdrive``, an image URL with a password)
``source``     the source control plane answers unmasked (an Ironic policy with
               ``show_password`` for Ephyra's account); it has no ``instance_info``
               secrets to give: the undeploy wipes them before the node is enrolled again

Secrets are read only when a node is enrolled or deployed, and never written anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml

from ephyra import plugins, yamlfile
from ephyra.clouds import ControlPlane
from ephyra.errors import SecretsUnavailable, UsageError
from ephyra.forklift.model import MASK, NodeSnapshot

NAMESPACE = "ephyra.credentials"


class CredentialSource(Protocol):
    description: str

    def __init__(self, argument: str) -> None:
        """A plugin is made from the argument of ``KIND:ARGUMENT``."""

    def missing(self, snapshot: NodeSnapshot) -> list[str]:
        """The masked fields of this node that this source cannot fill."""
        ...

    def secrets(self, snapshot: NodeSnapshot, holder: ControlPlane) -> dict[str, Any]:
        """The masked fields' values; ``holder`` is a control plane that has the node now."""
        ...

    def instance_secrets(self, snapshot: NodeSnapshot) -> dict[str, Any]:
        """The values this source has for the node's masked ``instance_info`` keys."""
        ...


def deployable(snapshot: NodeSnapshot, credentials: CredentialSource) -> dict[str, Any]:
    """The node's recorded ``instance_info`` with its secrets filled in from
    ``credentials``; SecretsUnavailable naming any it lacks."""
    masked = snapshot.instance_secret_fields
    if not masked:
        return dict(snapshot.instance_info)
    known = credentials.instance_secrets(snapshot)
    lacking = [k for k in masked if k not in known]
    if lacking:
        raise SecretsUnavailable(
            f"node {snapshot.label}: {credentials.description} has no instance_info "
            f"{', '.join(lacking)}"
        )
    return {**snapshot.instance_info, **{k: known[k] for k in masked}}


class NoCredentials:
    description = "no credential source (--credentials file:PATH or source)"

    def missing(self, snapshot: NodeSnapshot) -> list[str]:
        return snapshot.secret_fields

    def secrets(self, snapshot: NodeSnapshot, holder: ControlPlane) -> dict[str, Any]:
        if snapshot.secret_fields:
            raise SecretsUnavailable(f"node {snapshot.label}: no credential source for its secrets")
        return {}

    def instance_secrets(self, snapshot: NodeSnapshot) -> dict[str, Any]:
        return {}


class FileCredentials:
    def __init__(self, argument: str) -> None:
        path = Path(argument).expanduser()
        self.description = f"file {path}"
        try:
            data = yamlfile.read(path) or {}
        except OSError as exc:
            raise UsageError(f"cannot read credential file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise UsageError(f"credential file {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("nodes", {}), dict):
            raise UsageError(f"credential file {path}: expected a mapping with a 'nodes' mapping")
        self._defaults: dict[str, Any] = dict(data.get("defaults") or {})
        self._nodes: dict[str, dict[str, Any]] = {
            str(k): dict(v or {}) for k, v in (data.get("nodes") or {}).items()
        }

    def _for(self, snapshot: NodeSnapshot) -> dict[str, Any]:
        entry = self._nodes.get(snapshot.uuid) or self._nodes.get(snapshot.name or "") or {}
        return {**self._defaults, **entry}

    def missing(self, snapshot: NodeSnapshot) -> list[str]:
        known = self._for(snapshot)
        return [f for f in snapshot.secret_fields if f not in known]

    def secrets(self, snapshot: NodeSnapshot, holder: ControlPlane) -> dict[str, Any]:
        known = self._for(snapshot)
        lacking = [f for f in snapshot.secret_fields if f not in known]
        if lacking:
            raise SecretsUnavailable(
                f"node {snapshot.label}: {self.description} has no {', '.join(lacking)}"
            )
        return {f: known[f] for f in snapshot.secret_fields}

    def instance_secrets(self, snapshot: NodeSnapshot) -> dict[str, Any]:
        entry = self._nodes.get(snapshot.uuid) or self._nodes.get(snapshot.name or "") or {}
        given = entry.get("instance_info") or {}
        return dict(given) if isinstance(given, Mapping) else {}


class SourceCredentials:
    """The control plane that holds the node shows its secrets unmasked."""

    description = "the source control plane (unmasked by policy)"

    def __init__(self, argument: str = "") -> None:
        del argument

    def missing(self, snapshot: NodeSnapshot) -> list[str]:
        return []  # checked against the live answer in secrets()

    def secrets(self, snapshot: NodeSnapshot, holder: ControlPlane) -> dict[str, Any]:
        node = holder.find_node(snapshot.uuid)
        if node is None:
            raise SecretsUnavailable(f"node {snapshot.label}: not in {holder.name} to read secrets")
        info: Mapping[str, Any] = node.driver_info or {}
        values = {f: info.get(f) for f in snapshot.secret_fields}
        still = sorted(f for f, v in values.items() if v in (None, MASK))
        if still:
            raise SecretsUnavailable(
                f"node {snapshot.label}: {holder.name} masks {', '.join(still)}; "
                "give --credentials file:PATH or a policy that shows them"
            )
        return values

    def instance_secrets(self, snapshot: NodeSnapshot) -> dict[str, Any]:
        return {}  # the undeploy in the source wipes them before they could be read


def load_credentials(spec: str | None) -> CredentialSource:
    """``file:PATH`` or ``source``; None means no source."""
    if not spec:
        return NoCredentials()
    kind, _, argument = spec.partition(":")
    return plugins.load(NAMESPACE, kind, CredentialSource)(argument)
