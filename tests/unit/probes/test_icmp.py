"""The ``icmp`` probe against real echo requests: a loopback address answers, an address
taken off the host stops answering, and with no ICMP socket allowed the probe is refused
before it is used, saying what to change."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import icmplib
import pytest
from pyroute2 import IPRoute

from ephyra.errors import UsageError
from ephyra.probes.base import Unreachable
from ephyra.probes.icmp import IcmpProbe
from ephyra.upgrade.probing import Target, read

#: A documentation address (RFC 5737), put on the loopback device for the test.
ADDRESS = "198.51.100.77"


@pytest.fixture
def on_loopback() -> Iterator[IPRoute]:
    """The loopback device, ``ADDRESS`` off it again after the test."""
    with IPRoute() as ip:
        lo = ip.link_lookup(ifname="lo")[0]
        yield ip
        if any(a.get_attr("IFA_ADDRESS") == ADDRESS for a in ip.get_addr(index=lo)):
            ip.addr("del", index=lo, address=ADDRESS, prefixlen=32)


@pytest.mark.parametrize("target", ["127.0.0.1", "::1", "localhost"])
def test_a_loopback_address_answers(target: str) -> None:
    IcmpProbe(target, 2.0, None).ask()


def test_an_address_answers_while_the_host_has_it_and_not_once_it_is_gone(
    on_loopback: IPRoute,
) -> None:
    lo = on_loopback.link_lookup(ifname="lo")[0]
    probe = IcmpProbe(ADDRESS, 0.5, None)
    on_loopback.addr("add", index=lo, address=ADDRESS, prefixlen=32)
    probe.ask()
    on_loopback.addr("del", index=lo, address=ADDRESS, prefixlen=32)
    with pytest.raises(Unreachable, match=r"^no echo reply$"):
        probe.ask()
    assert ipaddress.ip_address(ADDRESS).is_private  # never a real host's


def test_a_target_is_an_address_or_a_host_name() -> None:
    data = {"targets": [{"name": "fip", "type": "icmp", "target": "203.0.113.5"}]}
    assert read(data).targets == (Target("fip", "icmp", "203.0.113.5"),)
    for bad in ("", "a b", "http://h/", "h;reboot", "$(id)"):
        with pytest.raises(UsageError):
            read({"targets": [{"name": "fip", "type": "icmp", "target": bad}]})


class Denied:
    """An ICMP socket of a machine where the process may open none."""

    def __init__(self, privileged: bool) -> None:
        raise icmplib.SocketPermissionError(privileged)


def test_with_no_icmp_socket_allowed_the_probe_is_refused_saying_what_to_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(icmplib, "ICMPv4Socket", Denied)
    with pytest.raises(UsageError, match=r"ping_group_range, gid \d+\) or give it CAP_NET_RAW"):
        IcmpProbe("127.0.0.1", 1.0, None)
