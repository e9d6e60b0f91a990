"""nova-conductor or nova-scheduler kept in the process group it starts in.

``python -m testbed.nova_controller nova-conductor ARGS`` (or ``nova-scheduler``) runs Nova's
command with ``ARGS``. Nova runs these services with cotyledon, whose master process makes
itself a session leader (``os.setsid``) whenever it can. Started directly by the testbed it
cannot (it already leads its group, so ``setsid`` fails and cotyledon goes on); started by
:mod:`testbed.supervise` it could, and would leave the process group that the testbed stops
and kills. Here ``setsid`` fails as it does for a group leader (EPERM), so the service and its
workers stay in the supervisor's group.

As :mod:`testbed.nova_compute` does, the first heartbeat goes out as soon as the service
starts, not 5 s later, so that a restarted service shows in its service record at once.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from typing import NoReturn

COMMANDS = {"nova-conductor": "nova.cmd.conductor", "nova-scheduler": "nova.cmd.scheduler"}


def _no_new_session() -> NoReturn:
    raise PermissionError(errno.EPERM, "the testbed keeps this service in its process group")


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in COMMANDS:
        print(
            f"usage: python -m testbed.nova_controller {{{','.join(COMMANDS)}}} ARGS...",
            file=sys.stderr,
        )
        return 2
    os.setsid = _no_new_session
    sys.argv = [argv[1], *argv[2:]]
    command = importlib.import_module(COMMANDS[argv[1]])  # Nova's concurrency backend first
    from nova.servicegroup import api as servicegroup

    servicegroup.INITIAL_REPORTING_DELAY = 0
    return int(command.main() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
