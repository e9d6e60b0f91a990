"""Releases of the Nova testbed's services, kept in their configuration, and restarts.

Every supervised service of a :class:`testbed.nova.NovaTestbed` has a configuration file
``ROOT/etc/NAME.conf`` that it reads, with its release in the ``[testbed_fake]`` group::

    [testbed_fake]
    release = 1.0.0
    # only when the release is to fail at start (nova-release --fail)
    fail_start = true

``NAME`` is ``compute-1``... (the compute's own configuration; its driver reports
``hypervisor_version = convert_version_to_int(release)``), ``nova-conductor``,
``nova-scheduler``, ``nova-api`` or ``placement``. :mod:`testbed.release_gate` refuses
to start a service whose release is not a version or is marked to fail, so that an
upgrade which breaks a service can be played.

The release ``nova`` (:data:`INSTALLED`) stands for the version of the nova package the
service's interpreter has installed (:func:`resolve`): a testbed whose hosts run real
releases from venvs of their own (:mod:`testbed.novavenv`) configures it, so a compute
reports ``convert_version_to_int`` of its installed Nova, 33000002 for 33.0.2.

Each of those services runs under :mod:`testbed.supervise`, whose state file is
``ROOT/run/NAME.json``: :func:`set_release` writes the release and then stops the
service's current process, which the supervisor starts again with the new configuration;
:func:`restart_service` only restarts it (:func:`service_name` maps a Nova service and
its host, ``nova-compute`` on ``compute-2``, to that name).
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from oslo_utils import versionutils

from testbed.ironic import TestbedError
from testbed.supervise import SupervisorState, process_alive, read_state

GROUP = "testbed_fake"
RELEASE = "release"
FAIL_START = "fail_start"
DEFAULT_RELEASE = "1.0.0"
#: The release that stands for the installed nova package's version (see :func:`resolve`).
INSTALLED = "nova"
#: Services with a release besides the computes, in the order they are listed.
CONTROLLERS = ("nova-conductor", "nova-scheduler", "nova-api", "placement")
#: The host of every controller service.
CONTROLLER_HOST = "controller"
#: The supervised service of each Nova service that runs on the controller host.
CONTROLLER_SERVICES = {
    "nova-api": "nova-api",
    "nova-conductor": "nova-conductor",
    "nova-scheduler": "nova-scheduler",
    "placement-api": "placement",
}
#: Nova keeps hypervisor_version in a 32-bit signed integer column.
MAX_VERSION_INT = 2**31 - 1
#: Seconds the old process of a restarted service gets to stop before it is killed
#: (Nova services stop gracefully within ``graceful_shutdown_timeout``, 5 s here).
RESTART_GRACE_S = 10.0
RESTART_TIMEOUT_S = 60.0
POLL_S = 0.05


class ReleaseError(TestbedError):
    """A release could not be read, written or rolled out."""

    exit_code = 1


class BadRelease(ReleaseError):
    """An unknown service or a release that is not a version: nothing was changed."""

    exit_code = 2


@dataclass(frozen=True)
class Release:
    """The release in a service's configuration, and whether it is marked to fail."""

    version: str
    fail_start: bool = False


def version_int(version: str) -> int:
    """``convert_version_to_int(version)``, the ``hypervisor_version`` a compute of that
    release reports; :class:`BadRelease` when it is not a version Nova can store."""
    try:
        number = int(versionutils.convert_version_to_int(version))
    except ValueError as exc:
        raise BadRelease(
            f"release {version!r} is not a version (expected numbers and dots, e.g. 2.0.0)"
        ) from exc
    if not 0 <= number <= MAX_VERSION_INT:
        raise BadRelease(
            f"release {version!r} gives hypervisor_version {number}, outside what Nova's "
            f"database holds (0 to {MAX_VERSION_INT})"
        )
    return number


def resolve(version: str) -> str:
    """``version`` itself, or for :data:`INSTALLED` the version of the nova package the
    running interpreter has installed (:class:`ReleaseError` when it has none)."""
    if version != INSTALLED:
        return version
    try:
        return importlib.metadata.version("nova")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ReleaseError(
            f"release {INSTALLED!r} names the installed nova, but {sys.executable} has none"
        ) from exc


def check_version(version: str) -> None:
    """:class:`BadRelease` unless ``version`` is :data:`INSTALLED` or a version Nova can
    store (:func:`version_int`)."""
    if version != INSTALLED:
        version_int(version)


def service_name(service: str, host: str) -> str:
    """The supervised service that runs Nova service ``service`` on ``host``:
    ``compute-N`` for ``nova-compute`` on ``compute-N``; ``nova-api``,
    ``nova-conductor``, ``nova-scheduler`` or ``placement`` for those (``placement-api``)
    on ``controller``. :class:`BadRelease` for any other pair."""
    if service == "nova-compute":
        if host.startswith("compute-") and host.removeprefix("compute-").isdigit():
            return host
        raise BadRelease(f"nova-compute runs on a compute host (compute-N), not on {host!r}")
    if service in CONTROLLER_SERVICES:
        if host == CONTROLLER_HOST:
            return CONTROLLER_SERVICES[service]
        raise BadRelease(f"{service} runs on host {CONTROLLER_HOST!r}, not on {host!r}")
    known = ", ".join(["nova-compute", *CONTROLLER_SERVICES])
    raise BadRelease(f"unknown service {service!r}; known: {known}")


def config_file(root: Path, name: str) -> Path:
    return root / "etc" / f"{name}.conf"


def state_file(root: Path, name: str) -> Path:
    return root / "run" / f"{name}.json"


def services(root: Path) -> list[str]:
    """Names of the services with a release in the testbed at ``root``: the controllers,
    then ``compute-1``... in order."""
    computes = [p.stem for p in (root / "etc").glob("compute-*.conf")]
    numbered = sorted(computes, key=lambda name: int(name.split("-", 1)[1] or 0))
    return [*CONTROLLERS, *numbered]


def check_service(root: Path, name: str) -> Path:
    """The configuration file of ``name``; :class:`BadRelease` when ``root`` is not a Nova
    testbed or has no such service."""
    if not (root / "etc" / "nova.conf").is_file():
        raise BadRelease(f"{root} is not a Nova testbed root (no etc/nova.conf in it)")
    known = services(root)
    if name not in known:
        raise BadRelease(f"no service {name!r} in the testbed at {root}; known: {known}")
    return config_file(root, name)


# -- the [testbed_fake] group of an ini file ---------------------------------------------


def _section_bounds(lines: list[str]) -> tuple[int, int] | None:
    """(index of the ``[testbed_fake]`` header, index after its last line), if present."""
    start = None
    for index, line in enumerate(lines):
        header = line.strip()
        if header.startswith("[") and header.endswith("]"):
            if start is not None:
                return start, index
            if header[1:-1].strip() == GROUP:
                start = index
    return (start, len(lines)) if start is not None else None


def _option(line: str) -> tuple[str, str] | None:
    stripped = line.strip()
    if not stripped or stripped.startswith(("#", ";")) or "=" not in stripped:
        return None
    key, _eq, value = stripped.partition("=")
    return key.strip(), value.strip()


def read_release(conf: Path) -> Release:
    """The release in ``conf`` (:data:`DEFAULT_RELEASE` when it names none)."""
    try:
        lines = conf.read_text().splitlines()
    except OSError as exc:
        raise ReleaseError(f"cannot read {conf}: {exc.strerror}") from exc
    bounds = _section_bounds(lines)
    values: dict[str, str] = {}
    if bounds is not None:
        for line in lines[bounds[0] + 1 : bounds[1]]:
            option = _option(line)
            if option is not None:
                values[option[0]] = option[1]
    fail = values.get(FAIL_START, "false").lower() in ("true", "yes", "1", "on")
    return Release(values.get(RELEASE, DEFAULT_RELEASE), fail)


def write_release(conf: Path, release: Release) -> None:
    """Set ``release`` (and ``fail_start`` only when true) in the ``[testbed_fake]`` group
    of ``conf``, keeping every other line; the file is replaced atomically."""
    lines = conf.read_text().splitlines()
    bounds = _section_bounds(lines)
    if bounds is None:
        lines += ["", f"[{GROUP}]"]
        bounds = (len(lines) - 1, len(lines))
    start, end = bounds
    body = [
        line
        for line in lines[start + 1 : end]
        if (option := _option(line)) is None or option[0] not in (RELEASE, FAIL_START)
    ]
    while body and not body[-1].strip():
        body.pop()
    body.append(f"{RELEASE} = {release.version}")
    if release.fail_start:
        body.append(f"{FAIL_START} = true")
    trailer = [""] if end < len(lines) else []
    text = "\n".join([*lines[: start + 1], *body, *trailer, *lines[end:]]) + "\n"
    scratch = conf.with_name(f".{conf.name}.tmp")
    scratch.write_text(text)
    os.replace(scratch, conf)


# -- rolling out ---------------------------------------------------------------------------


def release(root: Path, name: str) -> Release:
    """The release configured for service ``name`` of the testbed at ``root``."""
    return read_release(check_service(root, name))


def set_release(
    root: Path,
    name: str,
    version: str,
    *,
    fail_start: bool = False,
    restart: bool = True,
    grace: float = RESTART_GRACE_S,
    timeout: float = RESTART_TIMEOUT_S,
) -> tuple[int, int] | None:
    """Write release ``version`` into the configuration of ``name`` and, if ``restart``,
    restart the service: its process gets SIGTERM (SIGKILL after ``grace`` seconds) and
    its supervisor starts a new one. Returns (old pid, new pid) once the old process is
    gone and the new one started, without waiting for it to be ready (or None when not
    restarting). ``fail_start`` marks the release to fail at start. Raises
    :class:`BadRelease` (nothing changed) for an unknown service or a version that is not
    one, :class:`ReleaseError` when the service is not running (the release is written
    and applies when it starts) or does not start again within ``timeout`` seconds.
    ``version`` may be :data:`INSTALLED`."""
    conf = check_service(root, name)
    check_version(version)
    write_release(conf, Release(version, fail_start))
    if not restart:
        return None
    return restart_service(root, name, since=time.time(), grace=grace, timeout=timeout)


def restart_service(
    root: Path,
    name: str,
    *,
    since: float | None = None,
    grace: float = RESTART_GRACE_S,
    timeout: float = RESTART_TIMEOUT_S,
) -> tuple[int, int]:
    """Stop the process of supervised service ``name`` until its supervisor runs one
    started at or after ``since`` (Unix time, default now), that is one that read the
    configuration as it was then. Returns (old pid, new pid)."""
    since = time.time() if since is None else since
    path = state_file(root, name)
    first = _running_state(path, name, root)
    deadline = time.monotonic() + timeout
    while True:
        state = _running_state(path, name, root)
        if state.started >= since:
            return first.child, state.child
        if state.child_alive:
            stop_process(state.child, name, grace)
        elif time.monotonic() > deadline:
            raise ReleaseError(
                f"{name} did not start again within {timeout:.0f} s; see its log in {root / 'logs'}"
            )
        else:
            time.sleep(POLL_S)


def _running_state(path: Path, name: str, root: Path) -> SupervisorState:
    state = read_state(path)
    if state is None or not state.supervisor_alive:
        raise ReleaseError(
            f"{name} is not running in the testbed at {root} (no live supervisor in {path}): "
            "its configured release applies when it is started"
        )
    return state


def stop_process(pid: int, name: str, grace: float) -> None:
    """SIGTERM ``pid``; SIGKILL it if still alive ``grace`` seconds later."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not process_alive(pid):
                return
            time.sleep(POLL_S)
    raise ReleaseError(f"process {pid} of {name} survived SIGKILL")
