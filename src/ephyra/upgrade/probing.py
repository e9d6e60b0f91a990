"""Downtime measured: what users see, probed while an upgrade runs.

The specification's ``probes:`` names targets, each probed by a plugin of the
``ephyra.probes`` entry-point group (:mod:`ephyra.probes.base`)::

    probes:
      interval: 1        # seconds between two probes of each target (at least 0.1)
      timeout: 2         # seconds one probe may take
      targets:
        - {name: api-vip, type: tcp, target: "192.0.2.10:443"}
        - {name: keystone, type: http, target: "https://keystone.example:5000/v3"}
        - {name: web-fip, type: icmp, target: 203.0.113.7}
        - {name: nova, type: compute}          # the run's compute API

Each target is probed in a thread of the run while a phase runs; its timeline (as
:class:`ephyra.upgrade.availability.Timeline` keeps it: bins and outages) is kept in the
run's journal record ``probes``, by target name, and ``ephyra run report`` sets the
outages against the units (:mod:`ephyra.probes.report`). Through ``ephyra serve`` a target
is a name its operator configured (``probes:`` of ``--config``): the server connects to
no address a caller names.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ephyra.errors import UsageError
from ephyra.names import is_name, shown
from ephyra.probes import base
from ephyra.upgrade.availability import Probe, Timeline

RECORD = base.RECORD
KEYS = {"interval", "timeout", "targets"}
TARGET_KEYS = {"name", "type", "target"}


@dataclass(frozen=True)
class Target:
    name: str
    type: str
    target: str = ""  # what the plugin probes, as written ('' for compute)


@dataclass(frozen=True)
class Probes:
    """``probes:`` of a specification (no target: nothing probed)."""

    interval: float = 1.0
    timeout: float = 2.0
    targets: tuple[Target, ...] = ()


def _seconds(data: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0.1:
        raise UsageError(f"{where}.{key}: at least 0.1 seconds, not {shown(value)}")
    return float(value)


def read(data: Any, where: str = "probes") -> Probes:
    """``probes:`` as read from a specification, every target checked by its plugin."""
    if data is None:
        return Probes()
    if not isinstance(data, Mapping):
        raise UsageError(f"{where}: a mapping (interval, timeout, targets)")
    extra = sorted(set(map(str, data)) - KEYS)
    if extra:
        raise UsageError(f"{where}: unknown key(s) {', '.join(extra)}")
    listed = data.get("targets") or []
    if not isinstance(listed, list):
        raise UsageError(f"{where}.targets: a list of {{name, type, target}}")
    targets: list[Target] = []
    for i, item in enumerate(listed):
        at = f"{where}.targets[{i}]"
        if not isinstance(item, Mapping):
            raise UsageError(f"{at}: a mapping {{name, type, target}}")
        extra = sorted(set(map(str, item)) - TARGET_KEYS)
        if extra:
            raise UsageError(f"{at}: unknown key(s) {', '.join(extra)}")
        name, kind, target = item.get("name"), item.get("type"), item.get("target", "")
        if not is_name(name):
            raise UsageError(f"{at}.name: a name, not {shown(name)}")
        if any(t.name == name for t in targets):
            raise UsageError(f"{at}.name: {name!r} twice")
        if not isinstance(kind, str):
            raise UsageError(f"{at}.type: a probe plugin ({base.known()})")
        if not isinstance(target, str):
            raise UsageError(f"{at}.target: a string, not {shown(target)}")
        base.checked(kind, target, at)
        targets.append(Target(str(name), kind, target))
    interval = _seconds(data, "interval", 1.0, where)
    return Probes(interval, _seconds(data, "timeout", 2.0, where), tuple(targets))


def with_targets(data: Any, resolve: Callable[[str], str]) -> Any:
    """``data`` (a specification as read) with each probe's ``target`` passed through
    ``resolve``: in the server, a configured name becomes its address or URL and anything
    else is refused (:class:`ephyra.engine.kinds.Resolver`). What is not shaped as
    expected is left for :func:`read` to refuse."""
    if not isinstance(data, Mapping) or not isinstance(data.get("probes"), Mapping):
        return data
    probes = dict(data["probes"])
    listed = probes.get("targets")
    if isinstance(listed, list):
        probes["targets"] = [
            {**t, "target": resolve(t["target"])}
            if isinstance(t, Mapping) and isinstance(t.get("target"), str) and t["target"]
            else t
            for t in listed
        ]
    return {**data, "probes": probes}


class Saver:
    """Every target's timeline, saved together in the run's record (one write at a time)."""

    def __init__(self, save: Callable[[dict[str, Any]], None]) -> None:
        self.save, self.lock = save, threading.Lock()
        self.timelines: dict[str, Timeline] = {}

    def __call__(self, _changed: Timeline) -> None:
        with self.lock:
            self.save({name: t.to_dict() for name, t in self.timelines.items()})


def probing(
    probes: Probes,
    cloud: str | None,
    kept: Mapping[str, Any],
    save: Callable[[dict[str, Any]], None],
) -> contextlib.ExitStack:
    """Each target probed in a thread of its own until the stack closes, going on from
    the timelines ``kept`` (a resumed run), each saved through ``save``."""
    stack = contextlib.ExitStack()
    saver = Saver(save)
    made = []
    for target in probes.targets:
        plugin = base.plugin(target.type)(target.target, probes.timeout, cloud)
        timeline = Timeline.from_dict(kept.get(target.name) or {})
        saver.timelines[target.name] = timeline
        made.append(Probe(plugin.ask, timeline, saver, probes.interval))
    for probe in made:
        stack.enter_context(probe)
    return stack
