"""The demo: two local Ironic control planes, deployed nodes in cp1, a forklift to cp2.

Everything lives in a temporary directory removed at the end; the control planes are
stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testbed.ironic import Testbed
from testbed.seed import seed_nodes, write_credentials


def ephyra(env: dict[str, str], *args: str) -> int:
    return subprocess.call([sys.executable, "-m", "ephyra.cli.main", *args], env=env)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # unwinds the context managers: the control planes stop


def main() -> int:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    parser = argparse.ArgumentParser(prog="demo", description=__doc__)
    parser.add_argument("--nodes", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rollback", action="store_true", help="move the nodes back afterwards")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ephyra-demo-") as tmp, Testbed(Path(tmp)) as tb:
        print(f"testbed: cp1 at {tb['cp1'].url}, cp2 at {tb['cp2'].url}", flush=True)
        started = time.monotonic()
        specs = seed_nodes(tb.connect("cp1"), args.nodes)
        print(
            f"enrolled and deployed {len(specs)} nodes in cp1 in {time.monotonic() - started:.1f}s",
            flush=True,
        )
        creds = write_credentials(Path(tmp) / "credentials.yaml", specs)
        env = {**os.environ, **tb.env(), "XDG_STATE_HOME": str(Path(tmp) / "state")}
        common = [
            "--from",
            "cp1",
            "--to",
            "cp2",
            "--credentials",
            f"file:{creds}",
            "--concurrency",
            str(args.concurrency),
        ]
        code = ephyra(env, "forklift", "plan", *common)
        code = code or ephyra(env, "forklift", "start", *common, "--yes")
        ephyra(env, "forklift", "status")
        if args.rollback and code == 0:
            code = ephyra(env, "forklift", "rollback")
            ephyra(env, "forklift", "status")
        return code


if __name__ == "__main__":
    sys.exit(main())
