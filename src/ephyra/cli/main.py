"""``ephyra``: the entry point. Only this module exits, with the documented codes.

Building the parser imports the command modules only: each imports what its handler needs
(pydantic, SQLAlchemy, TaskFlow, openstacksdk, rich...) when it runs, so that ``--help``
answers at once (``tests/unit/cli/test_startup.py`` checks it, ``bench/startup.py`` times it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Sequence

from ephyra import __version__
from ephyra.cli import (
    agent,
    audit,
    conductor,
    env,
    host,
    inventory,
    runs,
    serve,
    settings,
    tenant,
    tenant_migrate,
    upgrade,
    version,
)
from ephyra.cli import (
    run as runcmd,
)
from ephyra.engine.kinds import registered
from ephyra.errors import EphyraError
from ephyra.urls import redact, redact_text

EXIT_CODES = """\
exit codes:
  0    done
  1    failed (the run is paused or failed as its policy says; see status), or a
       cloud could not be used: unreachable, timed out, credentials refused, no
       endpoint for the service (one line: the cloud, the service and its address,
       why; the traceback with --debug)
  2    usage or bad input, refused before anything changed
  3    another run holds the lock of these control planes or hosts
  4    a backend (journal, store, locks, board: a database or etcd) could not be
       reached or opened (one line: which, where, why)
  130  interrupted (the run is paused and can be resumed)
"""

ENVIRONMENT = """\
environment:
  OS_CLIENT_CONFIG_FILE  clouds.yaml to read (else the standard locations)
  OS_CLOUD               the cloud of `host` commands (else --os-cloud)
  EPHYRA_JOURNAL         journal URL (default sqlite:///~/.local/state/ephyra/journal.db);
                         a URL with a password goes here, not in --journal (which `ps`
                         shows to every user of the machine); the same for EPHYRA_LOCKS,
                         EPHYRA_STORE and EPHYRA_BOARD
  EPHYRA_LOCKS           tooz URL for locks (default file://~/.local/state/ephyra/locks)
  EPHYRA_STORE           versions and lifecycle keys (default sqlite:///.../versions.db
                         beside the journal; etcd3+http://HOST:PORT for etcd)
  EPHYRA_PREFIX          the prefix of those keys (default: none)
  EPHYRA_ETCD_PASSWORD   the password of the etcd user an etcd3+https://USER@HOST URL
                         names (store, locks, board; see docs/security.md)
  EPHYRA_BOARD           the jobboard of `--board` and `ephyra conductor`
                         (etcd3+http://HOST:PORT)
  EPHYRA_URL             act through this `ephyra serve` (run, forklift, upgrade, host,
                         inventory, version, roles and env commands; daemons and
                         `env cutover` stay local)
  EPHYRA_TOKEN           the token for EPHYRA_URL (there is no --token: see --token-file)
  EPHYRA_CACERT          the CA certificate(s) that check an https EPHYRA_URL
"""


class NoSecretInArgv(argparse.Action):
    """``--token`` is refused (``ps`` shows argv to every user of the machine)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.error(
            "--token is not taken (ps shows it to every user of this machine): give the "
            "token in EPHYRA_TOKEN or with --token-file FILE ('-': standard input)"
        )


#: Command groups with commands of their own besides their run kind's.
OWN_GROUPS = {
    "host": host.register,
    "host reallocation": host.register_reallocation,
    "tenant maintenance": tenant.register_maintenance,
    "tenant": tenant_migrate.register,
    "settings": settings.register,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ephyra",
        description="Upgrade OpenStack clouds with as little downtime and risk as possible, "
        "and always be able to go back.",
        epilog=EXIT_CODES + "\n" + ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # a command's --to is not this parser's --token(-file)
    )
    parser.add_argument("--version", action="version", version=f"ephyra {__version__}")
    parser.add_argument(
        "--journal",
        default=os.environ.get("EPHYRA_JOURNAL"),
        metavar="URL",
        help="where runs are journaled (SQLAlchemy URL; default: SQLite in the state directory)",
    )
    parser.add_argument(
        "--locks",
        default=os.environ.get("EPHYRA_LOCKS"),
        metavar="URL",
        help="tooz URL for run locks (default: file:// in the state directory)",
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("EPHYRA_STORE"),
        metavar="URL",
        help="versions, lifecycle and roles keys: etcd3+http://HOST:PORT or sqlite:///PATH "
        "(default: SQLite beside the journal)",
    )
    parser.add_argument(
        "--prefix",
        default=os.environ.get("EPHYRA_PREFIX", ""),
        metavar="PATH",
        help="prefix of those keys (default: none, /current_version stands at the root)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("EPHYRA_URL"),
        metavar="URL",
        help="act through this `ephyra serve` instead of in-process (same output)",
    )
    parser.add_argument("--token", action=NoSecretInArgv, nargs="?", help=argparse.SUPPRESS)
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help="read the token for --url from FILE ('-': the first line of standard input); "
        "default: EPHYRA_TOKEN, else, over https or to this machine only, this machine's "
        "admin token of `ephyra serve`, else a Keystone token of OS_CLOUD",
    )
    parser.add_argument(
        "--cacert",
        default=os.environ.get("EPHYRA_CACERT"),
        metavar="FILE",
        help="CA certificate(s) checking an https --url (default: EPHYRA_CACERT, else the "
        "system's CAs)",
    )
    parser.add_argument(
        "--insecure-http",
        action="store_true",
        help="send the token given (EPHYRA_TOKEN, --token-file) to a plain http --url of "
        "another machine, in clear (refused without this; a token found on this machine "
        "is never sent so)",
    )
    runs.format_option(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="show every step")
    parser.add_argument("--debug", action="store_true", help="log API calls and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, runs.Action] = {}
    for kind in registered():  # ephyra COMMAND plan|start|resume|rollback|pause|abort|status|list
        if kind.command not in groups:
            own = OWN_GROUPS.get(kind.command)
            groups[kind.command] = (
                own(sub, EXIT_CODES)
                if own
                else runs.command_group(
                    sub, kind.command, kind.summary, kind.description, EXIT_CODES
                )
            )
        outer = groups.get(kind.command.split()[0]) if kind.start_alias else None
        runs.register_kind(groups[kind.command], kind, outer)
    if "upgrade" in groups:  # the upgrade's own verbs: approve, step
        upgrade.register(groups["upgrade"])
    inventory.register(sub, EXIT_CODES)
    version.register(sub, EXIT_CODES)
    env.register(sub, EXIT_CODES)
    agent.register(sub, EXIT_CODES)
    conductor.register(sub, EXIT_CODES)
    serve.register(sub, EXIT_CODES)
    runcmd.register(sub, EXIT_CODES)
    audit.register(sub, EXIT_CODES)
    return parser


#: Options whose URL may hold a password, and the variable that keeps it out of argv.
SECRET_URLS = {
    "journal": "EPHYRA_JOURNAL",
    "locks": "EPHYRA_LOCKS",
    "store": "EPHYRA_STORE",
    "board": "EPHYRA_BOARD",
}


def warn_secrets_in_argv(args: argparse.Namespace) -> None:
    """Say so when a URL given on the command line holds a password (``ps`` shows it)."""
    for option, variable in SECRET_URLS.items():
        url = getattr(args, option, None)
        if url and url != os.environ.get(variable) and redact(url) != url:
            print(
                f"ephyra: warning: --{option} holds a password, which `ps` shows to every user "
                f"of this machine: give the URL in {variable} instead",
                file=sys.stderr,
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warn_secrets_in_argv(args)
    warnings.simplefilter("ignore")
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # their debug logs show bodies, and their warnings ("Failed to discover available
    # identity versions...") come before the one line that says what failed: --debug only
    for chatty in ("keystoneauth", "openstack", "urllib3", "taskflow"):
        logging.getLogger(chatty).setLevel(logging.WARNING if args.debug else logging.ERROR)
    try:
        code: int = args.handler(args)
    except EphyraError as exc:
        if args.debug:
            logging.error("failed\n%s", redact_text("".join(traceback.format_exception(exc))))
        print(f"ephyra: error: {redact_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ephyra: interrupted", file=sys.stderr)
        return 130
    return code


#: Modules this process never uses that libraries import only to see whether they are
#: there (futurist and oslo.utils, through TaskFlow, look for eventlet: 0.15 s and a warning
#: on every command that opens the journal). Marked absent, as on a machine without them.
NEVER_USED = ("eventlet",)


def run() -> None:
    """The ``ephyra`` program (``main`` is what tests call in-process)."""
    for name in NEVER_USED:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    sys.exit(main())


if __name__ == "__main__":
    run()
