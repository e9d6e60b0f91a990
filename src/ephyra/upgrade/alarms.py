"""Alarm gates: before and after each stage of an upgrade, the alerts a Prometheus
Alertmanager holds active are read and judged; an alert that stops the run holds it at
the gate (up to ``wait`` seconds, for it to resolve), then pauses it, naming the alerts.

The specification's ``alarms:``::

    alarms:
      url: http://alertmanager.example:9093   # its API v2
      policy: strict        # strict: every alert stops the run; relaxed: only those below
      severities: [critical]   # relaxed: alerts whose label `severity` is one of these stop
      names: [CephHealthError] # relaxed: alerts of these names (label `alertname`) stop
      ignore: [Watchdog]       # alert names that never stop the run
      wait: 0               # seconds a gate waits for the alerts to resolve (0: pause at once)
      interval: 10          # seconds between two readings while it waits

Only active alerts count: those Alertmanager shows as neither silenced nor inhibited (so
the silences the ``alertmanager`` self-healing plugin sets for a batch's hosts keep that
batch's planned alerts from stopping the run). An Alertmanager that cannot be read stops
the run as an alert would: a gate that cannot see is not green.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from ephyra.engine.control import Control
from ephyra.errors import UsageError
from ephyra.names import is_name
from ephyra.urls import is_http, redact

#: Seconds one reading of Alertmanager may take.
HTTP_TIMEOUT = 10.0
POLICIES = ("strict", "relaxed")
#: Alerts named in a pause reason; the rest are counted.
SHOWN = 5


@dataclass(frozen=True)
class Alarms:
    """``alarms:`` of a specification (no ``url``: no alarm gate)."""

    url: str = ""
    policy: str = "strict"
    severities: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    wait: float = 0.0
    interval: float = 10.0

    def __post_init__(self) -> None:
        if self.url and not is_http(self.url):
            raise UsageError(f"alarms.url: Alertmanager's http(s) URL, not {redact(self.url)!r}")
        if self.policy not in POLICIES:
            raise UsageError(f"alarms.policy: one of {', '.join(POLICIES)}, not {self.policy!r}")
        if self.policy == "relaxed" and not (self.severities or self.names):
            raise UsageError("alarms: a relaxed policy names the severities or names that stop")
        for key in ("severities", "names", "ignore"):
            bad = [v for v in getattr(self, key) if not is_name(v)]
            if bad:
                raise UsageError(f"alarms.{key}: not a name: {bad[0]!r}")
        if self.interval <= 0:
            raise UsageError("alarms.interval: must be positive")

    def stops(self, alert: Mapping[str, Any]) -> bool:
        """Whether this active alert stops the run, by the policy."""
        labels = alert.get("labels") or {}
        name = str(labels.get("alertname", ""))
        if name in self.ignore:
            return False
        if self.policy == "strict":
            return True
        return name in self.names or str(labels.get("severity", "")) in self.severities


def describe(alert: Mapping[str, Any]) -> str:
    """``HostDown{instance=compute-1, severity=critical}``."""
    labels = dict(alert.get("labels") or {})
    name = labels.pop("alertname", "alert")
    shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{name}{{{shown}}}" if shown else str(name)


class AlarmGate:
    """Reads the active alerts and judges them (:meth:`blocking`), and holds a run at a
    gate while they stop it (:meth:`hold`)."""

    def __init__(self, alarms: Alarms, control: Control, message: Callable[[str], None]) -> None:
        self.alarms, self.control, self.message = alarms, control, message

    def blocking(self) -> list[str]:
        """The active alerts that stop the run, described; an unreadable Alertmanager is
        one of them."""
        url = f"{self.alarms.url.rstrip('/')}/api/v2/alerts"
        query = {"active": "true", "silenced": "false", "inhibited": "false"}
        try:
            response = requests.get(url, params=query, timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            return [f"Alertmanager at {self.alarms.url} unreadable ({type(exc).__name__})"]
        if response.status_code != 200:
            return [f"Alertmanager at {self.alarms.url} answered {response.status_code}"]
        try:
            alerts = response.json()
        except ValueError:
            return [f"Alertmanager at {self.alarms.url} answered no JSON"]
        if not isinstance(alerts, list):
            return [f"Alertmanager at {self.alarms.url} answered no list of alerts"]
        return sorted(
            describe(a) for a in alerts if isinstance(a, Mapping) and self.alarms.stops(a)
        )

    def hold(self, gate: str) -> str:
        """'' once nothing stops the run at ``gate`` (waiting up to ``wait`` seconds for
        the alerts to resolve), else why the run pauses there."""
        deadline = time.monotonic() + self.alarms.wait
        said = False
        while True:
            found = self.blocking()
            if not found:
                if said:
                    self.message(f"alarms {gate}: resolved")
                return ""
            listed = ", ".join(found[:SHOWN]) + (
                f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
            )
            if time.monotonic() >= deadline:
                return f"alarms {gate}: {listed}"
            if not said:
                self.message(f"alarms {gate}: waiting up to {self.alarms.wait:.0f}s: {listed}")
                said = True
            self.control.sleep(min(self.alarms.interval, max(0.0, deadline - time.monotonic())))
