"""``ephyra audit``: the audit trail; and the command line's own entries in it.

Every command that changes something in this process (a run started, paused, resumed,
aborted or rolled back, a host's maintenance, a version triggered, an environment
changed) is recorded in the journal's audit trail with the local OS user as who and
``cli`` as its source, its exit code and, on failure, the error code the API would
give. Through ``--url`` the server records it instead, but for ``env apply`` and
``env cutover``, which change this machine whatever the server.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import pwd
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ephyra.errors import EphyraError
from ephyra.operations.codes import classify

if TYPE_CHECKING:  # SQLAlchemy: imported when the trail is written or read
    from ephyra.engine.journal import Journal

LOG = logging.getLogger(__name__)
Handler = Callable[[argparse.Namespace], int]

DESCRIPTION = """\
Who did what: every write through the API (refused ones too) and every command of this
command line that changed something in-process, oldest first. Through --url it is read
from the server (admins only).

list [--limit N] [-f table|json|yaml]   the latest N entries (100)
"""
#: Command group -> the kind of its runs.
KINDS = {
    "forklift": "forklift",
    "upgrade": "upgrade",
    "host": "evacuate",
    "maintenance": "tenant-maintenance",  # ephyra tenant maintenance
    "tenant": "tenant-migration",
    "reallocation": "host-reallocation",  # ephyra host reallocation
    "settings": "settings",
}
RUN_VERBS = ("pause", "resume", "abort", "rollback")
#: (command group, verb) -> the policy action it stands for.
WRITES: dict[tuple[str, str], str] = {
    ("forklift", "start"): "run:start",
    ("upgrade", "start"): "run:start",
    ("host", "evacuate"): "host:evacuate",
    ("host", "maintenance"): "host:maintenance",
    ("host", "reallocate"): "host:reallocate",
    ("reallocation", "start"): "host:reallocate",
    ("maintenance", "on"): "tenant:maintenance",
    ("maintenance", "off"): "run:rollback",
    ("tenant", "migrate"): "tenant:migrate",
    ("tenant", "finish"): "run:finish",
    ("upgrade", "approve"): "run:approve",
    ("upgrade", "step"): "run:step",
    ("settings", "apply"): "run:start",
    ("version", "trigger"): "version:trigger",
    **{("env", verb): "env:change" for verb in ("import", "upgrade", "installed", "apply")},
    ("env", "cutover"): "env:change",
    **{(group, verb): f"run:{verb}" for group in KINDS for verb in RUN_VERBS},
}
#: Writes made on this machine even with --url (the server only hands out what they need).
HERE = {("env", "apply"), ("env", "cutover")}
COLUMNS = ["seq", "time", "source", "user", "project", "roles", "action", "target", "status"]
#: ``ephyra.engine.audit.MAX_READ``, said in --help without importing the engine (a test
#: checks that the two agree).
MAX_READ_SHOWN = 1000


def recorded(group: str, verb: str, handler: Handler) -> Handler:
    """``handler``, recorded in the audit trail when it changes something in-process."""
    action = WRITES.get((group, verb))
    if action is None:
        return handler

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        remote = getattr(args, "url", None) and (group, verb) not in HERE
        if remote or getattr(args, "dry_run", False):
            return handler(args)
        began = time.time()
        try:
            code = handler(args)
        except EphyraError as exc:
            _record(args, group, verb, action, exc.exit_code, classify(exc)[1], began)
            raise
        except KeyboardInterrupt:
            _record(args, group, verb, action, 130, "interrupted", began)
            raise
        except Exception:
            _record(args, group, verb, action, 1, "internal", began)
            raise
        _record(args, group, verb, action, code, "", began)
        return code

    return run


def os_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


def _record(
    args: argparse.Namespace,
    group: str,
    verb: str,
    action: str,
    status: int,
    code: str,
    began: float,
) -> None:
    from ephyra.engine import audit
    from ephyra.engine.journal import Journal

    try:
        journal = Journal(args.journal)
        try:
            entry = audit.Entry(
                source="cli",
                user=os_user(),
                action=action,
                target=target(args, group, verb, journal, began),
                status=status,
                code=code,
                request_id=uuid.uuid4().hex,
            )
            audit.record(journal.engine, entry)
        finally:
            journal.close()
    except Exception as exc:  # what the command did stands; its record is lost
        LOG.warning("the audit trail could not record %s: %s", action, type(exc).__name__)


def target(args: argparse.Namespace, group: str, verb: str, journal: Journal, began: float) -> str:
    """What a command named: a run (``KIND/RUN``, the new run of a start), a host, a
    project, a version, an environment (and node)."""
    if group in KINDS and (verb in RUN_VERBS or verb in ("finish", "approve", "step")):
        return f"{KINDS[group]}/{args.run or 'latest'}"
    if verb == "reallocate":  # ephyra host reallocate: the reallocation kind's start
        group, verb = "reallocation", "start"
    if group in KINDS and verb in ("start", "evacuate", "on", "migrate", "apply"):
        kind = KINDS[group]
        made = [r for r in journal.runs(kind) if float(r.meta.get("created", 0)) >= began]
        return f"{kind}/{made[-1].id}" if made else kind
    if group == "host":
        return str(args.hostname)
    if group == "maintenance":  # ephyra tenant maintenance off
        return f"projects/{args.project}"
    if group == "version":
        return f"versions/{args.version}"
    node = getattr(args, "node", None)
    env = getattr(args, "env", None)
    return "/".join(str(p) for p in (env, node) if p) or "clusters"


def do_list(args: argparse.Namespace) -> int:
    from ephyra.cli.backend import token
    from ephyra.cli.output import emit
    from ephyra.engine import audit
    from ephyra.engine.journal import Journal
    from ephyra.operations.remote import Remote

    if args.url:
        entries = Remote(args.url, token(args))._call(
            "GET", "/v1/audit", params={"limit": args.limit}
        )["entries"]
    else:
        journal = Journal(args.journal)
        try:
            entries = audit.read(journal.engine, args.limit)
        finally:
            journal.close()
    fmt = args.format
    if fmt == "table":
        entries = [
            {
                **e,
                "time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"])),
                "roles": ",".join(e["roles"]),
                "status": f"{e['status']} {e['code']}".strip(),
            }
            for e in entries
        ]
    emit(entries, fmt, COLUMNS)
    return 0


def limit(text: str) -> int:
    """--limit: a whole number from 1 to the most one read gives."""
    from ephyra.engine import audit

    if not text.isdigit() or not 1 <= int(text) <= audit.MAX_READ:
        raise argparse.ArgumentTypeError(f"a number from 1 to {audit.MAX_READ}")
    return int(text)


def register(sub: Any, exit_codes: str) -> None:
    from ephyra.cli import runs

    action = runs.command_group(
        sub, "audit", "who did what, through the API or this command line", DESCRIPTION, exit_codes
    )
    listed = action("list", do_list, "the latest entries of the audit trail, oldest first")
    listed.add_argument(
        "--limit",
        type=limit,
        default=100,
        metavar="N",
        help=f"the latest N entries (100; 1 to {MAX_READ_SHOWN})",
    )
