"""What every upgrade strategy is: upgrade a target to a version, say which version it
runs, and downgrade where the strategy can.

A strategy is built from the options of its ``strategies:`` entry in the upgrade
specification (``type: NAME`` selects the plugin). Its output goes, line by line, to
the ``output`` callable it is given, which the run turns into events.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ephyra import plugins
from ephyra.errors import PluginError, StepFailed, UsageError

NAMESPACE = "ephyra.strategies"

Output = Callable[[str], None]


class StrategyFailed(StepFailed):
    """An upgrade or downgrade command failed; the message says which and how."""


class NoDowngrade(StepFailed):
    """The strategy cannot take this target back to its previous version."""


@dataclass(frozen=True)
class Target:
    """What one step upgrades: some services of a host, or the whole host."""

    host: str
    version: str  # the version to reach (the release of the run, or the previous one)
    services: tuple[str, ...] = ()  # empty for a host upgrade
    kind: str = "service"  # "service" or "host" (OS, hypervisor, reboot)

    def values(self) -> dict[str, str]:
        """Template values for commands: {host} {version} {services} {service} {kind}."""
        return {
            "host": self.host,
            "version": self.version,
            "services": " ".join(self.services),
            "service": self.services[0] if self.services else "",
            "kind": self.kind,
        }


@dataclass(frozen=True)
class Change:
    before: str
    after: str


class Strategy:
    """Base of every strategy plugin."""

    name: ClassVar[str]

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def version(self, target: Target) -> str:
        """The version the target runs now ('' when it cannot be told)."""
        raise NotImplementedError

    def upgrade(self, target: Target, output: Output) -> Change:
        raise NotImplementedError

    def can_downgrade(self) -> bool:
        return False

    def downgrade(self, target: Target, output: Output) -> Change:
        """Take the target back to ``target.version`` (the version it ran before)."""
        raise NoDowngrade(f"the {self.name} strategy has no downgrade")


def build(options: Mapping[str, Any]) -> Strategy:
    """The strategy an options mapping names with ``type``."""
    kind = options.get("type")
    if not isinstance(kind, str):
        raise UsageError(f"a strategy needs a type (one of {', '.join(plugins.names(NAMESPACE))})")
    cls = plugins.load(NAMESPACE, kind)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise PluginError(f"strategy plugin {kind!r} is not a Strategy")
    rest = {k: v for k, v in options.items() if k != "type"}
    return cls(rest)


def render(template: str, target: Target, **extra: str) -> str:
    """``template`` with {host} {version} {services} {service} {kind} and ``extra`` filled in."""
    try:
        return template.format(**target.values(), **extra)
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(f"bad template {template!r}: {exc}") from exc


def via(options: Mapping[str, Any], target: Target) -> list[str]:
    """The argv prefix of the ``via`` option (e.g. ``ssh {host}``), rendered; [] if unset."""
    prefix = options.get("via")
    return shlex.split(render(str(prefix), target)) if prefix else []


def stream(
    argv: Sequence[str],
    output: Output,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    what: str = "",
    ok: Collection[int] = (0,),
) -> str:
    """Run ``argv``, each output line to ``output``; return the output; raise unless its
    exit code is in ``ok``."""
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise StrategyFailed(f"{what or argv[0]}: cannot run {argv[0]}: {exc}") from exc
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        lines.append(line)
        output(line)
    code = proc.wait()
    if code not in ok:
        tail = "\n".join(lines[-5:])
        raise StrategyFailed(f"{what or shlex.join(argv)} exited with {code}: {tail}")
    return "\n".join(lines)
