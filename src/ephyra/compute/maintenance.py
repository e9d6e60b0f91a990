"""A compute host in maintenance: its nova-compute service disabled, with a reason that
names Ephyra and the run. Only a service Ephyra disabled is ever enabled again by it."""

from __future__ import annotations

from ephyra.compute.nova import ComputeCloud, Service
from ephyra.errors import NotOurs

PREFIX = "ephyra "


def run_prefix(kind: str, run_id: str) -> str:
    return f"{PREFIX}{kind} run {run_id}"


def by_ephyra(service: Service) -> bool:
    return not service.enabled and service.reason.startswith(PREFIX)


def switch_on(cloud: ComputeCloud, service: Service, reason: str) -> str:
    """Disable the service; what was done, in words."""
    if service.enabled:
        cloud.disable(service, reason)
        return f"{service.host}: nova-compute disabled ({reason})"
    if by_ephyra(service):
        return f"{service.host}: already in maintenance ({service.reason})"
    return (
        f"{service.host}: nova-compute was already disabled by someone else "
        f"({service.reason or 'no reason given'}); left as it is"
    )


def switch_off(cloud: ComputeCloud, service: Service, prefix: str = PREFIX) -> str:
    """Enable the service if it was disabled with ``prefix``; refuse if someone else did."""
    if service.enabled:
        return f"{service.host}: nova-compute already enabled"
    if not service.reason.startswith(prefix):
        raise NotOurs(
            f"{service.host}: nova-compute was disabled by someone else "
            f"({service.reason or 'no reason given'}), not by "
            f"{'this run' if prefix != PREFIX else 'Ephyra'}: left disabled. Enable it yourself "
            f"(openstack compute service set --enable {service.host} nova-compute) if you mean to"
        )
    cloud.enable(service)
    return f"{service.host}: nova-compute enabled"
