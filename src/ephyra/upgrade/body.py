"""What an upgrade run is started with."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ephyra.bodies import Body, Text
from ephyra.names import NAME


class UpgradeBody(Body):
    spec: dict[str, Any] = Field(description="the upgrade specification (docs/upgrade.md)")
    sources: list[Text] = Field(
        default_factory=list,
        max_length=32,
        description="inventory sources: openstack[:CLOUD] or a name the server's operator "
        "configured (ephyra serve --config); in-process also static:FILE, ...",
    )
    inventory: dict[str, Any] | None = Field(
        None,
        description="a static inventory, inline: the document static:FILE reads "
        "(docs/inventory.md), merged after the sources",
    )
    cloud: str | None = Field(
        None, pattern=NAME, description="the cloud whose APIs gate the upgrade"
    )
    width: int = Field(6, ge=1, le=1000, description="hosts named per batch in the plan's text")
    heal: bool = Field(
        False,
        description="remove the Placement allocations a drained host leaks (else its unit "
        "fails, naming them)",
    )
