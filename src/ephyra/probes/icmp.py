"""``icmp``: a host answers ping (an ICMP echo request), e.g. a server's floating IP or a
load balancer's VIP, as a user who pings it sees it.

The echo goes through icmplib. It needs an ICMP socket: an unprivileged one where the
kernel lets the process's group open one (``net.ipv4.ping_group_range``), else a raw one
(root, or ``CAP_NET_RAW``). With neither, a specification naming an ``icmp`` target is
refused where it is read, saying so; a ping never makes Ephyra ask for privileges."""

from __future__ import annotations

import ipaddress
import os
from typing import ClassVar

import icmplib

from ephyra.errors import UsageError
from ephyra.names import is_name
from ephyra.probes.base import Unreachable

#: What to do when neither socket may be opened.
NO_SOCKET = (
    "the icmp probe needs an ICMP socket: let the group of the process ping "
    "(sysctl net.ipv4.ping_group_range, gid {gid}) or give it CAP_NET_RAW"
)


def host(target: str) -> str:
    """``target``, an address or a host name; UsageError if it is neither."""
    try:
        ipaddress.ip_address(target)
    except ValueError:
        if not is_name(target):
            raise UsageError(f"an address or a host name, not {target[:80]!r}") from None
    return target


def privileged() -> bool:
    """Whether a ping here needs a raw socket (False: an unprivileged ICMP socket may be
    opened); UsageError when neither may."""
    for raw in (False, True):
        try:
            icmplib.ICMPv4Socket(privileged=raw).close()
        except icmplib.SocketPermissionError:
            continue
        return raw
    raise UsageError(NO_SOCKET.format(gid=os.getgid()))


class IcmpProbe:
    needs_target: ClassVar[bool] = True

    def __init__(self, target: str, timeout: float, cloud: str | None) -> None:
        self.target, self.timeout = target, timeout
        self.privileged = privileged()

    @classmethod
    def check(cls, target: str) -> None:
        """An address or a host name, and a machine that may ping (a plan made here is
        refused where its run could not ping)."""
        host(target)
        privileged()

    def ask(self) -> None:
        try:
            answer = icmplib.ping(
                self.target, count=1, timeout=self.timeout, privileged=self.privileged
            )
        except icmplib.NameLookupError:
            raise Unreachable("name not resolved") from None
        except icmplib.ICMPLibError as exc:
            raise Unreachable(type(exc).__name__) from None
        if not answer.is_alive:
            raise Unreachable("no echo reply")
