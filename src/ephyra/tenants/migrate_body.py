"""What a tenant migration run is started with."""

from __future__ import annotations

from pydantic import Field

from ephyra.bodies import Body
from ephyra.names import NAME
from ephyra.tenants.migrate_records import (
    DEFAULT_BYTES_IN_FLIGHT,
    DEFAULT_CONCURRENCY,
    DEFAULT_MIGRATOR_ROLE,
)


class TenantMigrationBody(Body):
    source: str = Field(pattern=NAME, description="cloud A, from clouds.yaml (an admin)")
    target: str = Field(pattern=NAME, description="cloud B, from clouds.yaml (an admin)")
    project: str = Field(pattern=NAME, description="the project to move: its id or name")
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=64, description="servers moved at once")
    bytes_in_flight: int = Field(
        DEFAULT_BYTES_IN_FLIGHT,
        ge=64 * 1024,
        le=64 * 1024**3,
        description="bytes of images read from A and not yet sent to B, at most",
    )
    role: str = Field(
        DEFAULT_MIGRATOR_ROLE,
        pattern=NAME,
        description="the role the run's user holds on the project while it moves",
    )
    split_inherited: bool = Field(
        False, description="freeze writers that inherit their role (see tenant maintenance)"
    )
