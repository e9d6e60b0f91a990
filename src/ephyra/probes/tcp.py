"""``tcp``: a TCP connection to ``host:port`` (``[v6]:port``) is accepted, e.g. a server
of the cloud or a load balancer's VIP."""

from __future__ import annotations

import socket
from typing import ClassVar

from ephyra.errors import UsageError
from ephyra.probes.base import Unreachable


def split(target: str) -> tuple[str, int]:
    """``(host, port)`` of ``host:port`` or ``[v6]:port``; UsageError if it is neither."""
    host, mark, port = target.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not mark or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"host:port, not {target[:80]!r}")
    if any(c.isspace() or c in "/@?#" for c in host):
        raise UsageError(f"host:port, not {target[:80]!r}")
    return host, int(port)


class TcpProbe:
    needs_target: ClassVar[bool] = True

    def __init__(self, target: str, timeout: float, cloud: str | None) -> None:
        self.target, self.timeout = target, timeout
        self.address = split(target)

    @classmethod
    def check(cls, target: str) -> None:
        split(target)

    def ask(self) -> None:
        try:
            with socket.create_connection(self.address, timeout=self.timeout):
                return
        except ConnectionRefusedError:
            raise Unreachable("connection refused") from None
        except TimeoutError:
            raise Unreachable(f"no answer in {self.timeout:g}s") from None
        except OSError as exc:
            raise Unreachable(exc.strerror or type(exc).__name__) from None
