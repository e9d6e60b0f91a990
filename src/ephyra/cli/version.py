"""``ephyra version``, ``ephyra roles`` and ``ephyra hiera``: the desired and running
versions, host lifecycle and roles kept in the store (seed 003)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ephyra.cli import runs
from ephyra.cli.backend import backend
from ephyra.cli.output import emit
from ephyra.errors import UsageError
from ephyra.names import check_name, check_version
from ephyra.versions.desired import DEFAULT_RETRIES

if TYPE_CHECKING:
    from ephyra.versions.keys import Keys
    from ephyra.versions.store import Store

VERSION_TEXT = """\
The version the whole infrastructure should run (/current_version), the version each
host runs (/running_version/<version>/<host>, kept alive by its agent), and each host's
lifecycle (/status/...). See docs/versions.md for every key.

trigger VERSION   make VERSION the desired version; every `ephyra agent` moves its host
                  to it, by the rules given here (--max-at-once, --after). Refused while
                  hosts have not converged on the current version, unless --force: then
                  the newest version wins (hosts mid-update finish, then move on).
verify VERSION HOST...
                  exit 0 only if every host runs VERSION (one range read), else 1
                  with the hosts that do not
status            hosts by version and state; failures with the link to their logs
history           every trigger, oldest first
"""

ROLES_TEXT = """\
The hosts that fulfil a role, with their addresses, as their agents published them
under /active_roles/<version>/<role>/<host>/ once validated at that version.

hosts-of ROLE     the hosts of ROLE at the desired version (or --version)
list              every role with its number of hosts
"""

HIERA_TEXT = """\
The active roles as a Hiera YAML data file (seed 003's answer for Puppet):

  etcdlookup::active_roles::<role>:
    <host>: {address: ..., eth0: ..., ...}

export            write it (to --output FILE, atomically, or standard output);
                  --watch rewrites it whenever roles or the desired version change
"""


def opened(args: argparse.Namespace) -> tuple[Store, Keys]:
    from ephyra.operations.local import Local
    from ephyra.versions.keys import Keys
    from ephyra.versions.store import open_store

    local = Local(args.journal, args.locks, args.store, args.prefix or "")
    return open_store(local.store_location()), Keys(args.prefix or "")


def do_trigger(args: argparse.Namespace) -> int:
    from ephyra.operations.bodies import TriggerBody

    body = TriggerBody.build(
        version=check_version(args.version, "VERSION"),
        max_at_once=args.max_at_once,
        after=args.after,
        force=args.force,
        retries=args.retries,
    )
    made = backend(args).trigger(body)
    before = f" (was {made['previous']})" if made["previous"] else ""
    print(f"current version {made['version']}{before}; triggered by {made['by']}")
    return 0


def _hosts(args: argparse.Namespace) -> list[str]:
    hosts = list(args.hosts)
    if args.hosts_file:
        text = sys.stdin.read() if args.hosts_file == "-" else Path(args.hosts_file).read_text()
        hosts += text.split()
    if not hosts:
        raise UsageError("name the hosts to verify (HOST... or --hosts-file FILE)")
    return [check_name(host, "HOST") for host in hosts]


def do_verify(args: argparse.Namespace) -> int:
    from ephyra.operations.bodies import VerifyBody

    version = check_version(args.version, "VERSION")
    verdict = backend(args).verify(VerifyBody.build(version=version, hosts=_hosts(args)))
    missing = verdict["missing"]
    if args.format != "table":
        emit({k: verdict[k] for k in ("version", "ok", "missing")}, args.format)
    elif verdict["ok"]:
        print(f"all {verdict['hosts']} host(s) run {verdict['version']}")
    else:
        shown = " ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        print(
            f"{len(missing)} of {verdict['hosts']} host(s) do not run {verdict['version']}: {shown}"
        )
    return 0 if verdict["ok"] else 1


def do_status(args: argparse.Namespace) -> int:
    found = backend(args).version_status()
    if args.format != "table":
        emit(found, args.format)
        return 0
    print(f"current version: {found['current_version'] or '(none triggered)'}")
    running = ", ".join(f"{v}: {n}" for v, n in found["running"].items()) or "none"
    print(f"hosts running: {running}; converged: {found['converged']} of {len(found['hosts'])}")
    rows = found["hosts"]
    if args.failed:
        rows = [r for r in rows if r["state"].endswith("failure")]
    emit(
        rows,
        "table",
        [
            "host",
            "running",
            "updating",
            "state",
            "state_version",
            "attempts",
            "provisioned",
            "message",
            "log",
        ],
    )
    return 0


def do_history(args: argparse.Namespace) -> int:
    rows = backend(args).version_history()
    emit(rows, args.format, ["at", "version", "previous", "by", "forced", "rules"])
    return 0


def _version(args: argparse.Namespace, store: Store, keys: Keys) -> str:
    from ephyra.versions import desired

    version = _option_version(args) or desired.current(store, keys)
    if not version:
        raise UsageError("no version is triggered yet: name one with --version")
    return version


def _option_version(args: argparse.Namespace) -> str | None:
    return check_version(args.version, "--version") if args.version else None


def do_hosts_of(args: argparse.Namespace) -> int:
    found = backend(args).roles(args.role, _option_version(args))
    hosts = found["roles"][args.role]
    if args.format != "table":
        emit(hosts, args.format)
        return 0
    rows = [{"host": h, **v} for h, v in sorted(hosts.items())]
    columns = ["host", "address", *sorted({k for r in rows for k in r} - {"host", "address"})]
    print(f"{args.role} at {found['version']}: {len(rows)} host(s)")
    emit(rows, "table", columns)
    return 0


def do_list_roles(args: argparse.Namespace) -> int:
    found = backend(args).roles(None, _option_version(args))
    version = found["version"]
    rows = [
        {"role": r, "hosts": len(h), "version": version} for r, h in sorted(found["roles"].items())
    ]
    emit(rows, args.format, ["role", "hosts", "version"])
    return 0


def _write(data: dict[str, Any], output: str | None) -> None:
    import tempfile

    import yaml

    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    if not output:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)  # Puppet never reads half a file


def do_hiera_export(args: argparse.Namespace) -> int:
    from ephyra.versions import roles

    store, keys = opened(args)
    with store:
        version = _version(args, store, keys)
        last = roles.hiera_data(store, keys, version)
        _write(last, args.output)
        if not args.watch:
            return 0
        print(f"wrote {args.output or 'stdout'} for {version}", file=sys.stderr)
        watch = store.watch(keys.prefix + "/")
        try:
            while True:
                watch.wait(args.poll)
                version = _version(args, store, keys)
                data = roles.hiera_data(store, keys, version)
                if data != last:
                    _write(data, args.output)
                    hosts = sum(len(v) for k, v in data.items() if isinstance(v, dict))
                    print(f"rewrote for {version}: {hosts} host role(s)", file=sys.stderr)
                    last = data
        finally:
            watch.cancel()


def register(sub: Any, exit_codes: str) -> None:
    action = runs.command_group(
        sub, "version", "desired and running versions, host lifecycle", VERSION_TEXT, exit_codes
    )
    trigger = action("trigger", do_trigger, "make VERSION the version every host should run")
    trigger.add_argument("version")
    trigger.add_argument(
        "--max-at-once",
        action="append",
        default=[],
        metavar="ROLE=N",
        help="at most N hosts of ROLE update at once (N=all: no limit; 0 freezes the role; "
        "ROLE * for roles not named; default 1), repeatable",
    )
    trigger.add_argument(
        "--after",
        action="append",
        default=[],
        metavar="ROLE=DEP[,DEP]",
        help="ROLE starts only when every live host of each DEP runs the version, repeatable",
    )
    trigger.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        metavar="N",
        help="a host that fails tries again N times, after a jittered exponential backoff "
        f"(default {DEFAULT_RETRIES})",
    )
    trigger.add_argument(
        "--force", action="store_true", help="trigger even while hosts have not converged"
    )
    verify = action("verify", do_verify, "exit 0 only if every host named runs VERSION")
    verify.add_argument("version")
    verify.add_argument("hosts", nargs="*", metavar="HOST")
    verify.add_argument(
        "--hosts-file",
        metavar="FILE",
        help="more hosts, whitespace-separated (- for standard input)",
    )
    status = action("status", do_status, "hosts by version and state, failures with their logs")
    status.add_argument("--failed", action="store_true", help="only the hosts that failed")
    action("history", do_history, "every version triggered, oldest first")

    action = runs.command_group(
        sub, "roles", "the hosts of each role, with their addresses", ROLES_TEXT, exit_codes
    )
    hosts_of = action("hosts-of", do_hosts_of, "the hosts that fulfil ROLE, with addresses")
    hosts_of.add_argument("role")
    hosts_of.add_argument("--version", help="at this version (default: the desired one)")
    listed = action("list", do_list_roles, "every role with its number of hosts")
    listed.add_argument("--version", help="at this version (default: the desired one)")

    action = runs.command_group(
        sub, "hiera", "active roles as a Hiera data file for Puppet", HIERA_TEXT, exit_codes
    )
    export = action("export", do_hiera_export, "write the active roles as Hiera YAML")
    export.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    export.add_argument("--version", help="at this version (default: the desired one)")
    export.add_argument("--watch", action="store_true", help="rewrite the file on every change")
    export.add_argument(
        "--poll", type=float, default=5.0, metavar="S", help="look at least every S seconds"
    )
