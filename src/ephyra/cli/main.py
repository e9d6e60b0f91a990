"""``ephyra``: the entry point. Only this module exits, with the documented codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from ephyra import __version__
from ephyra.cli import (
    agent,
    audit,
    conductor,
    env,
    forklift,
    host,
    inventory,
    serve,
    upgrade,
    version,
)
from ephyra.cli import (
    run as runcmd,
)
from ephyra.cli.output import FORMATS
from ephyra.errors import EphyraError

EXIT_CODES = """\
exit codes:
  0    done
  1    failed (the run is paused or failed as its policy says; see status)
  2    usage or bad input, refused before anything changed
  3    another run holds the lock of these control planes or hosts
  130  interrupted (the run is paused and can be resumed)
"""

ENVIRONMENT = """\
environment:
  OS_CLIENT_CONFIG_FILE  clouds.yaml to read (else the standard locations)
  OS_CLOUD               the cloud of `host` commands (else --os-cloud)
  EPHYRA_JOURNAL         journal URL (default sqlite:///~/.local/state/ephyra/journal.db)
  EPHYRA_LOCKS           tooz URL for locks (default file://~/.local/state/ephyra/locks)
  EPHYRA_STORE           versions and lifecycle keys (default sqlite:///.../versions.db
                         beside the journal; etcd3+http://HOST:PORT for etcd)
  EPHYRA_PREFIX          the prefix of those keys (default: none)
  EPHYRA_BOARD           the jobboard of `--board` and `ephyra conductor`
                         (etcd3+http://HOST:PORT)
  EPHYRA_URL             act through this `ephyra serve` (run, forklift, upgrade, host,
                         inventory, version, roles and env commands; daemons and
                         `env cutover` stay local)
  EPHYRA_TOKEN           the token for EPHYRA_URL
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ephyra",
        description="Upgrade OpenStack clouds with as little downtime and risk as possible, "
        "and always be able to go back.",
        epilog=EXIT_CODES + "\n" + ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    parser.add_argument(
        "--token",
        default=os.environ.get("EPHYRA_TOKEN"),
        metavar="TOKEN",
        help="the token for --url (default: EPHYRA_TOKEN, else this machine's admin token of "
        "`ephyra serve`, else a Keystone token of OS_CLOUD)",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument("-v", "--verbose", action="store_true", help="show every step")
    parser.add_argument("--debug", action="store_true", help="log API calls and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    forklift.register(sub, EXIT_CODES)
    host.register(sub, EXIT_CODES)
    inventory.register(sub, EXIT_CODES)
    upgrade.register(sub, EXIT_CODES)
    version.register(sub, EXIT_CODES)
    env.register(sub, EXIT_CODES)
    agent.register(sub, EXIT_CODES)
    conductor.register(sub, EXIT_CODES)
    serve.register(sub, EXIT_CODES)
    runcmd.register(sub, EXIT_CODES)
    audit.register(sub, EXIT_CODES)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for chatty in ("keystoneauth", "openstack", "urllib3"):  # their debug logs show bodies
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        code: int = args.handler(args)
    except EphyraError as exc:
        if args.debug:
            logging.exception("failed")
        print(f"ephyra: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ephyra: interrupted", file=sys.stderr)
        return 130
    return code


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
