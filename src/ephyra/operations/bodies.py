"""What a request asks for, beyond starting runs (each run kind has its own body): one
model per operation that takes more than a name."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ephyra.bodies import MAX_ITEMS, Body, Name, Text, Version
from ephyra.names import NAME
from ephyra.versions.desired import DEFAULT_RETRIES, MAX_RETRIES


class MaintenanceBody(Body):
    cloud: str = Field(pattern=NAME)
    state: Literal["on", "off"]


class TriggerBody(Body):
    version: Version
    max_at_once: list[Text] = Field(
        default_factory=list, max_length=1000, description="ROLE=N or ROLE=all"
    )
    after: list[Text] = Field(
        default_factory=list, max_length=1000, description="ROLE=DEP[,DEP...]"
    )
    force: bool = False
    retries: int = Field(
        default=DEFAULT_RETRIES,
        ge=0,
        le=MAX_RETRIES,
        description="attempts a failed host makes again, after a backoff",
    )


class VerifyBody(Body):
    version: Version
    hosts: list[Name] = Field(min_length=1, max_length=MAX_ITEMS)


class EnvUpgradeBody(Body):
    release_id: int = Field(ge=1, description="the release to upgrade the environment to")
    nodes: list[Name] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="nodes to reinstall with it, by name or id (default: the primary controller)",
    )
