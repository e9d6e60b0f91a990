"""A compute host in maintenance: its nova-compute service disabled, with a reason that
names Ephyra and the run. Only a service Ephyra disabled is ever enabled again by it."""

from __future__ import annotations

import time
import uuid
from contextlib import AbstractContextManager

from ephyra.compute.nova import ComputeCloud, Service
from ephyra.engine.journal import Journal
from ephyra.engine.kinds import host_lock
from ephyra.engine.service import holding_locks
from ephyra.engine.states import RunState
from ephyra.errors import NotOurs
from ephyra.names import is_name

PREFIX = "ephyra "


#: The journal's records of maintenance switched on by hand (``ephyra host maintenance``).
MAINTENANCE = "maintenance"
#: The notices of a host put in and out of maintenance (docs/notifications.md).
HOST_START = "ephyra.host.maintenance.start"
HOST_END = "ephyra.host.maintenance.end"
#: The notice of a server left running on a host its run drains, as its owner asked
#: (fate ``notify``): for whoever tells the owner.
SERVER_LEFT = "ephyra.server.maintenance.notify"
#: The end of the text of a service switched on again (see :func:`switch_off`).
ENABLED = "nova-compute enabled"


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
    return f"{service.host}: {ENABLED}"


def maintenance_on(journal: Journal, cloud_name: str, host: str, lock_url: str | None) -> str:
    """Disable the host's nova-compute with a reason naming Ephyra and a record of its own."""
    cloud = ComputeCloud.connect(cloud_name)
    with _holding(journal, cloud_name, host, lock_url):
        svc = cloud.service(host)
        run = journal.create_run(
            MAINTENANCE,
            {
                "state": RunState.SUCCEEDED.value,
                "cloud": cloud_name,
                "hosts": [host],
                "created": time.time(),
            },
            {},
        )
        text = switch_on(cloud, svc, f"{run_prefix(MAINTENANCE, run.id)}: {host} in maintenance")
        journal.save_run(run, result=text)
        if svc.enabled:  # put in maintenance now, by this command
            _announce(journal, run.id, HOST_START, cloud_name, host)
        return text


def maintenance_off(journal: Journal, cloud_name: str, host: str, lock_url: str | None) -> str:
    """Enable the host's nova-compute, only if Ephyra disabled it and no run holds it."""
    cloud = ComputeCloud.connect(cloud_name)
    with _holding(journal, cloud_name, host, lock_url):
        svc = cloud.service(host)
        text = switch_off(cloud, svc)
        if not svc.enabled:  # out of maintenance now, by this command
            _announce(journal, _run_of(svc.reason), HOST_END, cloud_name, host)
        return text


def _run_of(reason: str) -> str:
    """The run (or record) whose reason put a service in maintenance, or a new id."""
    words = reason.split(":", 1)[0].split()
    if len(words) == 4 and words[2] == "run" and is_name(words[3]):
        return words[3]
    return str(uuid.uuid4())


def _announce(journal: Journal, run_id: str, event_type: str, cloud: str, host: str) -> None:
    """A host put in or out of maintenance by ``ephyra host maintenance``: told to the
    configured default notifiers, with the events of the record of the maintenance."""
    from ephyra.engine import notify

    notify.announce(
        journal.engine,
        run_id,
        MAINTENANCE,
        event_type,
        notify.of_run({}),
        cloud=cloud,
        host=host,
        by="ephyra host maintenance",
    )


def _holding(
    journal: Journal, cloud: str, host: str, lock_url: str | None
) -> AbstractContextManager[object]:
    return holding_locks(journal, [host_lock(cloud, host)], lock_url)
