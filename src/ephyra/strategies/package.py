"""The ``package`` strategy: Debian packages upgraded with apt-get, their version read
with dpkg-query, and downgraded to the version they had.

Options::

    packages         the packages to upgrade (required; templates, e.g. "{service}"); they
                     are expected to share a version (one source package, as nova-common and
                     nova-compute), the version of the first is the one reported
    package_version  a template of the version to install, e.g. "{version}-1"; without it
                     the packages go to the newest version apt knows
    update           run apt-get update first (default: false, true with sources_list)
    sources_list     a sources list file: the update reads only that one
    apt_options      more arguments of every apt-get command, e.g. [-o, "Acquire::Retries=3"]
    lock_timeout     seconds to wait for the dpkg lock (default 300)
    env, via, timeout   as every strategy that runs commands (docs/strategies.md)

The upgrade is ``apt-get install --only-upgrade -y PKG...`` (``PKG=VERSION`` with
``package_version``): a package that is not installed is refused, not installed. The
downgrade is ``apt-get install --allow-downgrades -y PKG=PREVIOUS...``: the repository must
still offer the previous version. Configuration files an operator changed are kept
(``--force-confdef --force-confold``). Everything runs with DEBIAN_FRONTEND=noninteractive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ephyra.errors import StrategyFailed, UsageError
from ephyra.strategies.base import (
    CHECK_TIMEOUT,
    Change,
    Invocation,
    Output,
    Strategy,
    Target,
    on_host,
    render,
    stream,
)
from ephyra.strategies.options import COMMON, SAMPLE, Options, check_template, rendered

# A Debian package name, with an optional architecture qualifier.
NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$")
# dpkg-query line per package: name, status word ("installed" when it is), version.
QUERY_FORMAT = "${Package}\\t${db:Status-Status}\\t${Version}\\n"
KEEP_CONFIG = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")
DEFAULT_LOCK_TIMEOUT = 300.0


class PackageStrategy(Strategy):
    name = "package"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        opts = Options(
            self.name,
            options,
            (
                "packages",
                "package_version",
                "update",
                "sources_list",
                "apt_options",
                "lock_timeout",
                *COMMON,
            ),
        )
        self.packages = opts.texts("packages", "names of Debian packages", required=True)
        for index, package in enumerate(self.packages):
            _check_name(f"packages[{index}]", package)
        self.package_version = opts.template("package_version")
        self.sources_list = opts.text("sources_list")
        self.update = opts.flag("update", bool(self.sources_list))
        if self.sources_list and not self.update:
            raise UsageError("sources_list: names the list apt-get update reads; set update: true")
        self.apt_options = opts.texts("apt_options", "arguments of apt-get")
        self.lock_timeout = opts.seconds("lock_timeout") or DEFAULT_LOCK_TIMEOUT
        self.env = opts.environment()
        self.timeout = opts.seconds()
        opts.via()

    # -- what runs ---------------------------------------------------------------------

    def _names(self, target: Target) -> list[str]:
        names = [render(package, target) for package in self.packages]
        for package, name in zip(self.packages, names, strict=True):
            if not NAME.match(name):
                raise StrategyFailed(
                    f"package {name!r} (from {package!r} for {target.host}) "
                    "is not a Debian package name"
                )
        return names

    def _apt(self, target: Target, *args: str) -> Invocation:
        env = {"DEBIAN_FRONTEND": "noninteractive", **rendered(self.env, target)}
        argv = [
            "apt-get",
            "-q",
            "-o",
            f"DPkg::Lock::Timeout={int(self.lock_timeout)}",
            *KEEP_CONFIG,
            *self.apt_options,
            *args,
        ]
        return on_host(argv, self.options, target, env)

    def _run(self, argv: Sequence[str] | Invocation, output: Output, what: str) -> None:
        stream(argv, output, what=what, timeout=self.timeout)

    def _refresh(self, target: Target, output: Output) -> None:
        if not self.update:
            return
        args = ["update"]
        if self.sources_list:
            args = [
                "-o",
                f"Dir::Etc::sourcelist={self.sources_list}",
                "-o",
                "Dir::Etc::sourceparts=-",
                "-o",
                "APT::Get::List-Cleanup=0",
                "update",
            ]
        self._run(self._apt(target, *args), output, f"apt-get update on {target.host}")

    def installed(self, target: Target) -> dict[str, str]:
        """Version of each of the target's packages that is installed ('' for one that is
        not)."""
        names = self._names(target)
        argv = on_host(["dpkg-query", "-W", f"-f={QUERY_FORMAT}", *names], self.options, target)
        out = stream(
            argv,
            lambda line: None,
            what=f"dpkg-query on {target.host}",
            ok=(0, 1),  # 1: some package unknown to dpkg
            timeout=self.timeout or CHECK_TIMEOUT,
        )
        found: dict[str, str] = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1] == "installed":
                found[parts[0]] = parts[2]
        return {name: found.get(name.split(":")[0], "") for name in names}

    def version(self, target: Target) -> str:
        return self.installed(target)[self._names(target)[0]]

    # -- upgrade and downgrade ---------------------------------------------------------

    def upgrade(self, target: Target, output: Output) -> Change:
        names = self._names(target)
        before = self.installed(target)
        missing = [name for name in names if not before[name]]
        if missing:
            raise StrategyFailed(
                f"{target.host}: {', '.join(missing)} not installed "
                "(the package strategy upgrades installed packages only)"
            )
        self._refresh(target, output)
        wanted = render(self.package_version, target) if self.package_version else ""
        specs = [f"{name}={wanted}" for name in names] if wanted else names
        self._run(
            self._apt(target, "install", "--only-upgrade", "-y", *specs),
            output,
            f"apt-get install --only-upgrade {' '.join(specs)} on {target.host}",
        )
        after = self._check(target, wanted, "upgrade")
        return Change(before[names[0]], after)

    def can_downgrade(self) -> bool:
        return True

    def downgrade(self, target: Target, output: Output) -> Change:
        names = self._names(target)
        before = self.version(target)
        self._refresh(target, output)
        specs = [f"{name}={target.version}" for name in names]
        self._run(
            self._apt(target, "install", "--allow-downgrades", "-y", *specs),
            output,
            f"apt-get install --allow-downgrades {' '.join(specs)} on {target.host}",
        )
        after = self._check(target, target.version, "downgrade")
        return Change(before, after)

    def _check(self, target: Target, wanted: str, what: str) -> str:
        """The version after ``what``; every package installed, at ``wanted`` if given."""
        now = self.installed(target)
        wrong = {name: v for name, v in now.items() if not v or (wanted and v != wanted)}
        if wrong:
            found = ", ".join(f"{name} {v or 'not installed'}" for name, v in wrong.items())
            raise StrategyFailed(
                f"{target.host}: after the {what}, {found}"
                + (f" (wanted {wanted})" if wanted else "")
            )
        return now[self._names(target)[0]]


def _check_name(key: str, package: str) -> None:
    """Refuse a package name (or a template of one) that cannot name a package."""
    check_template(key, package)
    if not NAME.match(render(package, SAMPLE)):
        raise UsageError(f"{key}: {package!r} is not a Debian package name")
