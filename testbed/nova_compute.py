"""nova-compute with the testbed's virt driver: ``python -m testbed.nova_compute ARGS``.

Nova loads ``compute_driver`` from the ``nova.virt`` package only. This entry point imports
Nova's own nova-compute first (which chooses Nova's concurrency backend on import), makes
:mod:`testbed.nova_driver` importable as ``nova.virt.testbed_fake`` and runs nova-compute
with the same arguments (``--config-file``...); ``compute_driver`` is then
``testbed_fake.TestbedFakeDriver``.

Two more differences from a stock nova-compute, both about heartbeats:

- the first heartbeat goes out as soon as the service listens for RPC, not 5 s later, so
  that the testbed sees when a (re)started compute is ready from its service record alone;
- a heartbeat waits for the conductor's answer only :func:`heartbeat_timeout` seconds
  (``service_down_time - 2 * report_interval - 1``, 5 s here), not ``rpc_response_timeout``
  (60 s). A conductor that is restarting drops the answer to a call it takes while it stops
  ("during upgrade we will see messaging timeouts as nova-conductor is restarted", Nova
  says); with the testbed's short intervals a 60 s wait would show the compute down for
  most of a minute, where a cloud with Nova's defaults (10 s and 60 s) sees it down for
  about 10 s at most. The next heartbeat, 2 s later, goes to the new conductor.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from nova.cmd import compute
from nova.conductor import rpcapi as conductor_rpcapi
from nova.servicegroup import api as servicegroup
from nova.servicegroup.drivers import db as servicegroup_db

from testbed import nova_driver

CONF = compute.CONF
_heartbeat = threading.local()
_report_state = servicegroup_db.DbDriver._report_state
_object_action = conductor_rpcapi.ConductorAPI.object_action


def heartbeat_timeout() -> int:
    """Seconds a heartbeat waits for the conductor: one lost answer never makes it down."""
    return max(1, int(CONF.service_down_time) - 2 * int(CONF.report_interval) - 1)


def _report_state_briefly(self: Any, service: Any) -> None:
    _heartbeat.active = True
    try:
        _report_state(self, service)
    finally:
        _heartbeat.active = False


def _object_action_of_heartbeat(
    self: Any, context: Any, objinst: Any, objmethod: str, args: Any, kwargs: Any
) -> Any:
    if not getattr(_heartbeat, "active", False):
        return _object_action(self, context, objinst, objmethod, args, kwargs)
    call = self.client.prepare(timeout=heartbeat_timeout())
    return call.call(
        context, "object_action", objinst=objinst, objmethod=objmethod, args=args, kwargs=kwargs
    )


sys.modules["nova.virt.testbed_fake"] = nova_driver
servicegroup.INITIAL_REPORTING_DELAY = 0
servicegroup_db.DbDriver._report_state = _report_state_briefly
conductor_rpcapi.ConductorAPI.object_action = _object_action_of_heartbeat

if __name__ == "__main__":
    sys.exit(compute.main())
