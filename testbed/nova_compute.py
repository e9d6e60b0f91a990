"""nova-compute with the testbed's virt driver: ``python -m testbed.nova_compute ARGS``.

Nova loads ``compute_driver`` from the ``nova.virt`` package only. This entry point imports
Nova's own nova-compute first (which chooses Nova's concurrency backend on import), makes
:mod:`testbed.nova_driver` importable as ``nova.virt.testbed_fake`` and runs nova-compute
with the same arguments (``--config-file``...); ``compute_driver`` is then
``testbed_fake.TestbedFakeDriver``.

One more difference from a stock nova-compute: the first heartbeat goes out as soon as the
service listens for RPC, not 5 s later, so that the testbed sees when a (re)started
compute is ready from its service record alone.
"""

from __future__ import annotations

import sys

from nova.cmd import compute
from nova.servicegroup import api as servicegroup

from testbed import nova_driver

sys.modules["nova.virt.testbed_fake"] = nova_driver
servicegroup.INITIAL_REPORTING_DELAY = 0

if __name__ == "__main__":
    sys.exit(compute.main())
