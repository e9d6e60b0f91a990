"""A private RabbitMQ broker (Debian's ``rabbitmq-server`` package) on free loopback ports.

Every port the broker needs is its own and on 127.0.0.1: AMQP, Erlang distribution, and the
Erlang port mapper (epmd). The testbed starts that epmd itself, in the foreground, before
the broker, so the broker does not spawn a detached one that would outlive it. Node name,
cookie, configuration, database and logs live in ``base_dir``, which must be reachable by
the ``rabbitmq`` user (the broker runs as that user when the testbed runs as root).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from testbed.daemon import Daemon, give_to, service_user
from testbed.ironic import LOOPBACK, TestbedError, free_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
#: Seconds a broker gets to stop cleanly before its group is killed (its data is discarded).
STOP_GRACE_S = 5.0


def _epmd() -> str:
    found = shutil.which("epmd") or shutil.which("epmd", path="/usr/lib/erlang/bin")
    if found is None:
        raise TestbedError("epmd not found (scripts/bootstrap.sh installs rabbitmq-server)")
    return found


def _listens(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


class RabbitMQ:
    """One RabbitMQ node with user ``guest``/``guest`` (allowed from loopback only)."""

    user = "rabbitmq"

    def __init__(self, base_dir: Path, log_dir: Path) -> None:
        if not SERVER.exists():
            raise TestbedError("rabbitmq-server is not installed (scripts/bootstrap.sh does)")
        self.base_dir = base_dir
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = f"ephyra-{self.port}@localhost"
        self.owner = service_user(self.user)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(base_dir / "home"),
            "ERL_EPMD_ADDRESS": LOOPBACK,
            "ERL_EPMD_PORT": str(self.epmd_port),
        }
        self.env = {
            **env,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(base_dir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(base_dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base_dir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base_dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base_dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base_dir / "log"),
            "RABBITMQ_LOGS": "-",  # to standard output, which goes to our log file
            "RABBITMQ_PID_FILE": str(base_dir / "rabbitmq.pid"),
        }
        self.epmd = Daemon(
            "epmd",
            [_epmd(), "-address", LOOPBACK, "-port", str(self.epmd_port)],
            log_dir / "epmd.log",
            env=env,
            cwd=base_dir,
            owner=self.owner,
        )
        self.daemon = Daemon(
            "rabbitmq",
            [str(SERVER)],
            log_dir / "rabbitmq.log",
            env=self.env,
            cwd=base_dir,
            owner=self.owner,
            grace=STOP_GRACE_S,
        )

    @property
    def transport_url(self) -> str:
        return f"rabbit://guest:guest@{LOOPBACK}:{self.port}/"

    def write_config(self) -> None:
        base = self.base_dir
        for sub in ("home", "mnesia", "log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (base / "rabbitmq-env.conf").write_text("")
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {LOOPBACK}:{self.port}\n"
            "loopback_users.guest = true\n"
            "log.console = true\n"
            "log.console.level = warning\n"
        )
        dist = self.dist_port
        (base / "advanced.config").write_text(
            "[{kernel, [{inet_dist_use_interface, {127,0,0,1}},\n"
            f"           {{inet_dist_listen_min, {dist}}}, {{inet_dist_listen_max, {dist}}}]}}].\n"
        )
        give_to(base, self.owner)

    def start_epmd(self) -> None:
        """Start the port mapper; returns once it listens."""
        self.epmd.start()
        self.epmd.wait_until(lambda: _listens(self.epmd_port), 10.0, "listening")

    def start(self, timeout: float = 60.0) -> None:
        """Write the configuration, start epmd and the broker, wait until AMQP listens."""
        self.write_config()
        self.start_epmd()
        self.daemon.start()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.daemon.wait_until(lambda: _listens(self.port), timeout, "listening for AMQP")

    def stop(self) -> None:
        """Stop the broker, then its port mapper."""
        try:
            self.daemon.stop()
        finally:
            self.epmd.stop()
