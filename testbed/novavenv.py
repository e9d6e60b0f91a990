"""Real Nova and Placement releases for the Nova testbed: a venv of its own for each host.

A :class:`testbed.nova.NovaTestbed` started with ``release_venvs`` runs each host's
services from a venv that holds only that host's Nova (and, on the controller, Placement),
so that upgrading a host is what it is on a real one: ``pip install`` a new release into
its venv, restart its services. Three pieces:

- **the wheels** (:func:`fetch_wheels`): the pure-Python wheels of the releases the
  testbed plays (:data:`RELEASE_WHEELS`), downloaded once with the running interpreter's
  pip (``pip download --no-deps``, one requirement at a time) into :func:`wheels_dir`,
  ``$EPHYRA_TESTBED_CACHE/wheels``, else ``$XDG_CACHE_HOME/ephyra-testbed/wheels``, else
  ``~/.cache/ephyra-testbed/wheels``, and reused from there. An upgrade installs from
  that directory only: ``pip install --no-index --find-links WHEELS --no-deps
  nova==34.0.0`` (:func:`pip_install_argv`);
- **the shared dependencies** (:func:`shared_deps`): a directory of symlinks to every
  entry of the running interpreter's site-packages but Nova, Placement, pip, setuptools
  and Ephyra itself (:data:`NOT_SHARED`), rebuilt in a few milliseconds. The namespace
  packages' ``*-nspkg.pth`` files are kept (Paste, PasteDeploy and WSME need them);
- **a host venv** (:func:`make_venv`): ``python -m venv`` without pip, then one ``pip
  install --no-deps --no-index`` of pip and setuptools (the wheels the interpreter's
  ``ensurepip`` bundles: the venv has its own pip, as ``python -m venv`` gives) and the
  host's requirements from the wheel directory, and a ``deps.pth`` that adds the shared
  directory with ``site.addsitedir`` (so its ``.pth`` files run). That takes about 5 s of
  CPU, mostly compiling; so the venv is made once per set of wheels into the cache
  (``CACHE/venvs/KEY``) and every host venv is a copy of it (``cp -a``, half a second)
  whose absolute paths (the scripts' ``#!`` lines, ``activate``, ``pyvenv.cfg``) are
  rewritten to its own place.

The dependencies stay those of the running interpreter's environment, read-only: install
into a host venv with ``--no-deps`` (``pip check`` there finds nothing missing). A
package installed into the host venv comes before the shared one of the same name.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from testbed.ironic import TestbedError

#: Every release the Nova testbed plays: the wheels :func:`fetch_wheels` gets by default.
RELEASE_WHEELS = (
    "nova==33.0.2",
    "openstack-placement==15.0.0",
    "nova==34.0.0",
    "openstack-placement==16.0.0",
)
CACHE_ENV = "EPHYRA_TESTBED_CACHE"
#: Entries of the site-packages that a host venv does not share (``fnmatch`` patterns).
NOT_SHARED = (
    "nova",
    "nova-*.dist-info",
    "placement",
    "openstack_placement-*.dist-info",
    "pip",
    "pip-*",
    "setuptools*",
    "pkg_resources",
    "_distutils_hack",
    "__pycache__",
    "ephyra*",
    "__editable__*",
    "distutils-precedence.pth",
)
#: The file in a host venv's site-packages that adds the shared dependencies.
DEPS_PTH = "deps.pth"
#: The longest ``#!`` line Linux runs, and what pip writes instead of a longer one.
MAX_SHEBANG = 127
SH_SHEBANG = b"#!/bin/sh\n'''exec' \"%s\" \"$0\" \"$@\"\n' '''"
DOWNLOAD_TIMEOUT_S = 600.0
INSTALL_TIMEOUT_S = 300.0


class VenvError(TestbedError):
    """A wheel could not be fetched or a host venv could not be made."""


def cache_dir() -> Path:
    """Where the testbed keeps what it downloads (see the module docstring)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "ephyra-testbed"


def wheels_dir() -> Path:
    """The wheel directory: what ``--find-links`` names for an install into a host venv."""
    return cache_dir() / "wheels"


def normalize(name: str) -> str:
    """A distribution's name as a wheel file spells it (``openstack_placement``)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def pin(requirement: str) -> tuple[str, str]:
    """(name, version) of ``name==version``; :class:`ValueError` for anything else."""
    name, sep, version = requirement.partition("==")
    if not sep or not name.strip() or not version.strip() or any(c in version for c in "=<>,;"):
        raise ValueError(f"expected an exact pin such as nova==34.0.0, not {requirement!r}")
    return name.strip(), version.strip()


def wheel_for(requirement: str, directory: Path) -> Path | None:
    """The wheel of ``requirement`` (``name==version``) in ``directory``, if there."""
    name, version = pin(requirement)
    found = sorted(directory.glob(f"{normalize(name)}-{version}-*.whl"))
    return found[0] if found else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (other testbeds use the cache too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def fetch_wheels(
    requirements: Iterable[str] = RELEASE_WHEELS, directory: Path | None = None
) -> Path:
    """Make the wheel of every requirement (``name==version``) be in ``directory``
    (default :func:`wheels_dir`): those missing are downloaded with the running
    interpreter's pip, without dependencies. Returns the directory."""
    target = directory or wheels_dir()
    wanted = list(requirements)
    for requirement in wanted:
        pin(requirement)
    with _locked(target / ".lock"):
        for requirement in wanted:
            if wheel_for(requirement, target) is None:
                _download(requirement, target)
    return target


def _download(requirement: str, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=".download-", dir=target) as scratch:
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        argv += ["--disable-pip-version-check", "-d", scratch, requirement]
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=DOWNLOAD_TIMEOUT_S,
            check=False,
        )
        wheels = list(Path(scratch).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise VenvError(
                f"pip download {requirement} failed ({done.returncode}):\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        for wheel in wheels:  # into place only once complete
            os.replace(wheel, target / wheel.name)


def shared_deps(directory: Path, source: Path | None = None) -> Path:
    """(Re)build ``directory``: a symlink to every entry of ``source`` (default: the
    running interpreter's site-packages) that no pattern of :data:`NOT_SHARED` matches.
    Returns the directory."""
    source = source or Path(sysconfig.get_paths()["purelib"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for entry in os.scandir(source):
        if not any(fnmatch.fnmatch(entry.name, pattern) for pattern in NOT_SHARED):
            (directory / entry.name).symlink_to(entry.path)
    return directory


def site_packages(venv: Path) -> Path:
    """The site-packages of a venv made with the running interpreter."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return venv / "lib" / version / "site-packages"


def _bundled_wheels() -> list[Path]:
    """The pip (and, before Python 3.12, setuptools) wheels ``ensurepip`` installs."""
    import ensurepip

    return sorted((Path(ensurepip.__file__).parent / "_bundled").glob("*.whl"))


def make_venv(
    venv: Path,
    requirements: Sequence[str],
    *,
    deps: Path,
    wheels: Path | None = None,
    log: Path | None = None,
    cache: Path | None = None,
) -> Path:
    """Make the venv ``venv`` anew, sharing the dependencies in ``deps``
    (:func:`shared_deps`), with its own pip and ``requirements`` (exact pins) installed
    from the wheel directory ``wheels`` (default :func:`wheels_dir`) without their
    dependencies: a copy of the cached venv of those wheels (``cache``, default
    :func:`cache_dir` ``/venvs``), made first if missing. The commands' output goes to
    ``log`` when given. Returns ``venv``."""
    wheels = wheels or wheels_dir()
    started = time.monotonic()
    template = cached_venv(requirements, wheels=wheels, cache=cache, log=log)
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    _run(["cp", "-a", str(template), str(venv)], log)
    _relocate(venv, template)
    (site_packages(venv) / DEPS_PTH).write_text(f"import site; site.addsitedir({str(deps)!r})\n")
    if log is not None:
        with log.open("a") as out:
            out.write(f"venv {venv} made in {time.monotonic() - started:.1f} s\n")
    return venv


def _venv_key(requirements: Sequence[str], wheels: Path) -> str:
    """What a cached venv is made of: the interpreter, its bundled pip and the wheels."""
    parts = [sys.version, os.path.realpath(getattr(sys, "_base_executable", sys.executable))]
    parts += [wheel.name for wheel in _bundled_wheels()]
    for requirement in sorted(requirements):
        wheel = wheel_for(requirement, wheels)
        if wheel is None:
            raise VenvError(f"no wheel for {requirement} in {wheels} (see fetch_wheels)")
        parts.append(f"{wheel.name}:{wheel.stat().st_size}")
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    names = "+".join(f"{normalize(pin(r)[0])}-{pin(r)[1]}" for r in sorted(requirements))
    return f"{names}-{digest}"


def cached_venv(
    requirements: Sequence[str],
    *,
    wheels: Path | None = None,
    cache: Path | None = None,
    log: Path | None = None,
) -> Path:
    """The cached venv with ``requirements`` (made if missing; without ``deps.pth``):
    what :func:`make_venv` copies. Not to be run or changed in place."""
    wheels = wheels or wheels_dir()
    cache = cache or cache_dir() / "venvs"
    template = cache / _venv_key(requirements, wheels)
    with _locked(cache / f"{template.name}.lock"):
        if not (template / "pyvenv.cfg").is_file():
            scratch = cache / f".{template.name}.new"
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(template, ignore_errors=True)
            _build_venv(scratch, requirements, wheels, log)
            os.replace(scratch, template)
            _relocate(template, scratch)
    return template


def _build_venv(venv: Path, requirements: Sequence[str], wheels: Path, log: Path | None) -> None:
    bundled = _bundled_wheels()
    venv_argv = [sys.executable, "-m", "venv", *(["--without-pip"] if bundled else []), str(venv)]
    _run(venv_argv, log)
    python = venv / "bin" / "python"
    if bundled:  # pip runs the install in the venv's interpreter
        install = [sys.executable, "-m", "pip", "--python", str(python)]
    else:  # the venv has the pip of ensurepip already
        install = [str(python), "-m", "pip"]
    install += ["install", "--disable-pip-version-check", "--no-deps", "--no-index"]
    install += ["--find-links", str(wheels), *map(str, bundled), *requirements]
    _run(install, log)


def _relocate(venv: Path, old: Path) -> None:
    """Rewrite the absolute paths of a venv copied from ``old``: its scripts' ``#!``
    lines, the ``activate`` scripts and ``pyvenv.cfg``. (The byte code's file names are
    fixed by the import system; the interpreter symlinks point at the base one.)"""
    before, after = str(old).encode(), str(venv).encode()
    files = [venv / "pyvenv.cfg"]
    files += [path for path in (venv / "bin").iterdir() if not path.is_symlink()]
    for path in files:
        data = path.read_bytes()
        if before not in data:
            continue
        first, newline, rest = data.replace(before, after).partition(b"\n")
        if first.startswith(b"#!") and len(first) > MAX_SHEBANG:
            # too long for the kernel: through sh, as pip writes such a script
            first = SH_SHEBANG % first[2:].strip()
        path.write_bytes(first + newline + rest)


def _run(argv: list[str], log: Path | None) -> None:
    # the machine's pip configuration applies; the running interpreter's variables do not
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if log is not None:
        with log.open("a") as out:
            out.write(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}(exit {done.returncode})\n")
    if done.returncode != 0:
        raise VenvError(
            f"{' '.join(argv[:4])}... exited with {done.returncode}:\n{done.stderr[-3000:]}"
        )


def installed_version(venv: Path, distribution: str) -> str | None:
    """The version of ``distribution`` installed in the venv itself (not a shared one);
    None when it has none."""
    wanted = normalize(distribution)
    for dist in importlib.metadata.distributions(path=[str(site_packages(venv))]):
        if normalize(dist.metadata["Name"]) == wanted:
            return str(dist.version)
    return None


def pip_install_argv(venv: Path, *requirements: str, wheels: Path | None = None) -> list[str]:
    """The command that installs ``requirements`` into the host venv ``venv`` from the
    wheel directory, as an upgrade does: ``VENV/bin/pip install --no-index --find-links
    WHEELS --no-deps REQUIREMENT...``."""
    wheels = wheels or wheels_dir()
    return [
        str(venv / "bin" / "pip"),
        "install",
        "--no-index",
        "--find-links",
        str(wheels),
        "--no-deps",
        *requirements,
    ]
