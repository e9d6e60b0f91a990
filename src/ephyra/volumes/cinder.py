"""One cloud's block storage (Cinder's API v3), as the volume drain needs it: the volumes
of a storage host, its pools, a volume's migration to another pool, and where it is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ephyra.clouds import connect, translated
from ephyra.errors import CloudError

SERVICE = "block storage"
#: The API version of every request: ``os-vol-host-attr:host`` and ``migration_status``
#: are shown to admins from 3.0 on; 3.60 is Cinder's since Victoria.
MICROVERSION = "3.60"
#: A migration's last states.
MIGRATED, MIGRATION_FAILED = "success", "error"


@dataclass(frozen=True)
class Volume:
    id: str
    name: str
    status: str  # available, in-use...
    pool: str  # host@backend#pool, as Cinder names where a volume is
    migration: str  # migration_status: '' (none), starting, migrating, completing, success, error
    attached_to: tuple[str, ...]  # server ids

    @property
    def host(self) -> str:
        """The storage host of the volume's pool."""
        return host_of(self.pool)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Volume:
        return cls(
            id=str(data["id"]),
            name=str(data.get("name") or ""),
            status=str(data.get("status") or ""),
            pool=str(data.get("os-vol-host-attr:host") or ""),
            migration=str(
                data.get("migration_status") or data.get("os-vol-mig-status-attr:migstat") or ""
            ),
            attached_to=tuple(
                str(a["server_id"]) for a in data.get("attachments") or () if a.get("server_id")
            ),
        )


def host_of(pool: str) -> str:
    """``storage-1`` of ``storage-1@lvm#pool``."""
    return pool.partition("#")[0].partition("@")[0]


class VolumeCloud:
    """A cloud's Cinder, through openstacksdk's connection (its errors translated)."""

    def __init__(self, name: str, conn: Any) -> None:
        self.name = name
        self._conn = conn

    @classmethod
    def connect(cls, name: str) -> VolumeCloud:
        return cls(name, connect(name))

    def _call(self, verb: str, path: str, action: str, body: Any = None) -> Any:
        with translated(self.name, action, SERVICE):
            response = getattr(self._conn.block_storage, verb)(
                path, json=body, microversion=MICROVERSION, raise_exc=False
            )
        if response.status_code >= 400:
            raise CloudError(f"{self.name}: {action}: Cinder answered {response.status_code}")
        return response.json() if response.content else None

    def volumes_on(self, host: str) -> list[Volume]:
        """Every project's volumes in a pool of ``host``, oldest first. Cinder filters them
        (an admin's ``host`` filter matches ``host``, ``host@backend`` and
        ``host@backend#pool``), so a drain's polls do not list the whole cloud."""
        found: list[Volume] = []
        marker = ""
        while True:
            query = {"all_tenants": "1", "host": host, "limit": "200", "sort": "created_at:asc"}
            if marker:
                query["marker"] = marker
            page = self._call("get", f"/volumes/detail?{urlencode(query)}", "list volumes")
            listed = [Volume.from_api(v) for v in page.get("volumes") or ()]
            found += [v for v in listed if v.host == host]
            if len(listed) < 200:
                return found
            marker = listed[-1].id

    def volume(self, volume_id: str) -> Volume:
        shown = self._call("get", f"/volumes/{volume_id}", f"show volume {volume_id}")
        return Volume.from_api(shown["volume"])

    def pools(self) -> list[str]:
        """Every pool the scheduler knows (``host@backend#pool``)."""
        found = self._call("get", "/scheduler-stats/get_pools", "list storage pools")
        return sorted(str(p["name"]) for p in found.get("pools") or ())

    def migrate(self, volume_id: str, pool: str) -> None:
        """Cinder's own migration of a volume to ``pool`` (an attached one, Nova swaps)."""
        body = {"os-migrate_volume": {"host": pool, "force_host_copy": False}}
        self._call("post", f"/volumes/{volume_id}/action", f"migrate volume {volume_id}", body)
