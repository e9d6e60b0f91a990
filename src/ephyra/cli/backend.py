"""Where a command's operations run: in this process, or in the ``ephyra serve`` named by
``--url`` / ``EPHYRA_URL`` (the same answers either way)."""

from __future__ import annotations

import argparse
import os

from ephyra.api.auth import admin_token
from ephyra.api.local import Local
from ephyra.api.remote import Remote
from ephyra.errors import UsageError
from ephyra.paths import state_dir


def backend(args: argparse.Namespace) -> Local | Remote:
    if args.url:
        if getattr(args, "board", None):
            raise UsageError("--board queues a run from this process: not with --url")
        return Remote(args.url, token(args))
    return Local(args.journal, args.locks, args.store, args.prefix or "")


def token(args: argparse.Namespace) -> str | None:
    """--token / EPHYRA_TOKEN; else this machine's admin token of the embedded default;
    else a Keystone token of the cloud OS_CLOUD names."""
    if args.token:
        return str(args.token)
    found = admin_token(state_dir() / "api-tokens.yaml")
    if found:
        return found
    cloud = os.environ.get("OS_CLOUD")
    if cloud:
        from ephyra.clouds import connect

        return str(connect(cloud).auth_token)
    return None
