"""``compute`` probe plugin: the run's compute API lists servers, through a connection of
its own (what ``availability:`` has always probed, as a named target of ``probes:``)."""

from __future__ import annotations

from typing import ClassVar

from ephyra.compute.nova import ComputeCloud
from ephyra.errors import EphyraError, UsageError
from ephyra.probes.base import Unreachable


class ComputeProbe:
    needs_target: ClassVar[bool] = False

    def __init__(self, target: str, timeout: float, cloud: str | None) -> None:
        if not cloud:
            raise UsageError("a compute probe needs the run's cloud (--os-cloud)")
        self.cloud = ComputeCloud.connect(cloud)

    @classmethod
    def check(cls, target: str) -> None:
        raise UsageError("a compute probe takes no target: it asks the run's cloud")

    def ask(self) -> None:
        try:
            self.cloud.answers()
        except Exception as exc:  # whatever stops the API from answering
            said = str(exc) if isinstance(exc, EphyraError) else type(exc).__name__
            raise Unreachable(said) from None
