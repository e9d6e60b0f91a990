"""A private etcd (Debian's ``etcd-server``, 3.4) on free loopback ports.

One member, its data in ``data_dir``. :meth:`Etcd.start` keeps the data that is there, so a
stop (or a kill) and a start is a restart that must lose nothing; :meth:`Etcd.wipe` empties
it. ``fsync=False`` (the default) skips fsync for speed: a killed etcd process still loses
nothing (its writes are with the kernel), only a power loss would.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from testbed.daemon import Daemon
from testbed.ironic import LOOPBACK, TestbedError, free_port

BINARY = "/usr/bin/etcd"


def _installed() -> str:
    path = shutil.which("etcd") or (BINARY if Path(BINARY).exists() else None)
    if path is None:
        raise TestbedError("etcd is not installed (scripts/bootstrap.sh installs etcd-server)")
    return path


class Etcd:
    def __init__(self, data_dir: Path, log: Path, *, fsync: bool = False) -> None:
        self.data_dir = data_dir
        self.log = log
        self.port = free_port()
        self.peer_port = free_port()
        peer = f"http://{LOOPBACK}:{self.peer_port}"
        argv = [
            _installed(),
            "--name=testbed",
            f"--data-dir={data_dir / 'member-data'}",
            f"--listen-client-urls={self.endpoint}",
            f"--advertise-client-urls={self.endpoint}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=testbed={peer}",
            "--initial-cluster-state=new",
            "--log-level=warn",
            "--logger=zap",
        ]
        if not fsync:
            argv.append("--unsafe-no-fsync")
        self.daemon = Daemon("etcd", argv, log, cwd=data_dir)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """The store URL Ephyra takes (``--store``, tooz locks, the jobboard)."""
        return f"etcd3+http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.daemon.start()
        self.daemon.wait_until(self.healthy, timeout, "healthy")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/health", timeout=1.0) as reply:
                return bool(json.loads(reply.read()).get("health") == "true")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self) -> None:
        self.daemon.stop()

    def kill(self) -> None:
        self.daemon.kill()

    def wipe(self) -> None:
        """Stop and forget every key."""
        self.stop()
        shutil.rmtree(self.data_dir / "member-data", ignore_errors=True)

    def __enter__(self) -> Etcd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
