"""The ``command`` workload: each step is a shell command line run with ``/bin/sh -c``.

Options (all optional)::

    prepare          run before a node leaves; exit 0 = ready, ``defer_exit_code`` = not now
    return           run after the node is back in service on the other control plane
    node_health      exit 0 = the node is healthy (the last output line is the detail)
    app_health       exit 0 = the whole application is healthy
    timeout          seconds any one command may run (default 600)
    defer_exit_code  exit code of ``prepare`` that asks for the node to be retried later (75)

The node is given to every command but ``app_health`` in the environment:
``EPHYRA_NODE_UUID``, ``EPHYRA_NODE_NAME`` (empty when the node has none), and
``EPHYRA_NODE_EXTRA`` / ``EPHYRA_NODE_PROPERTIES`` as JSON objects.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from ephyra.engine import commands
from ephyra.errors import CommandTimeout, Interrupted, NodeDeferred, PluginError, StepFailed
from ephyra.workloads.base import Health, NodeRef

SHELL = "/bin/sh"
TAIL_LINES = 5
_STEPS = ("prepare", "return", "node_health", "app_health")
_OPTIONS = (*_STEPS, "timeout", "defer_exit_code")


def _nonblank(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class ShellResult:
    """What a finished command left behind."""

    returncode: int
    stdout: str
    stderr: str

    def tail(self, count: int = TAIL_LINES) -> str:
        """The last ``count`` output lines, stderr preferred (where failures speak)."""
        lines = _nonblank(self.stderr) or _nonblank(self.stdout)
        return "\n".join(lines[-count:])

    def last_line(self) -> str:
        """The last line on stdout, else on stderr ("" when both are empty)."""
        lines = _nonblank(self.stdout) or _nonblank(self.stderr)
        return lines[-1] if lines else ""

    def last_stderr_line(self) -> str:
        lines = _nonblank(self.stderr)
        return lines[-1] if lines else ""

    def describe_exit(self) -> str:
        if self.returncode < 0:
            return f"was killed by signal {-self.returncode}"
        return f"exited with code {self.returncode}"


def run_shell(
    command: str, timeout: float, extra_env: Mapping[str, str] | None = None
) -> ShellResult:
    """Run ``command`` with ``/bin/sh -c``; on timeout kill its whole process group.

    Raises :class:`CommandTimeout` when ``timeout`` seconds pass, and :class:`OSError`
    when the shell itself cannot be started.
    """
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.Popen(
        [SHELL, "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,  # its own process group: a timeout kills the children too
    )
    with commands.running(proc) as running:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise CommandTimeout(command, timeout) from None
    if running.ended:  # the run is no longer this process's
        raise Interrupted(f"{command!r} ended: {running.ended}")
    return ShellResult(proc.returncode, stdout, stderr)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def node_environment(node: NodeRef) -> dict[str, str]:
    """The environment variables that describe ``node`` to a command."""
    return {
        "EPHYRA_NODE_UUID": node.uuid,
        "EPHYRA_NODE_NAME": node.name or "",
        "EPHYRA_NODE_EXTRA": json.dumps(dict(node.extra), sort_keys=True, default=str),
        "EPHYRA_NODE_PROPERTIES": json.dumps(dict(node.properties), sort_keys=True, default=str),
    }


def _positive_float(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise PluginError(f"workload option {key}={value!r}: not a number") from None
    if not number > 0:
        raise PluginError(f"workload option {key}={value!r}: must be greater than 0")
    return number


def _exit_code(key: str, value: str) -> int:
    try:
        code = int(value)
    except ValueError:
        raise PluginError(f"workload option {key}={value!r}: not an integer") from None
    if not 1 <= code <= 255:
        raise PluginError(f"workload option {key}={value!r}: must be an exit code 1-255")
    return code


class CommandWorkload:
    """Tells the application about a move by running the operator's own commands."""

    name = "command"

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        opts = dict(options or {})
        unknown = sorted(set(opts) - set(_OPTIONS))
        if unknown:
            raise PluginError(
                f"workload 'command': unknown option(s) {', '.join(unknown)} "
                f"(valid: {', '.join(_OPTIONS)})"
            )
        self.commands = {step: opts[step] for step in _STEPS if opts.get(step, "").strip()}
        self.timeout = _positive_float("timeout", opts.get("timeout", "600"))
        self.defer_exit_code = _exit_code("defer_exit_code", opts.get("defer_exit_code", "75"))

    def prepare(self, node: NodeRef) -> None:
        result = self._run("prepare", node)
        if result is None or result.returncode == 0:
            return
        if result.returncode == self.defer_exit_code:
            reason = result.last_stderr_line() or "no reason given"
            raise NodeDeferred(f"node {node.label}: prepare command deferred it: {reason}")
        raise self._failure("prepare", node, result)

    def return_node(self, node: NodeRef) -> None:
        result = self._run("return", node)
        if result is not None and result.returncode != 0:
            raise self._failure("return", node, result)

    def node_health(self, node: NodeRef) -> Health:
        return self._health(self._run("node_health", node))

    def app_health(self) -> Health:
        return self._health(self._run("app_health", None))

    def _run(self, step: str, node: NodeRef | None) -> ShellResult | None:
        command = self.commands.get(step)
        if command is None:
            return None
        env = node_environment(node) if node is not None else {}
        where = f" for node {node.label}" if node is not None else ""
        try:
            return run_shell(command, self.timeout, env)
        except CommandTimeout:
            raise StepFailed(
                f"{step} command{where} timed out after {self.timeout:g}s "
                f"(option timeout): {command}"
            ) from None
        except OSError as exc:
            raise StepFailed(f"{step} command{where} could not be started: {exc}") from None

    @staticmethod
    def _failure(step: str, node: NodeRef, result: ShellResult) -> StepFailed:
        tail = result.tail()
        output = f":\n{tail}" if tail else " (no output)"
        return StepFailed(f"{step} command for node {node.label} {result.describe_exit()}{output}")

    @staticmethod
    def _health(result: ShellResult | None) -> Health:
        if result is None:
            return Health(ok=True, detail="no health command configured")
        detail = result.last_line()
        if result.returncode != 0 and not detail:
            detail = f"health command {result.describe_exit()}"
        return Health(ok=result.returncode == 0, detail=detail)
