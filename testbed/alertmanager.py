"""A private Prometheus Alertmanager (Debian's ``prometheus-alertmanager``) on loopback.

:class:`Alertmanager` runs one Alertmanager on a free 127.0.0.1 port with clustering off
(``--cluster.listen-address=``: no gossip port at all) and a configuration whose only
receiver, ``null``, has no integration: alerts are routed, grouped, silenced and
inhibited as usual, and notify no one. Its silences and notification log live under
``root/data`` and are written there when it stops, so a stop and a start is a restart
that keeps every silence; :meth:`Alertmanager.wipe` forgets them.

Its API v2 is at :attr:`Alertmanager.api_url`: ``POST /silences``, ``GET /silences``,
``DELETE /silence/{id}`` (expire), ``POST /alerts``, ``GET /alerts``.
"""

from __future__ import annotations

import shutil
import time
from functools import partial
from pathlib import Path

from testbed.daemon import Daemon, http_ok
from testbed.ironic import LOOPBACK, TestbedError, free_port
from testbed.started import Started

BINARY = "/usr/bin/prometheus-alertmanager"

#: Every alert goes to the receiver ``null``, which sends nothing.
CONFIG = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""


def binary() -> str:
    """The installed Alertmanager."""
    found = shutil.which("prometheus-alertmanager") or (BINARY if Path(BINARY).exists() else None)
    if found is None:
        raise TestbedError(
            "prometheus-alertmanager is not installed (scripts/bootstrap.sh installs it)"
        )
    return found


class Alertmanager(Started):
    """One Alertmanager; ``root`` holds its configuration, data and log."""

    def __init__(self, root: Path, *, config: str = CONFIG) -> None:
        """``config``: the Alertmanager configuration (YAML), the null receiver by default."""
        self.root = Path(root).resolve()
        self.config_text = config
        self.config = self.root / "alertmanager.yml"
        self.data_dir = self.root / "data"
        self.port = free_port()
        self.start_seconds: float | None = None
        argv = [
            binary(),
            f"--config.file={self.config}",
            f"--storage.path={self.data_dir}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            f"--web.external-url={self.url}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        self.daemon = Daemon("alertmanager", argv, self.root / "alertmanager.log", cwd=self.root)

    def __repr__(self) -> str:
        return f"Alertmanager({str(self.root)!r}, url={self.url})"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def api_url(self) -> str:
        """The API v2 (``.../api/v2``)."""
        return f"{self.url}/api/v2"

    @property
    def is_running(self) -> bool:
        return self.daemon.is_running

    def start(self, timeout: float = 30.0) -> None:
        """Write the configuration, start (keeping the data there); wait until ready."""
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self.config_text)
        self.daemon.start()
        try:
            self.daemon.wait_until(partial(http_ok, f"{self.url}/-/ready"), timeout, "ready")
        except BaseException:
            self.daemon.stop()
            raise
        self.start_seconds = time.monotonic() - began

    def stop(self) -> None:
        """SIGTERM: Alertmanager writes its silences and notification log, then exits."""
        self.daemon.stop()

    def kill(self) -> None:
        self.daemon.kill()

    def wipe(self) -> None:
        """Stop and forget every silence and notification."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
