"""A probe plugin: asks one target whether it answers, as its users would.

A plugin is a class of the ``ephyra.probes`` entry-point group: made with the target as
written in the specification (a server-side name already resolved to it in ``ephyra
serve``), the seconds one probe may take and the run's cloud; :meth:`Probe.ask` returns
when the target answered and raises :class:`Unreachable` (its words are kept in the
outage) when it did not. Built in: ``tcp`` (``host:port`` connects), ``http`` (a URL
answers below 500), ``icmp`` (an address answers ping) and ``compute`` (the run's compute
API lists servers).
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from ephyra import plugins
from ephyra.errors import EphyraError, UsageError

NAMESPACE = "ephyra.probes"
#: The journal record of a run that keeps each target's timeline, by target name.
RECORD = "probes"


#: What a probe raises when its target did not answer: what happened, in a few words (no
#: raw exception), kept as the outage's ``error``.
Unreachable = EphyraError


class Probe(Protocol):
    """One target's probe."""

    #: Whether the target is written in the specification (else the plugin knows it).
    needs_target: ClassVar[bool]

    def __init__(self, target: str, timeout: float, cloud: str | None) -> None: ...

    @classmethod
    def check(cls, target: str) -> None:
        """Raise UsageError (in a few words) unless ``target`` is one this plugin probes."""
        ...

    def ask(self) -> None:
        """Return when the target answered; raise :class:`Unreachable` when not."""
        ...


def plugin(kind: str) -> type[Probe]:
    return plugins.load(NAMESPACE, kind, Probe)


def known() -> str:
    return ", ".join(plugins.names(NAMESPACE)) or "none"


def checked(kind: str, target: str, where: str) -> None:
    """That a probe of ``kind`` can probe ``target``: UsageError naming ``where`` if not."""
    cls = plugin(kind)
    if cls.needs_target and not target:
        raise UsageError(f"{where}.target: required by a {kind} probe")
    if not cls.needs_target and target:
        raise UsageError(f"{where}.target: a {kind} probe takes none")
    if target:
        try:
            cls.check(target)
        except UsageError as exc:
            raise UsageError(f"{where}.target: {exc}") from exc
