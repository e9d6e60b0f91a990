"""``ephyra env``: a parallel control plane on the same VIPs (seed 004): deploy the new
controllers isolated from the VIP networks, then cut over."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ephyra.cli import runs
from ephyra.cli.backend import backend
from ephyra.cli.output import emit
from ephyra.errors import UsageError

DESCRIPTION = """\
Environments whose control plane is replaced on the same Virtual IPs (docs/netscheme.md).

list, show ENV            environments; one whole (networks, VIPs, nodes)
import FILE|-             read an environment (YAML or JSON); --replace overwrites one
upgrade ENV --release N [NODE...]
                          put ENV under upgrade to release N (PUT /clusters/<id>/upgrade);
                          the nodes named (default: the primary controller) get
                          pending_release_id N: they are to be reinstalled with it
installed ENV NODE        record that NODE was reinstalled with its pending release
deployment-info ENV NODE...
                          what a node's deployment gets, in the mode the environment
                          needs (default, isolated, cutover; --mode to choose): isolated
                          keeps a new controller off the VIP networks while the old
                          ones hold the VIPs; cutover takes the old ones off (del-port)
apply ENV NODE            carry out NODE's network scheme on this machine (or in --netns)
                          over netlink; only what differs changes; --dry-run lists it
cutover ENV               the old controllers leave the VIP networks, the new ones join
                          and announce the VIPs (gratuitous ARP); --rollback goes back.
                          Nodes are reached through their netns on this machine.
"""

#: ``ephyra.netscheme.serializers.MODES``, said in --help without importing the
#: environment model (pydantic); a test checks that the two agree.
MODES_SHOWN = "default, isolated, cutover"


def mode(text: str) -> str:
    """--mode: one of the modes of a deployment's information."""
    from ephyra.netscheme.serializers import MODES

    if text not in MODES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a mode: {', '.join(MODES)}")
    return text


def _load(path: str) -> dict[str, Any]:
    import yaml

    from ephyra import yamlfile

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        data = yamlfile.parse(text)
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: an environment is a mapping")
    return data


def _nodes_table(summary: Mapping[str, Any]) -> None:
    print(
        f"environment {summary['id']} {summary['name']}: {summary['status']}, "
        f"release {summary['release_id']}, VIPs {summary['vips'] or 'none'}"
    )
    rows = [{**n, "pending_release_id": n["pending_release_id"] or "-"} for n in summary["nodes"]]
    emit(rows, "table", ["name", "roles", "release_id", "pending_release_id", "status"])


def do_list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = [dict(r) for r in backend(args).env_list()]
    if args.format == "table":
        for row in rows:
            row["nodes"] = len(row["nodes"])
    emit(rows, args.format, ["id", "name", "status", "release_id", "provider", "nodes", "vips"])
    return 0


def do_show(args: argparse.Namespace) -> int:
    env = backend(args).env_show(args.env)
    emit(env, "yaml" if args.format == "table" else args.format)
    return 0


def do_import(args: argparse.Namespace) -> int:
    made = backend(args).env_import(_load(args.file), replace=args.replace)
    if args.format != "table":
        emit(made, args.format)
        return 0
    print(f"{'imported' if made['created'] else 'replaced'} environment {made['name']}")
    return 0


def _changed(args: argparse.Namespace, summary: Mapping[str, Any]) -> int:
    if args.format != "table":
        emit(summary, args.format)
    else:
        _nodes_table(summary)
    return 0


def do_upgrade(args: argparse.Namespace) -> int:
    from ephyra.operations.bodies import EnvUpgradeBody

    body = EnvUpgradeBody.build(release_id=args.release, nodes=args.nodes)
    return _changed(args, backend(args).env_upgrade(args.env, body))


def do_installed(args: argparse.Namespace) -> int:
    return _changed(args, backend(args).env_installed(args.env, args.node))


def do_deployment_info(args: argparse.Namespace) -> int:
    infos = backend(args).deployment_info(args.env, args.nodes, args.mode)
    if args.format != "table":
        emit(infos, args.format)
        return 0
    for info in infos:
        print(f"{info['fqdn']}: {info['deployment_mode']} ({info['deployment_mode_reason']})")
        print(f"  nodes known: {', '.join(info['network_metadata']['nodes'])}")
        rows = [
            {
                "action": a["action"],
                "name": a.get("name") or " <-> ".join(a.get("bridges", [])),
                "bridge": a.get("bridge", ""),
                "provider": a.get("provider", ""),
            }
            for a in info["network_scheme"]["transformations"]
        ]
        emit(rows, "table", ["action", "name", "bridge", "provider"])
    return 0


def do_apply(args: argparse.Namespace) -> int:
    from ephyra.netscheme import applier

    info = backend(args).deployment_info(args.env, [args.node], args.mode)[0]
    netns = args.netns or _netns(args, info)
    changes = [str(c) for c in applier.apply(info["network_scheme"], netns, args.dry_run)]
    if args.format != "table":
        emit(
            {
                "node": info["fqdn"],
                "mode": info["deployment_mode"],
                "dry_run": args.dry_run,
                "changes": changes,
            },
            args.format,
        )
        return 0
    where = f" in {netns}" if netns else ""
    verb = "would make" if args.dry_run else "made"
    print(f"{info['fqdn']} ({info['deployment_mode']}){where}: {verb} {len(changes)} change(s)")
    for change in changes:
        print(f"  {change}")
    return 0


def _netns(args: argparse.Namespace, info: dict[str, Any]) -> str | None:
    """The node's netns as the environment names it (none: this machine)."""
    env = backend(args).env_show(args.env)
    node: dict[str, Any] = next((n for n in env["nodes"] if n["name"] == info["fqdn"]), {})
    found = node.get("netns")
    return str(found) if found else None


def do_cutover(args: argparse.Namespace) -> int:
    from ephyra.netscheme.cutover import cutover
    from ephyra.operations.local import Local

    if args.url:
        raise UsageError("cutover acts on this machine's namespaces: not with --url")
    local = Local(args.journal, args.locks)
    report = cutover(
        local.environments,
        args.env,
        rollback=args.rollback,
        dry_run=args.dry_run,
        lock_url=args.locks,
        say=print if args.format == "table" and not args.dry_run else lambda _: None,
    )
    if args.format != "table":
        emit(report.to_dict(), args.format)
        return 0
    if args.dry_run:
        for node, changes in report.changes.items():
            print(f"{node}: would make {len(changes)} change(s)")
            for change in changes:
                print(f"  {change}")
        return 0
    print(
        f"{report.direction} done: VIPs on {', '.join(report.joining)}; "
        f"{', '.join(report.leaving)} off the VIP networks; "
        f"changed for {report.window_ms if report.window_ms is not None else 0} ms"
    )
    return 0


def register(sub: Any, exit_codes: str) -> None:
    action = runs.command_group(
        sub, "env", "parallel control plane on the same VIPs", DESCRIPTION, exit_codes
    )
    action("list", do_list, "every environment")
    show = action("show", do_show, "an environment, whole (YAML unless --format json)")
    show.add_argument("env", metavar="ENV", help="id or name")
    imp = action("import", do_import, "read an environment from a YAML or JSON file")
    imp.add_argument("file", metavar="FILE", help="path, or - for standard input")
    imp.add_argument("--replace", action="store_true", help="overwrite one with the same id")
    up = action("upgrade", do_upgrade, "put an environment under upgrade to a release")
    up.add_argument("env", metavar="ENV")
    up.add_argument("--release", type=int, required=True, metavar="N", help="the new release id")
    up.add_argument(
        "nodes",
        nargs="*",
        metavar="NODE",
        help="nodes to reinstall with it (default: the primary controller)",
    )
    inst = action("installed", do_installed, "record a node reinstalled with its pending release")
    inst.add_argument("env", metavar="ENV")
    inst.add_argument("node", metavar="NODE")
    info = action("deployment-info", do_deployment_info, "nodes' deployment information")
    info.add_argument("env", metavar="ENV")
    info.add_argument("nodes", nargs="+", metavar="NODE")
    info.add_argument(
        "--mode",
        type=mode,
        metavar="MODE",
        help=f"this mode instead of the one detected ({MODES_SHOWN})",
    )
    app = action("apply", do_apply, "carry out a node's network scheme on this machine")
    app.add_argument("env", metavar="ENV")
    app.add_argument("node", metavar="NODE")
    app.add_argument(
        "--mode",
        type=mode,
        metavar="MODE",
        help=f"this mode instead of the one detected ({MODES_SHOWN})",
    )
    app.add_argument(
        "--netns",
        metavar="NAME",
        help="in this network namespace (default: the node's netns, else here)",
    )
    app.add_argument("--dry-run", action="store_true", help="list the changes, make none")
    cut = action("cutover", do_cutover, "move the VIP networks from the old plane to the new")
    cut.add_argument("env", metavar="ENV")
    cut.add_argument("--rollback", action="store_true", help="back: the old plane rejoins")
    cut.add_argument("--dry-run", action="store_true", help="list each node's changes, make none")
