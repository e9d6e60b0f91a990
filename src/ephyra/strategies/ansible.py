"""The ``ansible`` strategy: a playbook run by ansible-runner against the target's host.

Options::

    playbook           the playbook that upgrades (required; a path, a template)
    inventory          an inventory path or host list ("h1,h2,"), or a list of them
                       (default: Ansible's own)
    limit              the hosts the play runs on (default "{host}")
    extravars          more extra variables (string values are templates; a secret is a
                       reference, {from_env: NAME} or {from_file: PATH}, read when the
                       play runs)
    version            a shell command whose last output line is the version the target
                       runs; without it the version before is unknown ('') and the version
                       after is {version}
    rollback_playbook  the playbook that takes the target back to ``ephyra_version`` (the
                       version it ran before); without it there is no downgrade
    env                environment variables of ansible-playbook (e.g. ANSIBLE_CONFIG)
    timeout            seconds the playbook may run

The play gets the extra variables ``ephyra_version``, ``ephyra_host``,
``ephyra_services`` (a list), ``ephyra_service`` and ``ephyra_kind``. Every line
ansible-playbook prints goes to the output as it comes; a failed task or an unreachable
host fails the step with the task's name, its host and its message.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ansible_runner

from ephyra.errors import NoDowngrade, StrategyFailed, UsageError
from ephyra.strategies import shell
from ephyra.strategies.base import COMMAND_TIMEOUT, Change, Output, Strategy, Target, render, tail
from ephyra.strategies.options import (
    ENV,
    TIMEOUT,
    Options,
    SecretRef,
    check_template,
    checked_variables,
    rendered,
    rendered_vars,
)

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FAILED_EVENTS = ("runner_on_failed", "runner_on_unreachable")
# Colour codes off: the lines go to journals and terminals that did not ask for them.
QUIET_COLOUR = {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}


class AnsibleStrategy(Strategy):
    name = "ansible"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        opts = Options(
            self.name,
            options,
            (
                "playbook",
                "inventory",
                "limit",
                "extravars",
                "version",
                "rollback_playbook",
                ENV,
                TIMEOUT,
            ),
        )
        self.playbook = str(opts.template("playbook", required="the path of the playbook"))
        self.inventory = _inventory(opts.data.get("inventory"))
        self.limit = str(opts.template("limit", "{host}"))
        self.extravars = _extravars(opts.data.get("extravars"))
        self.version_command = opts.template("version")
        self.rollback_playbook = opts.template("rollback_playbook")
        self.env = opts.environment()
        self.timeout = opts.seconds()

    def version(self, target: Target) -> str:
        return shell.version(self.version_command, target, timeout=self.timeout)

    def upgrade(self, target: Target, output: Output) -> Change:
        return self._play(self.playbook, target, output)

    def can_downgrade(self) -> bool:
        return bool(self.rollback_playbook)

    def downgrade(self, target: Target, output: Output) -> Change:
        if not self.rollback_playbook:
            raise NoDowngrade(
                "the ansible strategy has no downgrade: its options give no 'rollback_playbook'"
            )
        return self._play(self.rollback_playbook, target, output)

    def _play(self, template: str, target: Target, output: Output) -> Change:
        before = self.version(target)
        playbook = Path(render(template, target)).expanduser().resolve()
        run_playbook(
            playbook,
            output,
            inventory=[render(item, target) for item in self.inventory],
            limit=render(self.limit, target),
            extravars={**self._extravars(target), **ephyra_vars(target)},
            env={**QUIET_COLOUR, **rendered(self.env, target)},
            timeout=self.timeout or COMMAND_TIMEOUT,
        )
        after = self.version(target) if self.version_command else target.version
        return Change(before, after)

    def _extravars(self, target: Target) -> dict[str, Any]:
        return rendered_vars(self.extravars, target)


def ephyra_vars(target: Target) -> dict[str, Any]:
    """The extra variables that tell a play its target."""
    return {
        "ephyra_version": target.version,
        "ephyra_host": target.host,
        "ephyra_services": list(target.services),
        "ephyra_service": target.values()["service"],
        "ephyra_kind": target.kind,
    }


def run_playbook(
    playbook: Path,
    output: Output,
    *,
    inventory: list[str],
    limit: str,
    extravars: Mapping[str, Any],
    env: Mapping[str, str],
    timeout: float | None,
) -> None:
    """Run ``playbook`` with ansible-runner, each line it prints to ``output``; raise
    StrategyFailed with the failed tasks' messages unless it succeeds."""
    if not playbook.is_file():
        raise StrategyFailed(f"ansible: no playbook {playbook}")
    binary = Path(_ansible_playbook())
    # ansible-runner runs "ansible-playbook" from PATH (a binary of its own choosing would
    # be run raw, without the playbook): the one found goes first.
    path = os.pathsep.join([str(binary.parent), env.get("PATH", os.environ.get("PATH", ""))])
    lines: list[str] = []
    failures: list[str] = []

    def on_event(event: Mapping[str, Any]) -> bool:
        for line in ANSI.sub("", str(event.get("stdout") or "")).splitlines():
            lines.append(line)
            output(line)
        data = event.get("event_data") or {}
        if event.get("event") in FAILED_EVENTS and not data.get("ignore_errors"):
            failures.append(_failure(data))
        return False  # nothing kept on disk: the lines are in the output

    with tempfile.TemporaryDirectory(prefix="ephyra-ansible-") as private:
        try:
            result = ansible_runner.run(
                private_data_dir=private,
                playbook=str(playbook),
                inventory=inventory or None,
                limit=limit or None,
                extravars=dict(extravars),
                envvars={**env, "PATH": path},
                event_handler=on_event,
                cancel_callback=lambda: False,  # Ctrl-C pauses the run between steps
                quiet=True,
                timeout=int(timeout) if timeout else None,
            )
        except Exception as exc:  # ansible-runner's own errors: bad inventory, no binary
            raise StrategyFailed(f"ansible: cannot run {playbook}: {exc}") from exc
    if result.status != "successful":
        detail = "; ".join(failures) or tail(lines)
        raise StrategyFailed(
            f"ansible-playbook {playbook} {result.status} (exit code {result.rc}): {detail}"
        )


def _failure(data: Mapping[str, Any]) -> str:
    """``task 'NAME' on HOST: MESSAGE`` of a failed or unreachable event."""
    res = data.get("res") or {}
    message = str(res.get("msg") or "").strip()
    stderr = str(res.get("stderr") or "").strip()
    if stderr and stderr not in message:
        message = f"{message}: {stderr}" if message else stderr
    return f"task {data.get('task', '?')!r} on {data.get('host', '?')}: {message or 'failed'}"


def _ansible_playbook() -> str:
    """ansible-playbook beside this Python (the virtualenv's), else on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    if beside.exists():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if not found:
        raise StrategyFailed("ansible: no ansible-playbook beside Ephyra or on PATH")
    return found


def _inventory(value: Any) -> list[str]:
    """The ``inventory`` option as a list of templates."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise UsageError(
            f"inventory: must be an inventory path or host list, or a list of them (got {value!r})"
        )
    for index, item in enumerate(items):
        check_template(f"inventory[{index}]" if len(items) > 1 else "inventory", item)
    return list(items)


def _extravars(value: Any) -> dict[str, Any]:
    """The ``extravars`` option: variable names to values, string values templates."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(
            f"extravars: must be a mapping of variable names to values (got {value!r})"
        )
    for key in value:
        if not isinstance(key, str) or not key.isidentifier():
            raise UsageError(f"extravars: {key!r} is not an Ansible variable name")
        if key.startswith("ephyra_"):
            raise UsageError(f"extravars.{key}: the ephyra_ variables are set by Ephyra")
    checked = checked_variables("extravars", value)
    for key, item in checked.items():
        if isinstance(item, str) and not isinstance(item, SecretRef):
            check_template(f"extravars.{key}", item)
    return checked
