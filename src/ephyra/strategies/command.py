"""The ``command`` strategy: shell command templates that upgrade, downgrade and tell the
version of a target.

Options::

    upgrade    the command that takes the target to {version} (required)
    downgrade  the command that takes it back to {version}, the version it ran before
               (without it there is no downgrade)
    version    a command whose last output line is the version the target runs; without
               it the version before is unknown ('') and the version after is {version}
    env        extra environment variables (templates) of every command
    via        a prefix that runs each command line on the host, e.g. "ssh {host}"
    timeout    seconds any one command may run

Each command runs with ``sh -c`` and sees ``EPHYRA_HOST``, ``EPHYRA_VERSION``,
``EPHYRA_SERVICES``, ``EPHYRA_SERVICE`` and ``EPHYRA_KIND``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ephyra.errors import NoDowngrade
from ephyra.strategies import shell
from ephyra.strategies.base import Change, Output, Strategy, Target
from ephyra.strategies.options import COMMON, Options


class CommandStrategy(shell.VersionCommand, Strategy):
    name = "command"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        opts = Options(self.name, options, ("upgrade", "downgrade", "version", *COMMON))
        self.upgrade_command = str(
            opts.template("upgrade", required="the shell command that upgrades a target")
        )
        self.downgrade_command = opts.template("downgrade")
        self.version_command = opts.template("version")
        self.env = opts.environment()
        self.timeout = opts.seconds()
        opts.via()

    def _run(self, what: str, template: str, target: Target, output: Output) -> Change:
        before = self.version(target)
        shell.run(
            template,
            target,
            output,
            what=f"{what} command",
            options=self.options,
            env=self._env(target),
            timeout=self.timeout,
        )
        after = self.version(target) if self.version_command else target.version
        return Change(before, after)

    def upgrade(self, target: Target, output: Output) -> Change:
        return self._run("upgrade", self.upgrade_command, target, output)

    def can_downgrade(self) -> bool:
        return bool(self.downgrade_command)

    def downgrade(self, target: Target, output: Output) -> Change:
        if not self.downgrade_command:
            raise NoDowngrade(
                "the command strategy has no downgrade: its options give no 'downgrade' command"
            )
        return self._run("downgrade", self.downgrade_command, target, output)
