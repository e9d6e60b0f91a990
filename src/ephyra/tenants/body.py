"""What a tenant maintenance run is started with."""

from __future__ import annotations

from pydantic import Field

from ephyra.bodies import Body, Name
from ephyra.names import NAME
from ephyra.tenants.records import DEFAULT_WRITING, READER


class TenantMaintenanceBody(Body):
    cloud: str = Field(pattern=NAME, description="cloud from clouds.yaml (an admin of Keystone)")
    project: str = Field(pattern=NAME, description="the project to freeze: its id or name")
    writing_roles: list[Name] = Field(
        default_factory=lambda: list(DEFAULT_WRITING),
        min_length=1,
        max_length=32,
        description="roles that may write: each holder gets the reader role instead",
    )
    reader_role: str = Field(READER, pattern=NAME, description="the role given instead")
    split_inherited: bool = Field(
        False,
        description="replace an inherited writing assignment at its source by direct ones on "
        "every other project it reaches (else such a writer refuses the plan)",
    )
