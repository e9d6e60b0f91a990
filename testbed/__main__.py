"""Run a testbed by hand.

``python -m testbed up DIR [--nodes N]``  start cp1 and cp2 in DIR, seed N deployed nodes in
cp1, write DIR/clouds.yaml, DIR/credentials.yaml and DIR/pids, then wait for Ctrl-C or SIGTERM.
``python -m testbed down DIR``  stop a testbed that ``up`` started (e.g. in the background).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from testbed.ironic import Testbed, stop_process_group
from testbed.seed import seed_nodes, write_credentials


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start cp1 + cp2, seed cp1, stay in the foreground")
    up.add_argument("dir", type=Path)
    up.add_argument("--nodes", type=int, default=10, help="deployed nodes to seed in cp1")
    up.add_argument("--fake-delay", type=float, default=0.0, help="seconds per deploy step")
    up.add_argument("--show-secrets", action="store_true", help="API shows BMC passwords")
    down = sub.add_parser("down", help="stop a testbed started with 'up'")
    down.add_argument("dir", type=Path)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def up(root: Path, nodes: int, fake_delay: float, show_secrets: bool) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        with Testbed(root, show_secrets=show_secrets, fake_delay=fake_delay) as testbed:
            pids = [f"testbed {os.getpid()}"]
            pids += [f"{name} {svc.pid}" for name, svc in testbed.services.items()]
            (testbed.root_dir / "pids").write_text("\n".join(pids) + "\n")
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
        (root / "pids").unlink(missing_ok=True)
    return 0


def down(root: Path) -> int:
    pidfile = root / "pids"
    if not pidfile.exists():
        print(f"no testbed running in {root} (no pids file)", file=sys.stderr)
        return 1
    entries = dict(line.split() for line in pidfile.read_text().splitlines() if line.strip())
    foreground = int(entries.pop("testbed", "0"))
    for pid in entries.values():
        stop_process_group(int(pid))
    if foreground:
        with contextlib.suppress(ProcessLookupError):
            os.kill(foreground, signal.SIGTERM)
    pidfile.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "up":
        return up(args.dir, args.nodes, args.fake_delay, args.show_secrets)
    return down(args.dir)


if __name__ == "__main__":
    sys.exit(main())
