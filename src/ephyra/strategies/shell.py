"""Shell command lines a strategy runs for a target: the environment they see, where they
run (``via``), and the version a command prints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ephyra.strategies.base import Invocation, Output, Target, on_host, probe, render, stream
from ephyra.strategies.options import rendered

SHELL = "sh"


def target_env(target: Target) -> dict[str, str]:
    """What every command learns of its target: ``EPHYRA_HOST``, ``EPHYRA_VERSION``,
    ``EPHYRA_SERVICES`` (space-separated), ``EPHYRA_SERVICE`` (the first) and
    ``EPHYRA_KIND``."""
    return {f"EPHYRA_{key.upper()}": value for key, value in target.values().items()}


def shell_argv(
    command: str,
    target: Target,
    options: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Invocation:
    """``sh -c COMMAND`` for ``target``, with its environment, on its host (``via``)."""
    return on_host(
        [SHELL, "-c", command], options or {}, target, {**target_env(target), **(env or {})}
    )


def run(
    template: str,
    target: Target,
    output: Output,
    *,
    what: str,
    options: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> str:
    """Render ``template`` for ``target`` (values shell-quoted) and run it, streaming its
    lines to ``output``; ``timeout`` None: the default of
    :data:`~ephyra.strategies.base.COMMAND_TIMEOUT`."""
    command = render(template, target, shell=True)
    argv = shell_argv(command, target, options, env)
    return stream(argv, output, what=f"{what} {command!r}", timeout=timeout)


def version(
    template: str | None,
    target: Target,
    *,
    options: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> str:
    """The last line the ``version`` command prints ('' when there is no such command);
    ``timeout`` None: the default of :data:`~ephyra.strategies.base.CHECK_TIMEOUT`."""
    if not template:
        return ""
    command = render(template, target, shell=True)
    argv = shell_argv(command, target, options, env)
    return probe(argv, what=f"version command {command!r}", timeout=timeout)


class VersionCommand:
    """For a strategy whose commands see its ``env`` option and whose version is what its
    ``version`` command prints."""

    options: dict[str, Any]
    env: dict[str, str]
    version_command: str | None
    timeout: float | None

    def _env(self, target: Target) -> dict[str, str]:
        return rendered(self.env, target)

    def version(self, target: Target) -> str:
        return version(
            self.version_command,
            target,
            options=self.options,
            env=self._env(target),
            timeout=self.timeout,
        )
