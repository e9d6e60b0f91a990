"""A volume driver of the Cinder testbed whose volumes hold data: sparse files on the host.

Cinder's fake driver (``cinder.tests.fake_driver.FakeLoggingVolumeDriver``) stores nothing
and hands out iSCSI connections to no target: Nova's fake virt driver attaches them, but
Cinder's own generic migration, which attaches both volumes on the cinder-volume host to
copy the data, cannot. :class:`FileVolumeDriver` is that fake driver (same capabilities,
one pool) with each volume a sparse file ``STATE_PATH/volumes/volume-<id>`` on its storage
host, handed out as a ``local`` connection (os-brick's ``LocalConnector``: the file's
path), which the cinder-volume host opens directly. A generic migration then copies the
file with ``dd`` as it would copy a block device; Nova's fake virt driver accepts the
connection as it accepts any.

``volume_driver = testbed.cinder_driver.FileVolumeDriver`` (the testbed's directory on
``PYTHONPATH``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from cinder.tests import fake_driver  # type: ignore[import-untyped]
from oslo_config import cfg

CONF = cfg.CONF
GIB = 1024**3


class FileVolumeDriver(fake_driver.FakeLoggingVolumeDriver):  # type: ignore[misc]
    """Cinder's fake driver with each volume a sparse file on its host; see the module
    docstring."""

    def _dir(self) -> Path:
        path = Path(CONF.state_path) / "volumes"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _path(self, volume: Any) -> Path:
        return self._dir() / str(volume["name"])

    def _truncate(self, volume: Any, size_gb: int) -> None:
        with open(self._path(volume), "ab") as data:
            data.truncate(size_gb * GIB)

    def do_setup(self, context: Any) -> None:
        super().do_setup(context)
        self._dir()

    def _update_volume_stats(self) -> None:
        """The fake driver's, and a copy onto this host's volumes keeps them sparse
        (``dd conv=sparse``)."""
        super()._update_volume_stats()
        self._stats["sparse_copy_volume"] = True

    def create_volume(self, volume: Any) -> Any:
        self._truncate(volume, int(volume["size"]))
        return super().create_volume(volume)

    def delete_volume(self, volume: Any) -> None:
        self._path(volume).unlink(missing_ok=True)

    def extend_volume(self, volume: Any, new_size: int) -> None:
        self._truncate(volume, new_size)

    def create_cloned_volume(self, volume: Any, src_vref: Any) -> None:
        shutil.copyfile(self._path(src_vref), self._path(volume))
        self._truncate(volume, int(volume["size"]))

    def validate_connector(self, connector: Any) -> None:
        """Any host may open a file: no initiator needed."""

    def initialize_connection(self, volume: Any, connector: Any) -> dict[str, Any]:
        info = super().initialize_connection(volume, connector)
        data = {**info.get("data", {}), "device_path": str(self._path(volume))}
        return {"driver_volume_type": "local", "data": data}

    def create_volume_from_snapshot(self, volume: Any, snapshot: Any) -> None:
        """Snapshots hold no data here: the new volume is empty."""
        self._truncate(volume, int(volume["size"]))

    def update_migrated_volume(
        self, ctxt: Any, volume: Any, new_volume: Any, original_volume_status: str
    ) -> dict[str, Any]:
        """After the migration of a detached volume to this host, its file takes the name
        of the migrated volume (whose record now describes it), as the LVM driver renames
        its logical volume; an attached one keeps the file its server has open."""
        current = self._dir() / str(CONF.volume_name_template % new_volume["id"])
        original = self._dir() / str(CONF.volume_name_template % volume["id"])
        if original_volume_status == "available" and not original.exists():
            os.rename(current, original)
            return {"_name_id": None, "provider_location": None}
        return {
            "_name_id": new_volume["_name_id"] or new_volume["id"],
            "provider_location": new_volume["provider_location"],
        }
