"""A local apt repository of tiny packages, for tests of what installs Debian packages.

Packages are built with ``dpkg-deb --build`` (each installs one file,
``/usr/share/NAME/VERSION``, whose content is the version), indexed with
``dpkg-scanpackages --multiversion`` (every version stays installable, for downgrades),
and published by a ``deb [trusted=yes] file:ROOT ./`` list in ``/etc/apt/sources.list.d``.
``apt-get update`` is only ever run on that one list (:meth:`AptRepo.update_options`),
so nothing reaches the network. :meth:`AptRepo.close` purges the packages, removes the
list and the indexes apt copied of it; lists left behind by a run that was killed, whose
repository is gone, are removed by the next :meth:`AptRepo.publish`.

Needs root and Debian's ``dpkg-dev`` (installed here when missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

SOURCES_DIR = Path("/etc/apt/sources.list.d")
LISTS_DIR = Path("/var/lib/apt/lists")
LIST_PREFIX = "ephyra-aptrepo-"
ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
LOCK = ("-o", "DPkg::Lock::Timeout=300")
APT_QUOTED = set('\\|{}[]<>"^~_=!@#$%&*')  # what apt quotes in the names of its lists


class AptRepoError(RuntimeError):
    """A tool that builds or publishes the repository failed; the message has its output."""


def _run(argv: Sequence[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(list(argv), cwd=cwd, env=ENV, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AptRepoError(
            f"{' '.join(argv)} exited with {proc.returncode}: {proc.stderr or proc.stdout}"
        )
    return proc.stdout


def ensure_tools() -> None:
    """Install ``dpkg-dev`` (dpkg-scanpackages) when it is missing."""
    if shutil.which("dpkg-scanpackages"):
        return
    install = ["apt-get", "-q", *LOCK, "install", "-y", "--no-install-recommends", "dpkg-dev"]
    try:
        _run(install)
    except AptRepoError:
        _run(["apt-get", "-q", *LOCK, "update"])
        _run(install)


def _list_file_name(root: Path) -> str:
    """The name apt gives the index it copies of a flat ``file:`` repository, less its
    suffix (apt's URItoFileName: some characters %-quoted, then '/' turned into '_')."""
    quoted = "".join(
        f"%{ord(c):02x}" if c in APT_QUOTED or not c.isprintable() or c == " " else c
        for c in str(root)
    )
    return quoted.replace("/", "_") + "_._"


class AptRepo:
    """A flat repository in ``root`` (default: a directory of its own in the temporary
    directory, removed by :meth:`close`): add packages, index, publish, update, close."""

    def __init__(self, root: Path | None = None, name: str | None = None) -> None:
        self.name = name or f"{LIST_PREFIX}{uuid.uuid4().hex[:8]}"
        self.owned = root is None
        # apt reads the repository as its unprivileged _apt user: every directory on the
        # way must be readable by all (a pytest tmp_path is not).
        self.root = (root or Path(tempfile.gettempdir()) / self.name).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        if self.owned:
            self.root.chmod(0o755)
        self.list_file = SOURCES_DIR / f"{self.name}.list"
        self.packages: set[str] = set()

    def __enter__(self) -> AptRepo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def add(self, package: str, version: str, description: str = "a tiny test package") -> Path:
        """Build ``package`` at ``version`` into the repository; the .deb's path."""
        ensure_tools()
        tree = self.root / "build" / f"{package}_{version}"
        share = tree / "usr" / "share" / package
        share.mkdir(parents=True, exist_ok=True)
        (share / "VERSION").write_text(version + "\n")
        control = tree / "DEBIAN"
        control.mkdir(exist_ok=True)
        (control / "control").write_text(
            f"Package: {package}\n"
            f"Version: {version}\n"
            "Architecture: all\n"
            "Maintainer: Ephyra testbed <testbed@localhost>\n"
            "Section: misc\n"
            "Priority: optional\n"
            f"Description: {description}\n"
        )
        deb = self.root / f"{package}_{version}_all.deb"
        _run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)])
        self.packages.add(package)
        return deb

    def index(self) -> None:
        """Write ``Packages`` listing every version of every package."""
        packages = _run(["dpkg-scanpackages", "--multiversion", "."], cwd=self.root)
        (self.root / "Packages").write_text(packages)

    def publish(self) -> Path:
        """Index and write the list file in ``/etc/apt/sources.list.d``; its path."""
        self.index()
        forget_stale()
        self.list_file.write_text(f"deb [trusted=yes] file:{self.root} ./\n")
        return self.list_file

    def update_options(self) -> list[str]:
        """apt-get options that restrict ``update`` to this repository's list."""
        return [
            "-o",
            f"Dir::Etc::sourcelist={self.list_file}",
            "-o",
            "Dir::Etc::sourceparts=-",
            "-o",
            "APT::Get::List-Cleanup=0",
        ]

    def update(self) -> None:
        """``apt-get update`` of this repository only."""
        _run(["apt-get", "-q", *LOCK, *self.update_options(), "update"])

    def install(self, package: str, version: str) -> None:
        """Install ``package`` at ``version`` (downgrades allowed)."""
        argv = ["apt-get", "-q", *LOCK, "install", "-y", "--allow-downgrades"]
        _run([*argv, f"{package}={version}"])

    def installed(self, package: str) -> str:
        """The installed version of ``package``, '' when it is not installed."""
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        status, _, version = proc.stdout.partition(" ")
        return version if proc.returncode == 0 and status == "installed" else ""

    def close(self) -> None:
        """Purge the packages, remove the list and apt's copies of its indexes."""
        installed = [p for p in sorted(self.packages) if self.installed(p)]
        if installed:
            _run(["apt-get", "-q", *LOCK, "purge", "-y", *installed])
        self.list_file.unlink(missing_ok=True)
        for copy in LISTS_DIR.glob(_list_file_name(self.root) + "*"):
            copy.unlink(missing_ok=True)
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)


def forget_stale() -> None:
    """Remove lists of repositories of this module whose directory is gone (a run that was
    killed): apt-get update would fail on them."""
    for listed in SOURCES_DIR.glob(f"{LIST_PREFIX}*.list"):
        words = listed.read_text().split()
        roots = [w.removeprefix("file:") for w in words if w.startswith("file:")]
        if roots and not Path(roots[0]).is_dir():
            listed.unlink(missing_ok=True)
            for copy in LISTS_DIR.glob(_list_file_name(Path(roots[0])) + "*"):
                copy.unlink(missing_ok=True)
