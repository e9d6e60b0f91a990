"""A cloud's settings as a document: every section the cloud has a service for."""

from __future__ import annotations

from typing import Any

from ephyra.settings.cloud import SettingsCloud
from ephyra.settings.document import document_of


def export(cloud: str, target: SettingsCloud | None = None) -> dict[str, Any]:
    """The settings document of the cloud ``cloud`` of clouds.yaml."""
    found = target or SettingsCloud.connect(cloud)
    sections = found.sections()
    types = found.network_types() if "network" in sections else set()
    return document_of(found.read(sections), sections, cloud, types)
