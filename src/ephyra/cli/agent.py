"""``ephyra agent``: follow the desired version on this host."""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ephyra.cli.version import opened
from ephyra.errors import UsageError
from ephyra.names import check_name
from ephyra.paths import state_dir
from ephyra.signals import on_stop

if TYPE_CHECKING:
    from ephyra.agent.loop import Agent, AgentConfig
    from ephyra.strategies.base import Strategy

DESCRIPTION = """\
Run on each host. The agent watches /current_version; when it differs from what the host
runs, it waits for the host's turn (the rules of `ephyra version trigger`: at most N hosts
of a role at once, roles after roles), runs the host's strategy, validates, and writes
configured/validated success or failure (with the link to its log), the host's running
version and its roles. Everything live (running version, roles, membership) is under the
agent's lease: if the agent dies, it drops out after --ttl seconds.

The strategy is a YAML file with a `type` (command, package, source, ansible, puppet,
grenade, noop) and its options, as under `strategies:` of an upgrade specification
(docs/strategies.md), or the shortcut --upgrade CMD [--version-command CMD] for the
command strategy. Commands see {host} and {version}, filled in shell-quoted (never inside
quotes of the command), and $EPHYRA_HOST, $EPHYRA_VERSION. A desired version that is not a
valid version (letters, digits and ._+~:- only) is refused: the agent says so, records
configured/failure under the version "malformed-desired-version", runs nothing, and acts
again on the next valid trigger. Commands are stopped past their timeout (the strategy's
`timeout`, default 1800 s; the version command and --validate: 60 s).

SIGTERM or Ctrl-C stops it after the step under way; its lease ends with it. So does
--once, as it exits: the host's running version and roles go with the lease, and
`ephyra version verify` no longer counts it (it counts hosts whose agent runs), while
`ephyra version status` keeps its lifecycle state; --once says so as it exits.
"""

#: ``ephyra.strategies.base.CHECK_TIMEOUT``, said in --help without importing the
#: strategies (their plugin entry points); a test checks that the two agree.
CHECK_TIMEOUT_SHOWN = 60.0

EXIT_CODES = """\
exit codes:
  0    stopped (with --once: the host runs the desired version)
  1    with --once: the host failed to reach the desired version (or refused it)
  2    usage or bad input
"""


def _pairs(items: list[str], what: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"{what} {item!r}: not NAME=VALUE")
        found[name] = value
    return found


def _address(host: str) -> str:
    with contextlib.suppress(OSError):
        return socket.gethostbyname(host)
    return "127.0.0.1"


def _strategy(args: argparse.Namespace) -> Strategy:
    import yaml

    from ephyra import yamlfile
    from ephyra.strategies.base import build

    if args.strategy and args.upgrade:
        raise UsageError("give --strategy FILE or --upgrade CMD, not both")
    if args.upgrade:
        options: dict[str, Any] = {"type": "command", "upgrade": args.upgrade}
        if args.version_command:
            options["version"] = args.version_command
        return build(options)
    if not args.strategy:
        raise UsageError("name the host's strategy: --strategy FILE or --upgrade CMD")
    try:
        data = yamlfile.read(args.strategy)
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--strategy {args.strategy}: {exc}") from exc
    return build(data)


def config(args: argparse.Namespace) -> AgentConfig:
    from ephyra.agent.loop import AgentConfig
    from ephyra.strategies.base import CHECK_TIMEOUT

    host = check_name(args.host or socket.gethostname(), "--host")
    address = args.address or _address(host)
    roles: dict[str, str] = {}
    for item in args.role:
        name, _, addr = item.partition("=")
        roles[name] = addr or address
    if not roles:
        raise UsageError("give the host's roles: --role ROLE[=ADDRESS], repeatable")
    return AgentConfig(
        host=host,
        roles=roles,
        strategy=_strategy(args),
        interfaces=_pairs(args.interface, "--interface"),
        validate=args.validate,
        validate_timeout=(
            CHECK_TIMEOUT if args.validate_timeout is None else args.validate_timeout
        ),
        log_dir=Path(args.log_dir) if args.log_dir else state_dir() / "agent-logs",
        log_url=args.log_url,
        ttl=args.ttl,
        poll=args.poll,
    )


def stopping(agent: Agent, sig: signal.Signals) -> None:
    print(f"{agent.config.host}: stopping ({sig.name})", file=sys.stderr)
    agent.stop.set()


def do_agent(args: argparse.Namespace) -> int:
    from ephyra.agent.loop import Agent

    conf = config(args)
    store, keys = opened(args)
    agent = Agent(store, keys, conf, say=lambda line: print(line, file=sys.stderr, flush=True))
    try:
        with on_stop(lambda sig: stopping(agent, sig)):
            converged = agent.run(once=args.once)
    finally:
        agent.close()
        store.close()
    if args.once and agent.running:
        print(once_ended(conf.host, agent.running), file=sys.stderr)
    return 0 if converged or not args.once else 1


def once_ended(host: str, version: str) -> str:
    """What ``--once`` says as it exits: the host's announcement ended with its lease."""
    return (
        f"{host}: --once: the agent's lease ended as it exited, and with it "
        f"/running_version/{version}/{host} and the host's roles: "
        f"`ephyra version verify {version} {host}` now says it does not run {version} "
        "(verify and roles count only hosts whose agent runs; `ephyra version status` still "
        "shows its state). To keep the host counted, run `ephyra agent` as a service, "
        "without --once"
    )


def register(sub: Any, exit_codes: str) -> None:
    parser = sub.add_parser(
        "agent",
        help="follow the desired version on this host",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=do_agent)
    parser.add_argument("--host", help="this host's name (default: the hostname)")
    parser.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="ROLE[=ADDRESS]",
        help="a role of this host, with its address in it (default --address), repeatable",
    )
    parser.add_argument("--address", help="the host's address (default: its name resolved)")
    parser.add_argument(
        "--interface",
        action="append",
        default=[],
        metavar="NAME=ADDRESS",
        help="an interface's address, published with each role, repeatable",
    )
    parser.add_argument("--strategy", metavar="FILE", help="the strategy (YAML with a type)")
    parser.add_argument("--upgrade", metavar="CMD", help="command strategy: the upgrade command")
    parser.add_argument(
        "--version-command", metavar="CMD", help="command strategy: prints the running version"
    )
    parser.add_argument("--validate", metavar="CMD", help="exit 0 when the host works")
    parser.add_argument(
        "--validate-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"seconds the validate command may run (default {CHECK_TIMEOUT_SHOWN:g})",
    )
    parser.add_argument("--log-dir", metavar="DIR", help="where each update's log is written")
    parser.add_argument(
        "--log-url",
        metavar="TEMPLATE",
        help="the link to a log written into the status keys, with {host} {version} {path} "
        "(default: file:// of the log)",
    )
    parser.add_argument("--ttl", type=int, default=10, help="lease seconds (default 10)")
    parser.add_argument(
        "--poll",
        type=float,
        default=10.0,
        help="look at the store at least every S seconds (a watch wakes it at once; default 10)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="exit once the host runs (or failed) the desired version; its lease ends as "
        "it exits, and `version verify` no longer counts the host (see docs/versions.md)",
    )
