"""The ``puppet`` strategy: ``puppet apply`` of a manifest that is given the version to
reach as a fact; applying it with the previous version is a real downgrade, since the
manifest says what the host must be.

Options::

    manifest    the manifest to apply (required; a path on the host, a template)
    modulepath  Puppet's --modulepath (a template)
    facts       more facts (values are templates), e.g. {ephyra_path: /etc/nova/release}
    version     a shell command whose last output line is the version the target runs;
                without it the version before is unknown (''), so there is nothing to
                downgrade to, and the version after is {version}
    puppet      the puppet command (default "puppet")
    env, via, timeout   as every strategy that runs commands (docs/strategies.md)

The facts are given as ``FACTER_NAME`` environment variables: ``ephyra_version``,
``ephyra_host``, ``ephyra_services`` (space-separated), ``ephyra_service`` and
``ephyra_kind``, and those of ``facts``; a manifest reads ``$facts['ephyra_version']``.
``--detailed-exitcodes`` tells the outcome: 0 (nothing to change) and 2 (changes made)
are success, 4 and 6 (resources failed) are failures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ephyra.errors import StrategyFailed, UsageError
from ephyra.strategies import shell
from ephyra.strategies.base import Change, Output, Strategy, Target, on_host, render, stream, tail
from ephyra.strategies.options import COMMON, Options, rendered

SUCCESS = (0, 2)  # --detailed-exitcodes: no changes, changes applied
# Puppet's own errors, which say why resources failed (Facter's are about facts only).
ERROR = re.compile(r"^Error: (?!Facter:)")


class PuppetStrategy(shell.VersionCommand, Strategy):
    name = "puppet"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        opts = Options(
            self.name,
            options,
            ("manifest", "modulepath", "facts", "version", "puppet", *COMMON),
        )
        self.manifest = str(opts.template("manifest", required="the manifest to apply"))
        self.modulepath = opts.template("modulepath")
        self.facts = opts.environment("facts")
        for fact in self.facts:
            if fact.startswith("ephyra_"):
                raise UsageError(f"facts.{fact}: the ephyra_ facts are set by Ephyra")
        self.version_command = opts.template("version")
        self.puppet = str(opts.text("puppet", "puppet"))
        self.env = opts.environment()
        self.timeout = opts.seconds()
        opts.via()

    def facts_of(self, target: Target) -> dict[str, str]:
        """The facts the manifest is given, by name."""
        values = target.values()
        return {
            **{f"ephyra_{key}": value for key, value in values.items()},
            **rendered(self.facts, target),
        }

    def apply(self, target: Target, output: Output) -> None:
        """``puppet apply`` of the manifest for ``target`` (its version as a fact)."""
        manifest = render(self.manifest, target)
        argv = [self.puppet, "apply", "--detailed-exitcodes", "--color=false"]
        if self.modulepath:
            argv += ["--modulepath", render(self.modulepath, target)]
        argv.append(manifest)
        env = {
            **self._env(target),
            **{f"FACTER_{name}": value for name, value in self.facts_of(target).items()},
        }
        lines: list[str] = []

        def keep(line: str) -> None:
            lines.append(line)
            output(line)

        what = f"puppet apply {manifest} on {target.host} (version {target.version})"
        try:
            stream(
                on_host(argv, self.options, target, env),
                keep,
                what=what,
                ok=SUCCESS,
                timeout=self.timeout,
            )
        except StrategyFailed as exc:
            errors = [line for line in lines if ERROR.match(line)]
            if not errors:
                raise
            raise StrategyFailed(f"{what} failed: {tail(errors)}") from exc

    def _go(self, target: Target, output: Output) -> Change:
        before = self.version(target)
        self.apply(target, output)
        after = self.version(target) if self.version_command else target.version
        return Change(before, after)

    def upgrade(self, target: Target, output: Output) -> Change:
        return self._go(target, output)

    def can_downgrade(self) -> bool:
        return True

    def downgrade(self, target: Target, output: Output) -> Change:
        return self._go(target, output)
