"""What an evacuation run is started with."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ephyra.bodies import MAX_ITEMS, Body, Name
from ephyra.names import NAME


class EvacuateBody(Body):
    cloud: str = Field(pattern=NAME, description="cloud from clouds.yaml")
    hosts: list[Name] = Field(
        min_length=1, max_length=MAX_ITEMS, description="compute hosts to empty"
    )
    target: str | None = Field(None, pattern=NAME, description="move every server to this host")
    concurrency: int = Field(4, ge=1, le=1000)
    per_host: int = Field(2, ge=1, le=1000)
    max_per_project: int | None = Field(None, ge=1)
    max_per_group: int = Field(1, ge=0, description="0: no limit")
    fallback: Literal["cold", "stop", "skip"] = "cold"
    fate: Literal["live", "cold", "stop", "notify"] = Field(
        "live", description="a server's fate unless it asks its own (ephyra:maintenance)"
    )
    on_timeout: Literal["abort", "force-complete"] = "abort"
    migration_timeout: float = Field(600.0, gt=0)
    also_down: list[Name] = Field(default_factory=list, max_length=MAX_ITEMS)
    hosts_at_once: int | None = Field(None, ge=1, description="hosts drained together (all)")
    hosts_per_zone: int | None = Field(
        None, ge=1, description="hosts of one availability zone drained together (no limit)"
    )
    hosts_per_aggregate: int | None = Field(
        None, ge=1, description="hosts of one host aggregate drained together (no limit)"
    )


class ReallocateBody(EvacuateBody):
    to: str = Field(pattern=NAME, description="the cloud (clouds.yaml) the hosts join")
    handover: str = Field(
        pattern=NAME, description="a hand-over the operator configured (handovers.yaml)"
    )
    fallback: Literal["cold"] = "cold"  # a host handed over keeps no server
    fate: Literal["live", "cold"] = "live"
    register_timeout: float = Field(600.0, gt=0, description="longest wait for a host to join")
