"""Hand a testbed nova-compute over from one Nova testbed to another.

``python -m testbed.handover --clouds FILE COMMAND ...`` (stdlib and the testbed only) plays
what a deployment tool does when a compute host leaves one cloud for another. ``FILE`` is
the JSON document :class:`testbed.tenantclouds.TwoClouds` writes beside ``clouds.yaml``,
naming the root of each cloud's :class:`testbed.nova.NovaTestbed`::

    {"clouds": {"a": "/.../a/nova", "b": "/.../b/nova"}}

A host belongs to the testbed whose ``etc/HOST.conf`` it is (host names are unique across
the clouds); that testbed's supervisor keeps running its nova-compute wherever it serves.
The commands, each idempotent, print one line and exit 0 when done, 1 with the reason
otherwise (2 for a usage error):

``release HOST``
    Stop HOST's nova-compute and keep it stopped: its release is marked ``fail_start`` (so
    :mod:`testbed.release_gate` refuses every start its supervisor tries) and its process
    gets SIGTERM (SIGKILL after :data:`STOP_GRACE_S` seconds). Returns once no nova-compute
    runs for HOST and a start tried since found the mark.
``adopt HOST CLOUD``
    Point HOST's nova-compute at CLOUD (its message bus, Placement, region, image and
    network services: the options :data:`CARRIED` of CLOUD's ``nova.conf``, written at the
    end of ``HOST.conf``, which nova-compute reads after its own testbed's ``nova.conf``) and
    let it start. Returns once the new process runs; its registration in CLOUD is the
    caller's to wait for. Refused while the host runs for another cloud.
``discover CLOUD``
    ``nova-manage cell_v2 discover_hosts`` with CLOUD's configuration: maps the computes of
    CLOUD's cell1 that have no host mapping yet.

What the host serves is kept in the ``[testbed_handover]`` group of the block written at
the end of ``HOST.conf`` (``cloud``, ``released``); Nova does not read that group.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from testbed.ironic import TestbedError, _executable
from testbed.releases import (
    Release,
    config_file,
    read_release,
    state_file,
    stop_process,
    write_release,
)
from testbed.supervise import SupervisorState, process_alive, read_state

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: The file :class:`testbed.tenantclouds.TwoClouds` writes beside ``clouds.yaml``.
CONFIG_NAME = "handover.json"
#: The group of ``HOST.conf`` that says which cloud the host serves.
GROUP = "testbed_handover"
#: The block this module writes at the end of ``HOST.conf`` begins with the header of
#: GROUP (a comment before it would belong to the group above, which
#: :func:`testbed.releases.write_release` edits), then this line.
MARK = "# written by python -m testbed.handover, replaced at each change; Nova ignores this group"
#: Options of the adopting cloud's ``nova.conf`` copied into ``HOST.conf``, by group (None:
#: every option of the group). None of them names a path of the cloud's own.
CARRIED: Mapping[str, tuple[str, ...] | None] = {
    "DEFAULT": ("transport_url",),
    "placement": None,
    "glance": None,
    "neutron": None,
    "cinder": None,
    "service_user": None,
}
#: Seconds a stopping nova-compute gets before SIGKILL (it stops in about 2 s).
STOP_GRACE_S = 10.0
TIMEOUT_S = 60.0
POLL_S = 0.05
#: The module that runs a testbed nova-compute (the release gate execs into it).
COMPUTE_MODULE = b"testbed.nova_compute"


class HandoverError(TestbedError):
    """A hand-over command could not do what it was asked."""


@dataclass(frozen=True)
class Serving:
    """What ``HOST.conf`` says: the cloud the host serves (or left, when ``released``)."""

    cloud: str
    released: bool


@dataclass(frozen=True)
class Clouds:
    """The Nova testbed root of each cloud, by name."""

    roots: Mapping[str, Path]

    @classmethod
    def load(cls, path: Path) -> Clouds:
        try:
            data = json.loads(path.read_text())
            roots = {str(name): Path(root) for name, root in data["clouds"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HandoverError(f"cannot read the clouds of {path}: {exc}") from exc
        return cls(roots)

    def root(self, cloud: str) -> Path:
        if cloud not in self.roots:
            raise HandoverError(f"unknown cloud {cloud!r}; clouds: {sorted(self.roots)}")
        return self.roots[cloud]

    def hosts(self) -> dict[str, str]:
        """Every compute host, with the cloud whose testbed runs it."""
        found = {}
        for cloud, root in sorted(self.roots.items()):
            for conf in sorted((root / "etc").glob("compute-*.conf")):
                found[conf.stem] = cloud
        return found

    def owner(self, host: str) -> str:
        hosts = self.hosts()
        if host not in hosts:
            raise HandoverError(f"unknown host {host!r}; hosts: {sorted(hosts)}")
        return hosts[host]


def write_config(path: Path, roots: Mapping[str, Path]) -> Path:
    """Write the clouds document ``path`` naming each cloud's Nova testbed root."""
    document = {"clouds": {name: str(root) for name, root in sorted(roots.items())}}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


# -- HOST.conf ------------------------------------------------------------------------------


def _parser() -> configparser.ConfigParser:
    # DEFAULT an ordinary group (configparser would mix it into every other); repeated
    # groups merged, later values winning, as oslo.config reads them
    return configparser.ConfigParser(
        strict=False, interpolation=None, default_section="\x00 no default"
    )


def _split(conf: Path) -> tuple[str, str]:
    """(the host's own configuration, the hand-over block or "")."""
    text = conf.read_text()
    found = re.search(rf"^\[{GROUP}\][ \t]*$", text, flags=re.MULTILINE)
    if found is None:
        return text.rstrip("\n") + "\n", ""
    return text[: found.start()].rstrip("\n") + "\n", text[found.start() :]


def serving(conf: Path, owner: str) -> Serving:
    """What the compute configuration ``conf`` of a host of cloud ``owner`` serves."""
    _head, block = _split(conf)
    parser = _parser()
    parser.read_string(block)
    if not parser.has_section(GROUP):
        return Serving(owner, released=False)
    group = parser[GROUP]
    return Serving(group.get("cloud", owner), group.getboolean("released", fallback=False))


def released(conf: Path) -> bool:
    """Whether ``conf`` (a compute's configuration) was released and not adopted since."""
    return serving(conf, "").released


def carried_options(nova_conf: Path) -> dict[str, dict[str, str]]:
    """The :data:`CARRIED` options of ``nova_conf``, by group."""
    parser = _parser()
    parser.read(nova_conf)
    carried: dict[str, dict[str, str]] = {}
    for group, names in CARRIED.items():
        if not parser.has_section(group):
            continue
        options = dict(parser.items(group))
        chosen = options if names is None else {n: options[n] for n in names if n in options}
        if chosen:
            carried[group] = chosen
    return carried


def _write_block(
    conf: Path, cloud: str, is_released: bool, options: Mapping[str, Mapping[str, str]]
) -> None:
    head, _block = _split(conf)
    lines = [f"[{GROUP}]", MARK, f"cloud = {cloud}", f"released = {str(is_released).lower()}"]
    for group, values in options.items():
        lines += ["", f"[{group}]", *(f"{key} = {value}" for key, value in values.items())]
    scratch = conf.with_name(f".{conf.name}.tmp")
    scratch.write_text(f"{head}\n" + "\n".join(lines) + "\n")
    os.replace(scratch, conf)


# -- the host's process ---------------------------------------------------------------------


def _is_compute(pid: int) -> bool:
    """Whether ``pid`` is alive and runs nova-compute, not the release gate before it
    (whose arguments end with nova-compute's: the module run is the one after the first
    ``-m``)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if b"-m" not in argv[:-1]:
        return False
    return process_alive(pid) and argv[argv.index(b"-m") + 1] == COMPUTE_MODULE


def _supervised(root: Path, host: str) -> SupervisorState:
    state = read_state(state_file(root, host))
    if state is None or not state.supervisor_alive:
        raise HandoverError(
            f"{host} has no live supervisor in the testbed at {root} (is the testbed running?)"
        )
    return state


# -- the commands ---------------------------------------------------------------------------


def release(clouds: Clouds, host: str, timeout: float = TIMEOUT_S) -> str:
    """Stop ``host``'s nova-compute and keep it stopped; see the module docstring."""
    owner = clouds.owner(host)
    root = clouds.root(owner)
    conf = config_file(root, host)
    now = serving(conf, owner)
    version = read_release(conf)
    state = _supervised(root, host)
    if now.released and version.fail_start and not _is_compute(state.child):
        return f"{host} is released (it left {now.cloud}); nova-compute is not running"
    if not now.released:
        _write_block(conf, now.cloud, True, carried_options(_cloud_conf(clouds, now.cloud)))
    write_release(conf, Release(version.version, fail_start=True))
    mark = time.time()
    deadline = time.monotonic() + timeout
    while True:
        state = _supervised(root, host)
        if _is_compute(state.child) or (state.child_alive and state.started < mark):
            stop_process(state.child, host, STOP_GRACE_S)
        elif state.started >= mark:
            return f"{host} released from {now.cloud}: nova-compute stopped and kept stopped"
        if time.monotonic() > deadline:
            raise HandoverError(f"{host}: no start refused within {timeout:.0f} s")
        time.sleep(POLL_S)


def _cloud_conf(clouds: Clouds, cloud: str) -> Path:
    return clouds.root(cloud) / "etc" / "nova.conf"


def adopt(clouds: Clouds, host: str, cloud: str, timeout: float = TIMEOUT_S) -> str:
    """Point ``host``'s nova-compute at ``cloud`` and start it; see the module docstring."""
    owner = clouds.owner(host)
    root = clouds.root(owner)
    nova_conf = _cloud_conf(clouds, cloud)
    conf = config_file(root, host)
    now = serving(conf, owner)
    state = _supervised(root, host)
    if _is_compute(state.child):
        if now.cloud == cloud and not now.released:
            return f"{host} serves {cloud}: nova-compute runs (pid {state.child})"
        raise HandoverError(f"{host}'s nova-compute runs for cloud {now.cloud}: release it first")
    _write_block(conf, cloud, False, carried_options(nova_conf))
    write_release(conf, Release(read_release(conf).version, fail_start=False))
    deadline = time.monotonic() + timeout
    while True:
        # The gate refuses every start while the host is released: a nova-compute that
        # runs now read an adopted configuration, this one's or that of an adopt before
        # it which a crash cut short (its start may predate this call).
        state = _supervised(root, host)
        if _is_compute(state.child):
            return f"{host} adopted by {cloud}: nova-compute runs (pid {state.child})"
        if time.monotonic() > deadline:
            raise HandoverError(f"{host}: nova-compute not started within {timeout:.0f} s")
        time.sleep(POLL_S)


def nova_env(etc: Path) -> dict[str, str]:
    """The environment of a Nova command of the testbed whose configuration is ``etc``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
    env["PYTHONPATH"] = str(REPO)
    env["OS_NOVA_CONFIG_DIR"] = str(etc)
    env["OS_NOVA_CONFIG_FILES"] = "api-paste.ini;nova.conf;controller.conf"
    return env


def discover(clouds: Clouds, cloud: str, timeout: float = TIMEOUT_S) -> str:
    """``nova-manage cell_v2 discover_hosts`` with ``cloud``'s configuration."""
    etc = clouds.root(cloud) / "etc"
    argv = [_executable("nova-manage"), "--config-file", str(etc / "nova.conf")]
    argv += ["--config-file", str(etc / "controller.conf"), "cell_v2", "discover_hosts"]
    argv.append("--verbose")
    try:
        done = subprocess.run(
            argv, env=nova_env(etc), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise HandoverError(f"discover_hosts in {cloud} took over {timeout:.0f} s") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise HandoverError(f"discover_hosts in {cloud} exited with {done.returncode}: {last}")
    mapped = re.findall(r"Creating host mapping for compute host '([^']+)'", done.stdout)
    return f"discover_hosts in {cloud}: mapped {', '.join(mapped) if mapped else 'no new host'}"


# -- command line -----------------------------------------------------------------------------


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m testbed.handover", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--clouds", type=Path, required=True, help=f"the clouds' {CONFIG_NAME}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("release", help="stop HOST's nova-compute, keep it stopped").add_argument(
        "host"
    )
    adopting = commands.add_parser("adopt", help="point HOST's nova-compute at CLOUD, start it")
    adopting.add_argument("host")
    adopting.add_argument("cloud")
    commands.add_parser("discover", help="discover_hosts in CLOUD").add_argument("cloud")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    try:
        clouds = Clouds.load(args.clouds)
        if args.command == "release":
            message = release(clouds, args.host)
        elif args.command == "adopt":
            message = adopt(clouds, args.host, args.cloud)
        else:
            message = discover(clouds, args.cloud)
    except TestbedError as exc:
        print(f"testbed.handover {args.command}: {exc}", file=sys.stderr)
        return 1
    print(message)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main(sys.argv[1:]))
