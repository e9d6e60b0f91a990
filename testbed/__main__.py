"""Run a testbed by hand.

``python -m testbed up DIR [--nodes N]``  start cp1 and cp2 in DIR, seed N deployed nodes in
cp1, write DIR/clouds.yaml, DIR/credentials.yaml and DIR/pids, then wait for Ctrl-C or SIGTERM.
``python -m testbed nova-up DIR [--computes N]``  start a real Nova (API, conductor, scheduler,
N computes, Placement, PostgreSQL, RabbitMQ) in DIR, write DIR/clouds.yaml (cloud ``nova``)
and DIR/pids, then wait for Ctrl-C or SIGTERM. ``--release-venvs nova==33.0.2
openstack-placement==15.0.0`` runs each host from a venv of its own with those releases
(DIR/hosts/HOST/venv, see testbed/novavenv.py).
``python -m testbed nova-release DIR NAME [VERSION] [--fail]``  print the release of service
NAME (``compute-1``..., ``nova-conductor``, ``nova-scheduler``, ``nova-api``, ``placement``) of
the Nova testbed in DIR; with VERSION, write it into the service's configuration and restart
the service, returning once the old process is gone and the new one started. ``--fail`` (or
NAME listed in ``TESTBED_RELEASE_FAIL``, comma-separated, ``*`` for all) makes the new release
fail at start.
``python -m testbed nova-restart DIR SERVICE HOST``  restart Nova service SERVICE
(``nova-api``, ``nova-conductor``, ``nova-scheduler``, ``placement-api`` on ``controller``;
``nova-compute`` on ``compute-N``) of the Nova testbed in DIR, returning once the old process
is gone and the new one started (from the host's venv and configuration as they are now).
Exit 0 when restarted, 2 for bad arguments (nothing done), 1 when it failed.
``python -m testbed down DIR``  stop a testbed that ``up`` or ``nova-up`` started (e.g. in the
background), or the processes of a kept demo (``scripts/demo.sh --keep``; its ``--stop`` also
removes the directory).

Any directory will do, with the repository on ``PYTHONPATH``: ``scripts/testbed`` runs these
commands so, from anywhere.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from testbed.daemon import FOREGROUND, PIDS_FILE, read_pids, stop_recorded, write_pids
from testbed.ironic import Testbed
from testbed.nova import IMAGE_ID, NovaTestbed
from testbed.releases import (
    CONTROLLER_SERVICES,
    RESTART_TIMEOUT_S,
    ReleaseError,
    check_service,
    release,
    restart_service,
    service_name,
    set_release,
)
from testbed.seed import seed_nodes, write_credentials

#: Services (comma-separated, ``*`` for all) whose new release ``nova-release`` sets to fail.
FAIL_ENV = "TESTBED_RELEASE_FAIL"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start cp1 + cp2, seed cp1, stay in the foreground")
    up.add_argument("dir", type=Path)
    up.add_argument("--nodes", type=int, default=10, help="deployed nodes to seed in cp1")
    up.add_argument("--fake-delay", type=float, default=0.0, help="seconds per deploy step")
    up.add_argument("--show-secrets", action="store_true", help="API shows BMC passwords")
    nova = sub.add_parser("nova-up", help="start a real Nova, stay in the foreground")
    nova.add_argument("dir", type=Path, nargs="?", help="work directory (or --root)")
    nova.add_argument("--root", type=Path, help="work directory")
    nova.add_argument("--computes", type=int, default=3, help="nova-computes to run")
    nova.add_argument("--memory-mb", type=int, default=16384, help="memory of each compute")
    nova.add_argument("--vcpus", type=int, default=16, help="VCPUs of each compute")
    nova.add_argument(
        "--max-live-migrations", type=int, default=8, help="concurrent live migrations per compute"
    )
    nova.add_argument(
        "--release-venvs",
        nargs=2,
        metavar=("NOVA_PIN", "PLACEMENT_PIN"),
        help="each host from a venv of its own with these releases, "
        "e.g. nova==33.0.2 openstack-placement==15.0.0",
    )
    rel = sub.add_parser(
        "nova-release",
        help="print the release of a Nova testbed service, or set it and restart the service",
    )
    rel.add_argument("root", type=Path, help="the Nova testbed's directory")
    rel.add_argument("name", help="compute-N, nova-conductor, nova-scheduler, nova-api, placement")
    rel.add_argument("version", nargs="?", help="the new release, e.g. 2.0.0")
    rel.add_argument(
        "--fail",
        action="store_true",
        help=f"the new release fails at start (also: NAME in ${FAIL_ENV}, '*' for all)",
    )
    rel.add_argument(
        "--timeout",
        type=float,
        default=RESTART_TIMEOUT_S,
        help="seconds to wait for the new process to start",
    )
    restart = sub.add_parser(
        "nova-restart",
        help="restart one Nova service of one host of a Nova testbed",
    )
    restart.add_argument("root", type=Path, help="the Nova testbed's directory")
    restart.add_argument("service", help=", ".join(["nova-compute", *CONTROLLER_SERVICES]))
    restart.add_argument("host", help="controller or compute-N")
    restart.add_argument(
        "--timeout",
        type=float,
        default=RESTART_TIMEOUT_S,
        help="seconds to wait for the new process to start",
    )
    down = sub.add_parser(
        "down", aliases=["nova-down"], help="stop a testbed started with 'up' or 'nova-up'"
    )
    down.add_argument("dir", type=Path)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def up(root: Path, nodes: int, fake_delay: float, show_secrets: bool) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        with Testbed(root, show_secrets=show_secrets, fake_delay=fake_delay) as testbed:
            pids = {name: svc.pid for name, svc in testbed.services.items() if svc.pid}
            write_pids(testbed.root_dir, {FOREGROUND: os.getpid(), **pids})
            ready = time.monotonic()
            specs = seed_nodes(testbed.connect("cp1"), nodes)
            creds = write_credentials(testbed.root_dir / "credentials.yaml", specs)
            print(
                f"started in {ready - started:.1f} s; seeded {nodes} deployed nodes in cp1 "
                f"in {time.monotonic() - ready:.1f} s"
            )
            for name, svc in testbed.services.items():
                print(f"  {name}: {svc.url}  (logs in {svc.workdir})")
            print(f"credentials: {creds}")
            print(f"export OS_CLIENT_CONFIG_FILE={testbed.clouds_yaml}", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        (root / PIDS_FILE).unlink(missing_ok=True)
    return 0


def nova_up(
    root: Path,
    computes: int,
    memory_mb: int,
    vcpus: int,
    live: int,
    release_venvs: list[str] | None = None,
) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    bed = NovaTestbed(
        root,
        computes,
        memory_mb,
        vcpus,
        max_concurrent_live_migrations=live,
        release_venvs=release_venvs,
    )
    try:
        with bed:
            write_pids(bed.root, {FOREGROUND: os.getpid(), **bed.pids()})
            print(
                f"Nova started in {bed.start_seconds or 0:.1f} s, "
                f"{bed.memory_mb_used():.0f} MiB (PSS); computes {', '.join(bed.hosts)}"
            )
            print(f"  compute API {bed.api_url}, Placement {bed.placement_url}")
            print(f"  flavor tiny {bed.flavor()}, image {IMAGE_ID}")
            print(f"  logs in {bed.logs}")
            if bed.release_venvs is not None:
                for host in bed.host_names:
                    print(f"  {host}: nova {bed.installed(host)}, venv {bed.venv(host)}")
                print(f"  wheels in {bed.wheels}")
            print(
                f"export OS_CLIENT_CONFIG_FILE={bed.clouds_yaml} OS_CLOUD={bed.cloud}", flush=True
            )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        (bed.root / PIDS_FILE).unlink(missing_ok=True)
    return 0


def _fails(name: str, fail: bool) -> bool:
    listed = {item.strip() for item in os.environ.get(FAIL_ENV, "").split(",")}
    return fail or name in listed or "*" in listed


def nova_release(root: Path, name: str, version: str | None, fail: bool, timeout: float) -> int:
    """Print the release of ``name``, or set it to ``version`` and restart the service."""
    try:
        if version is None:
            configured = release(root, name)
            print(configured.version)
            if configured.fail_start:
                print(f"{name}: release {configured.version} fails at start", file=sys.stderr)
            return 0
        failing = _fails(name, fail)
        started = time.monotonic()
        restarted = set_release(root, name, version, fail_start=failing, timeout=timeout)
    except ReleaseError as exc:
        print(f"nova-release: {exc}", file=sys.stderr)
        return exc.exit_code
    assert restarted is not None
    old, new = restarted
    note = " (set to fail at start)" if failing else ""
    print(
        f"{name}: release {version}{note}; process {old} replaced by {new} "
        f"in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    return 0


def nova_restart(root: Path, service: str, host: str, timeout: float) -> int:
    """Restart ``service`` of ``host``: 0 once its new process started, 2 for a service,
    host or directory that is none of the testbed's, 1 when it failed."""
    try:
        name = service_name(service, host)
        check_service(root, name)
        started = time.monotonic()
        old, new = restart_service(root, name, timeout=timeout)
    except ReleaseError as exc:
        print(f"nova-restart: {exc}", file=sys.stderr)
        return exc.exit_code
    print(
        f"{service} on {host}: process {old} replaced by {new} "
        f"in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    return 0


def down(root: Path, timeout: float = 60.0) -> int:
    """Ask the foreground process to stop its testbed (in order, removing what it made),
    then stop whatever process group it left running."""
    if read_pids(root) is None:
        print(f"no testbed running in {root} (no pids file)", file=sys.stderr)
        return 1
    stop_recorded(root, timeout)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "up":
        return up(args.dir, args.nodes, args.fake_delay, args.show_secrets)
    if args.command == "nova-up":
        root = args.root or args.dir
        if root is None:
            _parser().error("nova-up needs a directory (DIR or --root DIR)")
        return nova_up(
            root,
            args.computes,
            args.memory_mb,
            args.vcpus,
            args.max_live_migrations,
            args.release_venvs,
        )
    if args.command == "nova-release":
        if args.fail and args.version is None:
            _parser().error("nova-release: --fail needs a VERSION")
        return nova_release(args.root, args.name, args.version, args.fail, args.timeout)
    if args.command == "nova-restart":
        return nova_restart(args.root, args.service, args.host, args.timeout)
    return down(args.dir)


if __name__ == "__main__":
    sys.exit(main())
