"""``ephyra settings``: an environment's settings. ``export`` is here (read-only, in
this process, with the caller's clouds.yaml); ``plan``, ``apply`` and the run verbs come
from the settings apply run kind."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ephyra.cli import runs
from ephyra.engine.kinds import cloud_of, cloud_option
from ephyra.settings.kind import DESCRIPTION, SettingsKind


def do_export(args: argparse.Namespace) -> int:
    from ephyra.settings.document import dumps
    from ephyra.settings.export import export

    fmt = "json" if args.format == "json" else "yaml"
    sys.stdout.write(dumps(export(cloud_of(args)), fmt))
    return 0


def register(sub: Any, exit_codes: str) -> runs.Action:
    """``ephyra settings``: ``export`` here; the run kind's verbs are added from the kind."""
    action = runs.command_group(sub, "settings", SettingsKind.summary, DESCRIPTION, exit_codes)
    export = action(
        "export", do_export, "the settings of a cloud as a document (YAML; -f json for JSON)"
    )
    cloud_option(export, "the cloud to read, with an admin's credentials (default: OS_CLOUD)")
    return action
