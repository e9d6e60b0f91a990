"""Where a command's operations run: in this process, or in the ``ephyra serve`` named by
``--url`` / ``EPHYRA_URL`` (the same answers either way).

The token for ``--url`` never comes from the command line (``ps`` shows it to every user of
the machine): it is ``--token-file FILE`` (``-``: the first line of standard input), else
``EPHYRA_TOKEN``; else, only when the URL is https or plain http to this machine, this
machine's admin token of ``ephyra serve`` or a Keystone token of ``OS_CLOUD``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ephyra.errors import UsageError
from ephyra.paths import state_dir
from ephyra.urls import redact

if TYPE_CHECKING:
    from ephyra.operations.local import Local
    from ephyra.operations.protocol import Operations


def backend(args: argparse.Namespace) -> Operations:
    """The operations in this process (the journal, the clouds) or through the server:
    each imports only when a command needs it."""
    if args.url and not getattr(args, "board", None):  # --board with --url: refused there
        from ephyra.operations.remote import Remote

        return Remote(
            args.url,
            token(args),
            cacert=getattr(args, "cacert", None),
            insecure_http=bool(getattr(args, "insecure_http", False)),
        )
    return in_process(args)


def in_process(args: argparse.Namespace) -> Local:
    """This process's operations (a run queued on a board is created here)."""
    if args.url and getattr(args, "board", None):
        raise UsageError("--board queues a run from this process: not with --url")
    from ephyra.operations.local import Local

    return Local(args.journal, args.locks, args.store, args.prefix or "")


def token(args: argparse.Namespace) -> str | None:
    """The token given (--token-file, EPHYRA_TOKEN); else, if the URL is safe for it, this
    machine's admin token of the embedded default, else a Keystone token of OS_CLOUD."""
    from ephyra.api.auth import admin_token
    from ephyra.operations.remote import plain_and_far

    given = token_given(getattr(args, "token_file", None))
    if given:
        return given
    admin_file = state_dir() / "api-tokens.yaml"
    cloud = os.environ.get("OS_CLOUD")
    if plain_and_far(args.url):
        if admin_token(admin_file) or cloud:
            raise UsageError(
                f"will not send this machine's admin token or a Keystone token in clear to "
                f"{redact(args.url)}: use https (ephyra serve --tls-cert/--tls-key), or give "
                "the token (EPHYRA_TOKEN or --token-file) with --insecure-http"
            )
        return None
    found = admin_token(admin_file)
    if found:
        return found
    if cloud:
        from ephyra.clouds import connect, translated

        with translated(cloud, "get a Keystone token for --url"):
            return str(connect(cloud).auth_token)
    return None


def token_given(token_file: str | None) -> str | None:
    """The token of ``token_file`` (``-``: standard input's first line), else EPHYRA_TOKEN."""
    if token_file:
        try:
            text = sys.stdin.readline() if token_file == "-" else Path(token_file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the token file {token_file}: {exc}") from exc
        found = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not found:
            raise UsageError(f"the token file {token_file} is empty")
        return found
    return os.environ.get("EPHYRA_TOKEN") or None
