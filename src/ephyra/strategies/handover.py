"""Hand-overs: how a compute host leaves one cloud's Nova and joins another's.

A host reallocation (``ephyra host reallocate``) empties a host and removes it from its
cloud through the APIs; what happens on the host itself (its nova-compute stopped, its
configuration re-pointed at the other cloud, the other cloud's cell told about it) is the
deployment tool's. The operator configures each way of doing it in ``handovers.yaml``
(``$EPHYRA_HANDOVERS``, else that file in the state directory), readable by its owner
only, and a run (or an API caller) only names one::

    handovers:
      kolla:
        type: command                       # a plugin of ephyra.handovers
        release: ssh {host} docker stop nova_compute
        adopt: kolla-ansible -i /etc/kolla/{cloud}/inventory deploy --limit {host} -t nova
        discover: ssh ctl.{cloud} nova-manage cell_v2 discover_hosts
        timeout: 1800                       # seconds any one command may run

``{host}`` is the host and ``{cloud}`` the cloud it leaves (``release``) or joins (``adopt``,
``discover``); both go into the command line shell-quoted, after being checked as names.
Each command runs with ``sh -c`` and also sees ``EPHYRA_HOST`` and ``EPHYRA_CLOUD``. Every
command must be idempotent: a run resumed after a crash may run one again.

- ``release``: nova-compute on the host is stopped and stays stopped; it returns once it is.
- ``adopt``: the host's nova-compute is configured for ``{cloud}`` and started.
- ``discover`` (optional): ``{cloud}``'s cells map the new host. Without it, the cloud's
  scheduler must discover hosts by itself (``discover_hosts_in_cells_interval``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ephyra import paths, plugins, yamlfile
from ephyra.bodies import PluginSpec, problems
from ephyra.errors import PluginError, UsageError
from ephyra.names import check_name, shown
from ephyra.strategies.base import COMMAND_TIMEOUT, Target, render, stream
from ephyra.strategies.shell import shell_argv

NAMESPACE = "ephyra.handovers"
#: The variable naming the configuration file.
ENV = "EPHYRA_HANDOVERS"
FILE = "handovers.yaml"

Output = Callable[[str], None]


class Handover:
    """Base of every hand-over plugin."""

    name: ClassVar[str]

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def release(self, host: str, cloud: str, output: Output) -> None:
        """Stop the host's nova-compute, which leaves ``cloud``; it stays stopped."""
        raise NotImplementedError

    def adopt(self, host: str, cloud: str, output: Output) -> None:
        """Point the host's nova-compute at ``cloud`` and start it."""
        raise NotImplementedError

    def discover(self, host: str, cloud: str, output: Output) -> bool:
        """Map the host into ``cloud``'s cell; False: this hand-over leaves it to the cloud."""
        raise NotImplementedError


class CommandHandover(Handover):
    """Shell command templates: ``release``, ``adopt``, ``discover`` (see the module)."""

    name = "command"
    ACTIONS = ("release", "adopt", "discover")

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        unknown = sorted(set(self.options) - {*self.ACTIONS, "timeout"})
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}")
        for action in ("release", "adopt"):
            if not isinstance(self.options.get(action), str) or not self.options[action]:
                raise ValueError(f"'{action}' (a shell command template) is required")
        found = self.options.get("discover")
        if found is not None and not isinstance(found, str):
            raise ValueError("'discover' is a shell command template")
        timeout = self.options.get("timeout", COMMAND_TIMEOUT)
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError("'timeout' is a number of seconds above 0")
        self.timeout = float(timeout)
        for action in self.ACTIONS:  # a bad template is refused before any run
            if self.options.get(action):
                render(self.options[action], Target("host", ""), shell=True, cloud="cloud")

    def _run(self, action: str, host: str, cloud: str, output: Output) -> None:
        target = Target(host, "", kind="host")
        command = render(self.options[action], target, shell=True, cloud=check_name(cloud))
        env = {"EPHYRA_HOST": host, "EPHYRA_CLOUD": cloud}
        argv = shell_argv(command, target, {}, env)
        stream(argv, output, what=f"hand-over {action} {command!r}", timeout=self.timeout)

    def release(self, host: str, cloud: str, output: Output) -> None:
        self._run("release", host, cloud, output)

    def adopt(self, host: str, cloud: str, output: Output) -> None:
        self._run("adopt", host, cloud, output)

    def discover(self, host: str, cloud: str, output: Output) -> bool:
        if not self.options.get("discover"):
            return False
        self._run("discover", host, cloud, output)
        return True


def _name(value: str) -> str:
    try:
        return check_name(value, "hand-over name")
    except UsageError as exc:
        raise ValueError(str(exc)) from None


class HandoverConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handovers: dict[Annotated[str, AfterValidator(_name)], PluginSpec] = Field(default_factory=dict)

    def build(self, name: str) -> Handover:
        """The hand-over configured as ``name``, its options checked by its plugin."""
        spec = self.handovers.get(name)
        if spec is None:
            known = ", ".join(sorted(self.handovers)) or "none"
            raise UsageError(
                f"no hand-over named {shown(name)} (configured: {known}); hand-overs are the "
                f"operator's to configure (${ENV} or {FILE} in the state directory)"
            )
        cls = plugins.load(NAMESPACE, spec.type, Handover)
        try:
            return cls(spec.options())
        except ValueError as exc:
            raise PluginError(f"hand-over {name!r} ({spec.type}): {exc}") from exc


def where() -> Path | None:
    """The configuration file, if there is one."""
    named = os.environ.get(ENV)
    if named:
        return Path(named)
    found = paths.state_dir() / FILE
    return found if found.is_file() else None


def load(path: Path | None = None) -> HandoverConfig:
    """The configuration in ``path`` (default: :func:`where`); none: no hand-over."""
    path = path or where()
    if path is None:
        return HandoverConfig()
    try:
        paths.owner_only(path, "hand-over configuration")
        data = yamlfile.read(path)
    except OSError as exc:
        raise UsageError(f"cannot read the hand-over configuration {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"hand-over configuration {path} is not valid YAML: {exc}") from exc
    try:
        return HandoverConfig.model_validate(data or {})
    except ValidationError as exc:
        raise UsageError(f"hand-over configuration {path}: {problems(exc)}") from exc


def build(name: str) -> Handover:
    """The hand-over ``name`` of this machine's configuration."""
    return load().build(name)
