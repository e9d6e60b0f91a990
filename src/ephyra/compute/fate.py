"""Each server's fate in a drain, decided before the maintenance window from what Nova says.

Whether a server can be live-migrated is read from its embedded flavor (the flavor Nova
copied into the server when it was booted or resized, shown from microversion 2.47 with
its extra specs) and from its image's properties:

- PCI devices: a flavor extra spec ``pci_passthrough:alias``;
- vGPUs: a flavor extra spec ``resources:VGPU`` (or of a numbered group, ``resources1:VGPU``);
- pinned CPUs: ``hw:cpu_policy=dedicated`` (flavor) or ``hw_cpu_policy=dedicated`` (image);
- the operator's word: ``ephyra:live_migration=false`` as a flavor extra spec or an image
  property (e.g. for the flavors of computes whose disks are LVM volumes, which Nova
  cannot block-migrate: the hypervisor's disk backend is not in the API);
- its status: Nova live-migrates ACTIVE and PAUSED servers only.

Local disks are not a reason: live migrations ask ``block_migration: auto``, Nova chooses.
Attached volumes are not one either: the API names them, not their encryption, and Nova
live-migrates servers with encrypted volumes.

What the server's owner asks: the metadata key ``ephyra:maintenance`` (value ``live``,
``cold``, ``stop`` or ``notify``), or a tag ``ephyra:maintenance=<value>``; else the
operator's default (the ``fate`` of the drain's settings). The fate planned follows:
``live`` where it can (else the fallback: ``cold``, ``stop`` or ``skip``, with the
reasons), ``cold``, ``stop`` (stopped where it is and started again after the host's
maintenance, never migrated), ``notify`` (left running where it is, named in the
report and told to the run's notifiers). A host down and fenced is evacuated whatever
was asked; a server in ERROR is left. A per-server migration timeout is a flavor extra
spec or image property ``ephyra:migration_timeout`` (seconds; the flavor's first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ephyra.errors import UsageError

if TYPE_CHECKING:  # openstacksdk: not for `ephyra host --help`
    from ephyra.compute.budget import Settings
    from ephyra.compute.nova import Server

#: The owner's choice, as a metadata key or a tag ``ephyra:maintenance=<fate>``.
MAINTENANCE_KEY = "ephyra:maintenance"
#: Seconds one move of the server may take, as a flavor extra spec or image property.
TIMEOUT_KEY = "ephyra:migration_timeout"
#: ``false`` (or ``no``, ``0``, ``off``): never live-migrated; flavor extra spec or image property.
LIVE_KEY = "ephyra:live_migration"
LIVE_STATES = frozenset({"ACTIVE", "PAUSED"})
FALSE = frozenset({"false", "no", "0", "off"})


class Fate(StrEnum):
    """What is asked for a server while its host is in maintenance."""

    LIVE = "live"
    COLD = "cold"
    STOP = "stop"  # stopped in place, started again after the maintenance
    NOTIFY = "notify"  # left running in place, reported

    @classmethod
    def parse(cls, text: str, where: str = "fate") -> Fate:
        word = "notify" if text == "leave" else text
        try:
            return cls(word)
        except ValueError:
            raise UsageError(
                f"{where}: {text!r} is none of {', '.join(f.value for f in cls)}"
            ) from None


#: Fates planned beside the asked ones: a fenced host's servers are evacuated, a server
#: that cannot be live-migrated under fallback ``skip`` is skipped, one in ERROR left (error).
EVACUATE, SKIP, ERROR = "evacuate", "skip", "error"


@dataclass(frozen=True)
class Decision:
    """One server's planned fate, and why it is not the one asked (``why``)."""

    fate: str
    asked: Fate
    by: str  # what asked it: "default", "metadata" or "tag"
    why: str = ""
    blockers: tuple[str, ...] = ()  # why it cannot be live-migrated
    timeout: float | None = None  # its own migration timeout

    def to_dict(self) -> dict[str, Any]:
        return {
            "fate": self.fate,
            "asked": self.asked.value,
            "by": self.by,
            "why": self.why,
            "not_live": list(self.blockers),
            "timeout": self.timeout,
        }

    def describe(self) -> str:
        asked = "" if self.by == "default" else f", asked {self.asked.value} by {self.by}"
        timeout = f", timeout {self.timeout:.0f}s" if self.timeout else ""
        why = f": {self.why}" if self.why else ""
        return f"{self.fate}{asked}{timeout}{why}"


def blockers(server: Server, image: Mapping[str, Any]) -> list[str]:
    """Why Nova could not live-migrate ``server`` (none: it can)."""
    specs = server.extra_specs
    found = []
    if specs.get("pci_passthrough:alias"):
        found.append(f"PCI devices (pci_passthrough:alias={specs['pci_passthrough:alias']})")
    vgpu = [k for k in specs if k.startswith("resources") and k.endswith(":VGPU")]
    if vgpu:
        found.append(f"vGPU ({vgpu[0]}={specs[vgpu[0]]})")
    if specs.get("hw:cpu_policy") == "dedicated":
        found.append("pinned CPUs (hw:cpu_policy=dedicated)")
    elif str(image.get("hw_cpu_policy")) == "dedicated":
        found.append("pinned CPUs (image hw_cpu_policy=dedicated)")
    for where, values in (("flavor", specs), ("image", image)):
        if str(values.get(LIVE_KEY, "")).strip().lower() in FALSE:
            found.append(f"forbidden by its {where} ({LIVE_KEY}={values[LIVE_KEY]})")
    if server.status not in LIVE_STATES:
        found.append(f"{server.status}: Nova live-migrates ACTIVE or PAUSED servers only")
    return found


def asked(server: Server, default: Fate) -> tuple[Fate, str, str]:
    """The fate asked for ``server``, what asked it, and a note on a value not understood."""
    values = (
        [("metadata", str(server.metadata[MAINTENANCE_KEY]))]
        if (MAINTENANCE_KEY in server.metadata)
        else []
    )
    prefix = MAINTENANCE_KEY + "="
    values += [("tag", t[len(prefix) :]) for t in server.tags if t.startswith(prefix)]
    for by, value in values:
        try:
            return Fate.parse(value.strip().lower()), by, ""
        except UsageError:
            return default, "default", f"{by} {MAINTENANCE_KEY}={value!r} not understood"
    return default, "default", ""


def timeout(server: Server, image: Mapping[str, Any]) -> float | None:
    """The server's own migration timeout, if its flavor or image gives a valid one."""
    for value in (server.extra_specs.get(TIMEOUT_KEY), image.get(TIMEOUT_KEY)):
        try:
            seconds = float(value) if value is not None else 0.0
        except (TypeError, ValueError):
            continue
        if seconds > 0:
            return seconds
    return None


def decide(
    server: Server, image: Mapping[str, Any], settings: Settings, evacuating: bool = False
) -> Decision:
    """What a drain does with ``server`` (``image``: its image's properties)."""
    wish, by, note = asked(server, settings.fate)
    not_live = tuple(blockers(server, image))
    seconds = timeout(server, image)

    def planned(fate: str, why: str = "") -> Decision:
        why = "; ".join(w for w in (why, note) if w)
        return Decision(fate, wish, by, why, not_live, seconds)

    if evacuating:
        if wish is Fate.LIVE and not note:
            return planned(EVACUATE)
        return planned(EVACUATE, f"its host is down and fenced: rebuilt elsewhere, not {wish}")
    if server.status == "ERROR":
        return planned(ERROR, "in ERROR: Nova moves it only by evacuation")
    if wish in (Fate.STOP, Fate.NOTIFY) and not settings.keep:
        return planned(Fate.COLD.value, f"no server stays on the host: cold, not {wish}")
    if wish is Fate.STOP and server.status == "SHUTOFF":
        return planned(Fate.STOP.value, "stopped already: stays stopped")
    if wish is not Fate.LIVE:
        return planned(wish.value)
    if not not_live:
        return planned(Fate.LIVE.value)
    fallback = settings.fallback.value
    fate = {"cold": Fate.COLD.value, "stop": Fate.STOP.value}.get(fallback, SKIP)
    why = f"cannot be live-migrated: {'; '.join(not_live)} (fallback {fallback})"
    if fate == Fate.STOP and server.status == "SHUTOFF":
        why = f"stopped already: stays stopped (fallback {fallback})"
    return planned(fate, why)


def counts(decisions: Mapping[str, Decision]) -> dict[str, int]:
    """How many servers each fate has."""
    found: dict[str, int] = {}
    for decision in decisions.values():
        found[decision.fate] = found.get(decision.fate, 0) + 1
    return dict(sorted(found.items()))
