"""The operator's notifiers: their targets are configured here, and a run (or an API
caller) only names them.

The file is ``$EPHYRA_NOTIFIERS``, else ``notifiers.yaml`` in the state directory, if there
is one; it may hold passwords (a transport URL, a webhook's token), so it must be readable
by its owner only (one in the state directory is tightened to ``0600``; one elsewhere with
wider bits is refused)::

    default: [bus, hooks]        # a run that names none tells these (default: none)
    flush_seconds: 10            # at a run's end, how long delivery may go on (10)
    notifiers:
      bus:
        type: messaging          # a plugin of ephyra.notifiers
        url: rabbit://ephyra:secret@127.0.0.1:5672/
      hooks:
        type: webhook
        url: https://hooks.example.org/ephyra

``log`` (the plugin ``log``: Python logging) is there without being configured.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ephyra import paths, plugins, yamlfile
from ephyra.bodies import PluginSpec, problems
from ephyra.errors import PluginError, UsageError
from ephyra.names import check_name, shown
from ephyra.notifiers.base import NAMESPACE, Notifier

#: The variable naming the configuration file.
ENV = "EPHYRA_NOTIFIERS"
#: The notifier every process has, unless configured otherwise.
LOG = "log"
#: How many notifiers one run may name.
MAX_CHOSEN = 32


def _name(value: str) -> str:
    try:
        return check_name(value, "notifier name")
    except UsageError as exc:
        raise ValueError(str(exc)) from None


NotifierName = Annotated[str, AfterValidator(_name)]


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notifiers: dict[NotifierName, PluginSpec] = Field(default_factory=dict)
    default: list[NotifierName] = Field(default_factory=list, max_length=MAX_CHOSEN)
    flush_seconds: float = Field(10.0, ge=0, le=3600)

    def specs(self) -> dict[str, PluginSpec]:
        """Every notifier a run may name: the configured ones, and ``log``."""
        return {LOG: PluginSpec(type=LOG), **self.notifiers}

    def chosen(self, names: Sequence[str] | None) -> list[str]:
        """The notifiers of a run naming ``names`` (None: the default), each known, once."""
        wanted = list(self.default if names is None else names)
        known = self.specs()
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise UsageError(
                f"no notifier named {', '.join(shown(n) for n in unknown)} "
                f"(configured: {', '.join(sorted(known))}); targets are the operator's "
                f"to configure (${ENV} or notifiers.yaml in the state directory)"
            )
        return list(dict.fromkeys(wanted))

    def build(self, name: str) -> Notifier:
        """The notifier configured as ``name``, its options checked by its plugin."""
        spec = self.specs()[name]
        cls = plugins.load(NAMESPACE, spec.type, Notifier)
        try:
            cls.check(spec.options())
        except ValueError as exc:
            raise PluginError(f"notifier {name!r} ({spec.type}): {exc}") from exc
        return cls(name, spec.options())


def where() -> Path | None:
    """The configuration file, if there is one."""
    named = os.environ.get(ENV)
    if named:
        return Path(named)
    found = paths.state_dir() / "notifiers.yaml"
    return found if found.is_file() else None


def load(path: Path | None = None) -> NotifyConfig:
    """The configuration in ``path`` (default: :func:`where`); none: only ``log``."""
    path = path or where()
    if path is None:
        return NotifyConfig.model_validate({})
    try:
        paths.owner_only(path, "notifier configuration")
        data = yamlfile.read(path)
    except OSError as exc:
        raise UsageError(f"cannot read the notifier configuration {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"notifier configuration {path} is not valid YAML: {exc}") from exc
    try:
        config = NotifyConfig.model_validate(data or {})
    except ValidationError as exc:
        raise UsageError(f"notifier configuration {path}: {problems(exc)}") from exc
    known = plugins.names(NAMESPACE)
    for name, spec in config.notifiers.items():
        if spec.type not in known:
            raise UsageError(
                f"notifier configuration {path}: {name}: no notifier type {shown(spec.type)} "
                f"(known: {', '.join(known) or 'none'})"
            )
    return config
