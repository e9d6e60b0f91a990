"""What a forklift run is started with."""

from __future__ import annotations

from pydantic import Field

from ephyra.bodies import MAX_ITEMS, Body, Key, Name, Text
from ephyra.names import NAME


class ForkliftBody(Body):
    source: str = Field(alias="from", pattern=NAME, description="cloud the nodes leave")
    target: str = Field(alias="to", pattern=NAME, description="cloud the nodes join")
    nodes: list[Name] | None = Field(
        None, max_length=MAX_ITEMS, description="only these nodes (names or UUIDs)"
    )
    concurrency: int = Field(1, ge=1, le=1000, description="nodes moved at once")
    batch_size: int = Field(0, ge=0, description="nodes between two health gates (0: concurrency)")
    max_failures: int = Field(0, ge=0, description="failed nodes tolerated before the run stops")
    workload: str = Field(
        "noop", pattern=NAME, description="workload plugin: noop, command, hadoop"
    )
    workload_options: dict[Key, Text] = Field(default_factory=dict, max_length=64)
    credentials: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="masked BMC secrets: a name the server's operator configured "
        "(ephyra serve --config) or 'source' (in-process also file:PATH)",
    )
    nova: bool = Field(
        False,
        description="Nova owns the nodes: each node's server is deleted with the node and "
        "booted again on it in the target",
    )
    step_timeout: float = Field(1800.0, gt=0)
    health_timeout: float = Field(600.0, gt=0)
    gate_timeout: float = Field(600.0, gt=0)
    max_deferrals: int = Field(20, ge=0)
    defer_wait: float = Field(30.0, ge=0)
