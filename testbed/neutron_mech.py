"""The ML2 mechanism driver of the testbed's Neutron: binds every port, on any host, at once.

Neutron's real drivers (Open vSwitch, OVN...) bind a port only to a host whose agent or
chassis they know; the testbed runs none. This driver binds a port on the first segment
offered, whatever ``binding:host_id`` says, as an Open vSwitch port with a port filter, and
sets it ACTIVE, so Nova's fake virt driver boots servers on ``compute-1``... without a port
ending in ``binding_failed``. It moves no packet.

ML2 loads mechanism drivers by entry point only (``neutron.ml2.mechanism_drivers``):
:class:`testbed.neutron.Neutron` writes a ``.dist-info`` naming this class as ``testbed``
on the path of its own processes.
"""

from __future__ import annotations

from typing import Any

from neutron_lib import constants  # type: ignore[import-untyped]
from neutron_lib.api.definitions import portbindings  # type: ignore[import-untyped]
from neutron_lib.plugins.ml2 import api  # type: ignore[import-untyped]

#: The entry point's name, for ``[ml2] mechanism_drivers``.
NAME = "testbed"


class HostBindingDriver(api.MechanismDriver):  # type: ignore[misc]
    """Binds every port to the host it is asked for; see the module docstring."""

    def initialize(self) -> None:
        pass

    def bind_port(self, context: Any) -> None:
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True},
                status=constants.PORT_STATUS_ACTIVE,
            )
            return
