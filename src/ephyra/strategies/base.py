"""What every upgrade strategy is: upgrade a target to a version, say which version it
runs, and downgrade where the strategy can.

A strategy is built from the options of its ``strategies:`` entry in the upgrade
specification (``type: NAME`` selects the plugin). Its output goes, line by line, to
the ``output`` callable it is given, which the run turns into events.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ephyra import plugins
from ephyra.errors import PluginError, StepFailed, UsageError

NAMESPACE = "ephyra.strategies"

Output = Callable[[str], None]
TAIL_LINES = 5  # output lines a failure message carries
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a command past its timeout


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
    """The strategy an options mapping names with ``type``, its options checked."""
    if not isinstance(options, Mapping):
        raise UsageError(f"a strategy is a mapping of options with a type, not {options!r}")
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


def on_host(
    argv: Sequence[str],
    options: Mapping[str, Any],
    target: Target,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """``argv`` as run for ``target``: with ``env`` set by ``env(1)``, and, when the
    ``via`` option is set, given to its prefix as one shell-quoted command line (what
    ``ssh {host}``, ``sudo sh -c`` or ``docker exec NAME sh -c`` expect)."""
    full = list(argv)
    if env:
        full = ["env", *(f"{key}={value}" for key, value in env.items()), *full]
    prefix = via(options, target)
    return [*prefix, shlex.join(full)] if prefix else full


def stream(
    argv: Sequence[str],
    output: Output,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    what: str = "",
    ok: Collection[int] = (0,),
    timeout: float | None = None,
) -> str:
    """Run ``argv``, each output line to ``output``; return the output; raise unless its
    exit code is in ``ok``. Past ``timeout`` seconds the command and its children are
    stopped (SIGTERM, then SIGKILL) and that is a failure too.

    The command runs in a session of its own: Ctrl-C on Ephyra pauses the run at the
    next step boundary and does not cut a package manager in the middle.
    """
    name = what or shlex.join(argv)
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
            start_new_session=True,
        )
    except OSError as exc:
        raise StrategyFailed(f"{name}: cannot run {argv[0]}: {exc}") from exc
    expired = threading.Event()
    timer = None
    if timeout is not None:
        timer = threading.Timer(timeout, _stop, (proc, expired))
        timer.daemon = True
        timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            output(line)
        code = proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
    if expired.is_set():
        raise StrategyFailed(f"{name} timed out after {timeout:g}s: {tail(lines)}")
    if code not in ok:
        raise StrategyFailed(f"{name} exited with {code}: {tail(lines)}")
    return "\n".join(lines)


def probe(
    argv: Sequence[str], *, what: str, timeout: float | None = None, cwd: Path | str | None = None
) -> str:
    """The last non-blank output line of ``argv`` (a version), stripped; raise on failure."""
    out = stream(argv, lambda line: None, what=what, timeout=timeout, cwd=cwd)
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def tail(lines: Sequence[str], count: int = TAIL_LINES) -> str:
    """The last ``count`` non-blank lines, where a failure usually says what went wrong."""
    kept = [line for line in lines if line.strip()]
    return "\n".join(kept[-count:]) or "(no output)"


def _stop(proc: subprocess.Popen[str], expired: threading.Event) -> None:
    expired.set()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(KILL_GRACE)
            return
        except subprocess.TimeoutExpired:
            continue
