"""The demo: two local Ironic control planes, deployed nodes in cp1, a forklift to cp2.

Without ``--keep``, everything lives in a temporary directory removed at the end; the
control planes are stopped on exit, Ctrl-C included.

With ``--keep``, the demo leaves something to explore: cp1 and cp2, the journal with the
finished run and ``ephyra serve`` keep running after it exits (each process in a session
of its own, recorded in DIR/pids), and it prints the dashboard's URL, the admin token,
the environment to use and how to stop it all (also kept in DIR/instructions.txt). DIR is
``--dir``, else ``$EPHYRA_DEMO_DIR``, else ``~/.local/state/ephyra-demo``. A second
``--keep`` while one runs prints its instructions again. ``--stop`` stops every process
of the kept demo and removes DIR.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from testbed.daemon import PIDS_FILE, Daemon, http_ok, read_pids, stop_recorded, write_pids
from testbed.ironic import LOOPBACK, Testbed, free_port
from testbed.seed import seed_nodes, write_credentials
from testbed.supervise import process_alive

REPO = Path(__file__).resolve().parents[1]
#: The directory of a kept demo, when ``--dir`` is not given.
DIR_ENV = "EPHYRA_DEMO_DIR"
#: Set by scripts/demo.sh to its own path: the stop command printed names it.
SCRIPT_ENV = "EPHYRA_DEMO_SCRIPT"
#: What a kept demo prints, kept in its directory (which this file marks as a kept demo's).
INSTRUCTIONS = "instructions.txt"
SERVE_START_S = 60.0


def default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ephyra-demo"


def ephyra(env: dict[str, str], *args: str) -> int:
    return subprocess.call([sys.executable, "-m", "ephyra.cli.main", *args], env=env)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # unwinds the context managers: the control planes stop


@dataclass(frozen=True)
class Demo:
    """The files of one demo, in its directory."""

    root: Path

    @property
    def state(self) -> Path:
        """XDG_STATE_HOME of the demo's ephyra commands: its journal, locks and tokens."""
        return self.root / "state"

    @property
    def tokens(self) -> Path:
        return self.state / "ephyra" / "api-tokens.yaml"

    @property
    def credentials(self) -> Path:
        return self.root / "credentials.yaml"

    @property
    def instructions(self) -> Path:
        return self.root / INSTRUCTIONS

    def env(self, tb: Testbed) -> dict[str, str]:
        return {**os.environ, **tb.env(), "XDG_STATE_HOME": str(self.state)}


def forklift(demo: Demo, tb: Testbed, nodes: int, concurrency: int, rollback: bool) -> int:
    """Seed cp1, plan and run the forklift to cp2 (and back with ``rollback``)."""
    print(f"testbed: cp1 at {tb['cp1'].url}, cp2 at {tb['cp2'].url}", flush=True)
    started = time.monotonic()
    specs = seed_nodes(tb.connect("cp1"), nodes)
    print(
        f"enrolled and deployed {len(specs)} nodes in cp1 in {time.monotonic() - started:.1f}s",
        flush=True,
    )
    creds = write_credentials(demo.credentials, specs)
    env = demo.env(tb)
    common = ["--from", "cp1", "--to", "cp2", "--credentials", f"file:{creds}"]
    common += ["--concurrency", str(concurrency)]
    code = ephyra(env, "forklift", "plan", *common)
    code = code or ephyra(env, "forklift", "start", *common, "--yes")
    ephyra(env, "forklift", "status")
    if rollback and code == 0:
        code = ephyra(env, "forklift", "rollback")
        ephyra(env, "forklift", "status")
    return code


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def stop_command(root: Path) -> str:
    """The command that stops the kept demo in ``root``, from any directory."""
    where = "" if root == default_dir().resolve() else f" --dir {_q(root)}"
    script = os.environ.get(SCRIPT_ENV)
    if script:
        return f"{_q(script)} --stop{where}"
    return f"PYTHONPATH={_q(REPO)} {_q(sys.executable)} -m testbed.demo --stop{where}"


def instructions(demo: Demo, tb: Testbed, url: str, token: str, rolled_back: bool) -> str:
    """What a kept demo prints: how to look at it, use it and stop it."""
    bin_dir = Path(sys.executable).parent
    here, there = ("cp1", "cp2") if rolled_back else ("cp2", "cp1")
    creds = f"file:{demo.credentials}"
    lines = [
        f"The demo keeps running (cp1 {tb['cp1'].url}, cp2 {tb['cp2'].url}, ephyra serve),",
        f"its state in {demo.root}:",
        "",
        f"  dashboard:  {url}",
        f"  log in with the admin token {token}",
        f"  (it is in {demo.tokens})",
        "",
        "To use it from a shell:",
        "",
        f"  export PATH={_q(bin_dir)}:$PATH OS_CLIENT_CONFIG_FILE={_q(tb.clouds_yaml)} "
        f"XDG_STATE_HOME={_q(demo.state)}",
        "  ephyra forklift status",
        "  ephyra forklift list -f json",
        f"  ephyra --url {url} run list    # the same journal, through the API",
        f"  ephyra forklift plan --from {here} --to {there} --credentials {_q(creds)}",
    ]
    if not rolled_back:
        lines.append("  ephyra forklift rollback    # moves the nodes back to cp1")
    lines += ["", "To stop it all and remove its state:", "", f"  {stop_command(demo.root)}", ""]
    return "\n".join(lines)


def _running(root: Path) -> dict[str, bool] | None:
    """Whether each process recorded in ``root`` is alive; None when none is recorded."""
    pids = read_pids(root)
    return None if pids is None else {name: process_alive(pid) for name, pid in pids.items()}


def _already(demo: Demo) -> int | None:
    """What to answer when ``demo.root`` is taken: the instructions of a demo running
    there (0), a word about one partly running (1) or about a directory that is not a
    kept demo's (2); None when the directory is free (a stopped demo's is removed)."""
    root = demo.root
    if not root.exists():
        return None
    if not demo.instructions.exists() and not (root / PIDS_FILE).exists():
        if any(root.iterdir()):
            print(
                f"demo: {root} is not a kept demo's directory: give another --dir", file=sys.stderr
            )
            return 2
        return None
    running = _running(root) or {}
    if running and all(running.values()) and demo.instructions.exists():
        print(f"a kept demo is already running in {root}\n", flush=True)
        print(demo.instructions.read_text(), end="", flush=True)
        return 0
    if any(running.values()):
        gone = [name for name, alive in running.items() if not alive]
        state = f"only partly running ({', '.join(gone)} ended)" if gone else "being set up"
        print(
            f"demo: the kept demo in {root} is {state}: stop it with {stop_command(root)}",
            file=sys.stderr,
        )
        return 1
    print(f"the kept demo in {root} had stopped: starting it again", flush=True)
    shutil.rmtree(root)
    return None


def start_serve(demo: Demo, tb: Testbed) -> tuple[Daemon, str]:
    """Start ``ephyra serve`` on a free loopback port, on the demo's journal (its first
    start makes the admin token); return it and its URL."""
    port = free_port()
    argv = [sys.executable, "-m", "ephyra.cli.main", "serve", "--host", LOOPBACK]
    serve = Daemon("serve", [*argv, "--port", str(port)], demo.root / "serve.log", env=demo.env(tb))
    serve.start()
    return serve, f"http://{LOOPBACK}:{port}/"


def keep(demo: Demo, nodes: int, concurrency: int, rollback: bool) -> int:
    """The demo, leaving its control planes, journal and server running."""
    answer = _already(demo)
    if answer is not None:
        return answer
    demo.root.mkdir(parents=True, exist_ok=True)
    demo.root.chmod(0o700)
    tb = Testbed(demo.root)
    try:
        tb.start()
        pids = {name: svc.pid for name, svc in tb.services.items() if svc.pid}
        write_pids(demo.root, pids)
        code = forklift(demo, tb, nodes, concurrency, rollback)
        serve, url = start_serve(demo, tb)
        assert serve.pid is not None
        write_pids(demo.root, {**pids, "serve": serve.pid})
        serve.wait_until(lambda: http_ok(f"{url}healthz"), SERVE_START_S, "answering")
        from ephyra.api.auth import admin_token

        token = admin_token(demo.tokens) or f"(none: see {demo.tokens})"
        text = instructions(demo, tb, url, token, rollback and code == 0)
        demo.instructions.write_text(text)  # with the token: the directory is the owner's
    except BaseException:
        print(f"demo: stopping what it started in {demo.root}", file=sys.stderr, flush=True)
        tb.stop()
        stop_recorded(demo.root)
        shutil.rmtree(demo.root, ignore_errors=True)
        raise
    print(f"\n{text}", end="", flush=True)
    return code


def stop(demo: Demo) -> int:
    """Stop every process of the kept demo in ``demo.root`` and remove the directory."""
    root = demo.root
    if not root.exists():
        print(f"demo: no kept demo in {root}", file=sys.stderr)
        return 1
    if not demo.instructions.exists() and not (root / PIDS_FILE).exists():
        print(f"demo: {root} is not a kept demo's directory: left as it is", file=sys.stderr)
        return 2
    stopped = stop_recorded(root)
    shutil.rmtree(root)
    names = ", ".join(stopped) or "nothing was running"
    print(f"stopped the kept demo ({names}) and removed {root}", flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rollback", action="store_true", help="move the nodes back afterwards")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--keep", action="store_true", help="leave it running to explore")
    action.add_argument("--stop", action="store_true", help="stop a kept demo, remove its state")
    parser.add_argument(
        "--dir",
        type=Path,
        help=f"the kept demo's directory (${DIR_ENV}, else ~/.local/state/ephyra-demo)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    args = _parser().parse_args(argv)
    root = args.dir or Path(os.environ.get(DIR_ENV) or default_dir())
    demo = Demo(root.resolve())
    if args.stop:
        return stop(demo)
    if args.keep:
        return keep(demo, args.nodes, args.concurrency, args.rollback)
    with tempfile.TemporaryDirectory(prefix="ephyra-demo-") as tmp, Testbed(Path(tmp)) as tb:
        return forklift(Demo(Path(tmp)), tb, args.nodes, args.concurrency, args.rollback)


if __name__ == "__main__":
    sys.exit(main())
