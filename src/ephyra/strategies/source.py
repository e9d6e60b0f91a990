"""The ``source`` strategy: a release pip-installed into a virtualenv, the way services
deployed from source (DevStack, kolla source images, OpenStack-Ansible's venvs) are
upgraded: a git tag checked out and installed, or a requirement installed from an index or
a directory of wheels (OpenStack-Ansible's repository server).

Options::

    repo          the git repository to fetch tags from: URL or path (required unless
                  requirement is given)
    checkout      the working tree on the host; cloned from repo when missing (required
                  with repo)
    venv          the virtualenv to install into (required)
    requirement   instead of repo and checkout: a template of the pip requirement to
                  install, e.g. "nova=={version}" (needs version_from: distribution)
    tag           a template of the tag to check out (default "{version}")
    version_from  "git" (default): the version is the tag the checkout is exactly at
                  (``git describe --tags --exact-match``), '' when at none;
                  "distribution": the version of the installed distribution, read with
                  importlib.metadata by the venv's python (what is installed, whatever the
                  checkout says)
    distribution  the distribution's name, e.g. nova (required with version_from:
                  distribution)
    pip_options   more arguments of ``pip install``, e.g. [--no-build-isolation]
    env, via, timeout   as every strategy that runs commands (docs/strategies.md)

An upgrade fetches the tags (``git fetch --force --tags REPO``), checks out the tag
(detached; a checkout with local changes is refused by git, not overwritten), then runs
``VENV/bin/pip install CHECKOUT``. A downgrade does the same with the previous tag: the
version recorded before (with version_from: git it is the tag itself; with
distribution, the ``tag`` template of that version).

With ``requirement``, an upgrade runs ``VENV/bin/pip install PIP_OPTIONS REQUIREMENT``
(e.g. with ``pip_options: [--no-index, --find-links, /srv/wheels]``) and a downgrade the
same with the version recorded before; the distribution must then be at that version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ephyra.errors import StrategyFailed, UsageError
from ephyra.strategies.base import (
    Change,
    Invocation,
    Output,
    Strategy,
    Target,
    on_host,
    probe,
    render,
    stream,
)
from ephyra.strategies.options import COMMON, Options, rendered

GIT = "git"
DISTRIBUTION = "distribution"

# Clone the repository when the checkout is missing, else fetch its tags; $1 checkout, $2 repo.
FETCH = (
    'if [ -e "$1/.git" ]; then git -C "$1" fetch --force --tags "$2"; '
    'else git clone --no-checkout "$2" "$1"; fi'
)
# The tag the checkout is exactly at, nothing when it is at none or missing; $1 checkout.
DESCRIBE = '[ -e "$1/.git" ] || exit 0; git -C "$1" describe --tags --exact-match 2>/dev/null || :'
# The installed distribution's version, nothing when it is not installed; $1 python, $2 name.
METADATA = (
    "import importlib.metadata as m, sys\n"
    "try:\n    print(m.version(sys.argv[1]))\n"
    "except m.PackageNotFoundError:\n    pass\n"
)
DIST_VERSION = '[ -x "$1" ] || exit 0; exec "$1" -c "$3" "$2"'


class SourceStrategy(Strategy):
    name = "source"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        opts = Options(
            self.name,
            options,
            (
                "repo",
                "checkout",
                "venv",
                "requirement",
                "tag",
                "version_from",
                "distribution",
                "pip_options",
                *COMMON,
            ),
        )
        self.requirement = opts.template("requirement")
        if self.requirement:
            if "repo" in options or "checkout" in options or "tag" in options:
                raise UsageError(
                    "requirement: installs from an index or wheels; repo, checkout and tag "
                    "are for a git checkout, not both"
                )
            self.repo = self.checkout = ""
        else:
            self.repo = str(opts.template("repo", required="the git repository: a URL or a path"))
            self.checkout = str(
                opts.template("checkout", required="the directory of the git working tree")
            )
        self.venv = str(opts.template("venv", required="the virtualenv to install into"))
        self.tag = str(opts.template("tag", "{version}"))
        default_from = DISTRIBUTION if self.requirement else GIT
        self.version_from = opts.choice("version_from", (GIT, DISTRIBUTION), default_from)
        if self.requirement and self.version_from != DISTRIBUTION:
            raise UsageError("version_from: a requirement's version is its distribution's")
        self.distribution = opts.text("distribution")
        if self.version_from == DISTRIBUTION and not self.distribution:
            raise UsageError(
                "distribution: required with version_from: distribution "
                "(the name pip knows it by, e.g. nova)"
            )
        self.pip_options = opts.texts("pip_options", "arguments of pip install")
        self.env = opts.environment()
        self.timeout = opts.seconds()
        opts.via()

    def _argv(self, target: Target, *argv: str) -> Invocation:
        return on_host(argv, self.options, target, rendered(self.env, target))

    def version(self, target: Target) -> str:
        checkout = render(self.checkout, target)
        if self.version_from == GIT:
            argv = self._argv(target, "sh", "-c", DESCRIBE, "sh", checkout)
            return probe(argv, what=f"git describe in {checkout}", timeout=self.timeout)
        python = f"{render(self.venv, target)}/bin/python"
        argv = self._argv(
            target, "sh", "-c", DIST_VERSION, "sh", python, str(self.distribution), METADATA
        )
        return probe(argv, what=f"version of {self.distribution} in {python}", timeout=self.timeout)

    def _install(self, target: Target, tag: str, output: Output) -> None:
        if self.requirement:
            self._pip_requirement(target, output)
            return
        checkout = render(self.checkout, target)
        repo = render(self.repo, target)
        pip = f"{render(self.venv, target)}/bin/pip"
        where = f"on {target.host}"
        steps = [
            (["sh", "-c", FETCH, "sh", checkout, repo], f"fetching the tags of {repo} {where}"),
            (
                [
                    "git",
                    "-C",
                    checkout,
                    "-c",
                    "advice.detachedHead=false",
                    "checkout",
                    "--detach",
                    f"refs/tags/{tag}",
                ],
                f"git checkout of tag {tag} in {checkout} {where}",
            ),
            (
                [pip, "install", "--disable-pip-version-check", *self.pip_options, checkout],
                f"pip install of {checkout} into {render(self.venv, target)} {where}",
            ),
        ]
        for argv, what in steps:
            stream(self._argv(target, *argv), output, what=what, timeout=self.timeout)

    def _pip_requirement(self, target: Target, output: Output) -> None:
        assert self.requirement
        requirement = render(self.requirement, target)
        if requirement.startswith("-"):
            raise StrategyFailed(f"{target.host}: requirement {requirement!r} is an option")
        venv = render(self.venv, target)
        argv = [f"{venv}/bin/pip", "install", "--disable-pip-version-check", *self.pip_options]
        stream(
            self._argv(target, *argv, requirement),
            output,
            what=f"pip install {requirement} into {venv} on {target.host}",
            timeout=self.timeout,
        )

    def _go(self, target: Target, tag: str, want: str | None, output: Output) -> Change:
        """Install ``tag``; the version after must be ``want`` (None: any version)."""
        before = self.version(target)
        self._install(target, tag, output)
        after = self.version(target)
        if not after or (want is not None and after != want):
            source = "the checkout" if self.version_from == GIT else str(self.distribution)
            what = f"tag {tag}" if not self.requirement else render(self.requirement, target)
            raise StrategyFailed(
                f"{target.host}: after installing {what}, {source} is at "
                f"{after or 'no version'}" + (f", not {want}" if want else "")
            )
        return Change(before, after)

    def upgrade(self, target: Target, output: Output) -> Change:
        tag = render(self.tag, target)
        # The distribution's version need not be the release's name: any version will do.
        return self._go(target, tag, tag if self.version_from == GIT else None, output)

    def can_downgrade(self) -> bool:
        return True

    def downgrade(self, target: Target, output: Output) -> Change:
        tag = target.version if self.version_from == GIT else render(self.tag, target)
        return self._go(target, tag, target.version, output)
