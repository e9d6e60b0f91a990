"""What a settings apply is started with: the document itself (the API never reads a file
a caller names), the cloud it is applied to, and whether to prune."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ephyra.bodies import Body
from ephyra.names import NAME


class SettingsBody(Body):
    cloud: str = Field(pattern=NAME, description="cloud from clouds.yaml (an admin of it)")
    document: dict[str, Any] = Field(
        description="the settings document (as `ephyra settings export` writes it)"
    )
    prune: bool = Field(False, description="delete what the cloud has and the document does not")
