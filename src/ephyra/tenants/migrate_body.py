"""What a tenant migration run is started with."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from ephyra.bodies import Body
from ephyra.names import NAME
from ephyra.tenants.migrate_records import (
    DEFAULT_BYTES_IN_FLIGHT,
    DEFAULT_CONCURRENCY,
    DEFAULT_MIGRATOR_ROLE,
)

#: The bytes of an image read from A at a time: a slot holds at least one in flight.
CHUNK = 64 * 1024
#: Slots into one cloud B (``--concurrency``), at most.
MAX_CONCURRENCY = 64


def bounds_problem(concurrency: int, bytes_in_flight: int) -> str:
    """What is wrong with ``concurrency`` slots sharing ``bytes_in_flight`` bytes ('' if
    nothing): at least 1 slot, and one chunk of image bytes per slot."""
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        return f"concurrency {concurrency}: from 1 to {MAX_CONCURRENCY} slots"
    if bytes_in_flight < concurrency * CHUNK:
        return (
            f"bytes in flight {bytes_in_flight}: at least one chunk ({CHUNK} bytes) per slot, "
            f"{concurrency * CHUNK} for concurrency {concurrency}"
        )
    return ""


class TenantMigrationBody(Body):
    source: str = Field(pattern=NAME, description="cloud A, from clouds.yaml (an admin)")
    target: str = Field(pattern=NAME, description="cloud B, from clouds.yaml (an admin)")
    project: str = Field(pattern=NAME, description="the project to move: its id or name")
    concurrency: int = Field(
        DEFAULT_CONCURRENCY,
        ge=1,
        le=MAX_CONCURRENCY,
        description="slots of cloud B this run uses (0..N-1): a server move or an image "
        "copy holds one, shared with every tenant migration into B",
    )
    bytes_in_flight: int = Field(
        DEFAULT_BYTES_IN_FLIGHT,
        ge=CHUNK,
        le=64 * 1024**3,
        description="bytes of images read from A and not yet sent to B, at most: each slot "
        "holds bytes_in_flight / concurrency (at least one chunk, 65536 bytes)",
    )
    role: str = Field(
        DEFAULT_MIGRATOR_ROLE,
        pattern=NAME,
        description="the role the run's user holds on the project while it moves",
    )
    split_inherited: bool = Field(
        False, description="freeze writers that inherit their role (see tenant maintenance)"
    )

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        problem = bounds_problem(self.concurrency, self.bytes_in_flight)
        if problem:
            raise ValueError(problem)
        return self
