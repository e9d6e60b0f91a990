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
import subprocess
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ephyra import plugins
from ephyra.engine import commands
from ephyra.errors import Interrupted, NoDowngrade, StrategyFailed, UsageError
from ephyra.names import check_name, check_version

NAMESPACE = "ephyra.strategies"

Output = Callable[[str], None]
TAIL_LINES = 5  # output lines a failure message carries
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a command past its timeout
#: Default seconds an upgrade or downgrade command may run (a strategy's ``timeout``).
COMMAND_TIMEOUT = 1800.0
#: Default seconds a check, a validation or a version probe may run.
CHECK_TIMEOUT = 60.0
#: Default seconds a host's reboot command may run.
REBOOT_TIMEOUT = 600.0


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
        """Whether ``downgrade`` can take a target back, with these options. Asked when an
        upgrade is planned: the plan names the strategies that cannot, so that an operator
        knows before starting what a rollback would leave."""
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
    cls = plugins.load(NAMESPACE, kind, Strategy)
    rest = {k: v for k, v in options.items() if k != "type"}
    return cls(rest)


def render(template: str, target: Target, *, shell: bool = False, **extra: str) -> str:
    """``template`` with {host} {version} {services} {service} {kind} and ``extra`` filled in.

    The target's host must be a valid name and its version a valid version (or empty):
    anything else is refused before a command is built. With ``shell``, the template is a
    shell command line and every value goes in shell-quoted (``shlex.quote``; each service
    of {services} is one word), so a value is always one word to the shell however it is
    spelt; a placeholder must then not stand inside quotes of the template."""
    _check(target)
    values = {**target.values(), **extra}
    if shell:
        values = {key: shlex.quote(value) for key, value in values.items()}
        values["services"] = " ".join(shlex.quote(s) for s in target.services)
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise UsageError(f"bad template {template!r}: {exc}") from exc


def _check(target: Target) -> None:
    check_name(target.host, "host name")
    if target.version:
        check_version(target.version)


def via(options: Mapping[str, Any], target: Target) -> list[str]:
    """The argv prefix of the ``via`` option (e.g. ``ssh {host}``): split into words first,
    then each word filled in, so a value can never add a word; [] if unset."""
    prefix = options.get("via")
    if not prefix:
        return []
    try:
        words = shlex.split(str(prefix))
    except ValueError as exc:
        raise UsageError(f"bad via prefix {prefix!r}: {exc}") from exc
    return [render(word, target) for word in words]


@dataclass(frozen=True)
class Invocation:
    """A command as it is started: its argv, the environment it gets on top of Ephyra's,
    and a script fed on its standard input (None: it reads nothing)."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    script: str | None = None


REMOTE_SHELL = ("sh", "-s")  # what a ``via`` prefix runs: it reads its script on stdin


def on_host(
    argv: Sequence[str],
    options: Mapping[str, Any],
    target: Target,
    env: Mapping[str, str] | None = None,
) -> Invocation:
    """``argv`` as run for ``target``, with ``env`` added to its environment; no value of
    ``env`` ever stands in an argv (``ps`` shows argv to every user).

    Without the ``via`` option the command runs here with ``env`` in its process
    environment. With it (e.g. ``ssh {host}``, ``sudo sh -c``, ``docker exec -i NAME sh
    -c``) the prefix is given the fixed command line ``sh -s`` and the script on its
    standard input exports each variable (shell-quoted) and then execs ``argv``: the
    prefix must pass its standard input on (ssh does; ``docker exec`` needs ``-i``)."""
    prefix = via(options, target)
    if not prefix:
        return Invocation(tuple(argv), dict(env or {}))
    lines = [f"export {key}={shlex.quote(value)}" for key, value in (env or {}).items()]
    script = "\n".join([*lines, f"exec {shlex.join(argv)}", ""])
    return Invocation((*prefix, shlex.join(REMOTE_SHELL)), {}, script)


def stream(
    argv: Sequence[str] | Invocation,
    output: Output,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    what: str = "",
    ok: Collection[int] = (0,),
    timeout: float | None = None,
) -> str:
    """Run ``argv``, each output line to ``output``; return the output; raise unless its
    exit code is in ``ok``. Past ``timeout`` seconds (None: :data:`COMMAND_TIMEOUT`) the
    command and its children are stopped (SIGTERM, then SIGKILL) and that is a failure too.

    The command runs in a session of its own: Ctrl-C on Ephyra pauses the run at the
    next step boundary and does not cut a package manager in the middle. A run that stops
    being this process's (a conductor's lost claim) ends it the same way
    (:mod:`ephyra.engine.commands`): that raises :class:`~ephyra.errors.Interrupted`.
    """
    call = argv if isinstance(argv, Invocation) else Invocation(tuple(argv))
    limit = timeout or COMMAND_TIMEOUT
    name = what or shlex.join(call.argv)
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            list(call.argv),
            stdin=subprocess.DEVNULL if call.script is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **call.env, **(env or {})},
            cwd=cwd,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        raise StrategyFailed(f"{name}: cannot run {call.argv[0]}: {exc}") from exc
    if call.script is not None:
        threading.Thread(target=_feed, args=(proc, call.script), daemon=True).start()
    expired = threading.Event()
    timer = threading.Timer(limit, _stop, (proc, expired))
    timer.daemon = True
    timer.start()
    try:
        with commands.running(proc) as running:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                output(line)
            code = proc.wait()
    finally:
        timer.cancel()
    if running.ended:
        raise Interrupted(f"{name} ended: {running.ended}")
    if expired.is_set():
        raise StrategyFailed(f"{name} timed out after {limit:g}s: {tail(lines)}")
    if code not in ok:
        failed = StrategyFailed(f"{name} exited with {code}: {tail(lines)}")
        failed.returncode = code
        raise failed
    return "\n".join(lines)


def _feed(proc: subprocess.Popen[str], script: str) -> None:
    """Write ``script`` to the standard input of ``proc`` and close it (a command that
    exits without reading it all is no error here: its exit code tells)."""
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, OSError, ValueError):
        proc.stdin.write(script)
    with contextlib.suppress(BrokenPipeError, OSError, ValueError):
        proc.stdin.close()


def probe(
    argv: Sequence[str] | Invocation,
    *,
    what: str,
    timeout: float | None = None,
    cwd: Path | str | None = None,
) -> str:
    """The last non-blank output line of ``argv`` (a version), stripped; raise on failure.
    ``timeout`` None: :data:`CHECK_TIMEOUT`."""
    out = stream(argv, lambda line: None, what=what, timeout=timeout or CHECK_TIMEOUT, cwd=cwd)
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def tail(lines: Sequence[str], count: int = TAIL_LINES) -> str:
    """The last ``count`` non-blank lines, where a failure usually says what went wrong."""
    kept = [line for line in lines if line.strip()]
    return "\n".join(kept[-count:]) or "(no output)"


def _stop(proc: subprocess.Popen[str], expired: threading.Event) -> None:
    expired.set()
    commands.stop(proc, KILL_GRACE)
