"""The ``grenade`` strategy: the per-project scripts of OpenStack's grenade, driven the way
``grenade.sh`` drives them, on the machine Ephyra runs on.

Grenade's contract (openstack/grenade: ``grenade.sh``, ``inc/plugin``, ``inc/upgrade``):
a project is a directory ``projects/NN_name/`` (or an external plugin's
``devstack/upgrade/``) whose ``settings`` file registers it with
``register_project_for_upgrade NAME``; the settings are sourced in directory order, which
is the upgrade order. The scripts are ``shutdown.sh`` (run with
``TOP_DIR=$BASE_DEVSTACK_DIR``, projects in reverse order), ``upgrade.sh`` (run with
``TOP_DIR=$TARGET_DEVSTACK_DIR``, in order) and ``resources.sh PHASE [SIDE]`` (with
``TOP_DIR=$BASE_DEVSTACK_DIR``; phases ``early_create``, ``create``, ``verify``,
``verify_noapi``, ``destroy``; sides ``pre-upgrade``, ``post-upgrade``). Their environment
has ``GRENADE_DIR``, ``BASE_RELEASE``, ``TARGET_RELEASE``, ``STACK_ROOT``,
``BASE_RELEASE_DIR``, ``TARGET_RELEASE_DIR``, ``BASE_DEVSTACK_DIR``,
``TARGET_DEVSTACK_DIR``, ``SAVE_DIR``, ``DATA_DIR``, ``UPGRADE_PROJECTS``,
``VERIFY_RESOURCES`` and ``TOP_DIR``, as grenade exports or sets them.

An upgrade runs, as grenade.sh does after its base install:

1. ``resources.sh early_create`` then ``create``, each project   (resources: full)
2. ``resources.sh verify pre-upgrade``, each project              (resources: verify, full)
3. ``shutdown.sh``, projects in reverse order
4. ``resources.sh verify_noapi pre-upgrade``, each project        (resources: verify, full)
5. ``upgrade.sh``, each project in order
6. ``resources.sh verify post-upgrade``, each project             (resources: verify, full)
7. ``resources.sh destroy``, projects in reverse order            (resources: full)

A script missing is skipped, as grenade does, except ``upgrade.sh``. The first script to
fail stops the upgrade (grenade's ``die``). Grenade has no downgrade, nor has this
strategy.

Options::

    projects           the directory of the projects (required; GRENADE_DIR/projects)
    grenade_dir        GRENADE_DIR (default: the directory above ``projects``)
    plugins            directories of external grenade plugins (their devstack/upgrade/)
    only               the projects to upgrade, by name (default: every one registered)
    resources          "verify" (default), "full" or "none": which resources.sh phases run
    enabled_services   ENABLED_SERVICES, for settings that ask is_service_enabled
                       (default: every service is enabled)
    base_release       BASE_RELEASE (default: the version before, else "old")
    stack_root         STACK_ROOT (default /opt/stack)
    base_devstack_dir  BASE_DEVSTACK_DIR (default $STACK_ROOT/$BASE_RELEASE/devstack)
    target_devstack_dir  TARGET_DEVSTACK_DIR (default $STACK_ROOT/$TARGET_RELEASE/devstack)
    version            a shell command whose last output line is the version the host
                       runs; without it the version before is unknown ('')
    env, timeout       more environment variables (templates); seconds per script
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ephyra.errors import NoDowngrade, StrategyFailed
from ephyra.strategies import shell
from ephyra.strategies.base import Change, Output, Strategy, Target, render, stream
from ephyra.strategies.options import ENV, TIMEOUT, Options, check_template, rendered

VERIFY = "verify"
FULL = "full"
NONE = "none"
MARK = "ephyra-grenade-project"
# Sources each settings file given as an argument, as grenade's load_settings does, with
# grenade's registration functions; prints one MARK line per registered project.
LOAD_SETTINGS = f"""
declare -A PLUGIN_DIR
UPGRADE_PROJECTS=""
register_project_for_upgrade() {{
    UPGRADE_PROJECTS+=" $1"
    PLUGIN_DIR[$1]=$(cd "$(dirname "${{BASH_SOURCE[1]}}")" && pwd)
}}
register_db_to_save() {{ :; }}
devstack_localrc() {{ :; }}
enable_grenade_plugin() {{ :; }}
is_service_enabled() {{
    [ -n "${{EPHYRA_ALL_ENABLED:-}}" ] && return 0
    local service
    for service in "$@"; do
        [[ ",$ENABLED_SERVICES," == *",$service,"* ]] && return 0
    done
    return 1
}}
for settings in "$@"; do
    source "$settings"
done
for project in $UPGRADE_PROJECTS; do
    printf '{MARK}\\t%s\\t%s\\n' "$project" "${{PLUGIN_DIR[$project]}}"
done
"""


@dataclass(frozen=True)
class Project:
    name: str
    directory: Path

    def script(self, name: str) -> Path | None:
        path = self.directory / name
        return path if path.is_file() else None


class GrenadeStrategy(Strategy):
    name = "grenade"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        opts = Options(
            self.name,
            options,
            (
                "projects",
                "grenade_dir",
                "plugins",
                "only",
                "resources",
                "enabled_services",
                "base_release",
                "stack_root",
                "base_devstack_dir",
                "target_devstack_dir",
                "version",
                ENV,
                TIMEOUT,
            ),
        )
        self.projects = str(opts.template("projects", required="the directory of grenade projects"))
        self.grenade_dir = opts.template("grenade_dir")
        self.plugins = opts.texts("plugins", "directories of grenade plugins")
        self.only = opts.texts("only", "names of projects")
        for key, items in (("plugins", self.plugins), ("only", self.only)):
            for index, item in enumerate(items):
                check_template(f"{key}[{index}]", item)
        self.resources = opts.choice("resources", (VERIFY, FULL, NONE), VERIFY)
        enabled = opts.data.get("enabled_services")
        self.enabled_services = (
            None if enabled is None else opts.texts("enabled_services", "service names")
        )
        self.base_release = opts.template("base_release")
        self.stack_root = str(opts.template("stack_root", "/opt/stack"))
        self.base_devstack_dir = opts.template("base_devstack_dir")
        self.target_devstack_dir = opts.template("target_devstack_dir")
        self.version_command = opts.template("version")
        self.env = opts.environment()
        self.timeout = opts.seconds()

    # -- where things are ---------------------------------------------------------------

    def _projects_dir(self, target: Target) -> Path:
        return Path(render(self.projects, target)).expanduser().resolve()

    def _grenade_dir(self, target: Target) -> Path:
        if self.grenade_dir:
            return Path(render(self.grenade_dir, target)).expanduser().resolve()
        return self._projects_dir(target).parent

    def environment(self, target: Target, before: str) -> dict[str, str]:
        """What grenade exports or sets for its project scripts, and what Ephyra adds."""
        base = render(self.base_release, target) if self.base_release else (before or "old")
        stack = render(self.stack_root, target)
        base_dir = f"{stack}/{base}"
        target_dir = f"{stack}/{target.version}"
        env = {
            "GRENADE_DIR": str(self._grenade_dir(target)),
            "BASE_RELEASE": base,
            "TARGET_RELEASE": target.version,
            "STACK_ROOT": stack,
            "DATA_DIR": f"{stack}/data",
            "SAVE_DIR": f"{stack}/save",
            "BASE_RELEASE_DIR": base_dir,
            "TARGET_RELEASE_DIR": target_dir,
            "BASE_DEVSTACK_DIR": (
                render(self.base_devstack_dir, target)
                if self.base_devstack_dir
                else f"{base_dir}/devstack"
            ),
            "TARGET_DEVSTACK_DIR": (
                render(self.target_devstack_dir, target)
                if self.target_devstack_dir
                else f"{target_dir}/devstack"
            ),
            "VERIFY_RESOURCES": "False" if self.resources == NONE else "True",
            **shell.target_env(target),
        }
        return {**env, **rendered(self.env, target)}

    def discover(self, target: Target, env: Mapping[str, str], output: Output) -> list[Project]:
        """The projects the settings files register, in order (``only`` kept)."""
        root = self._projects_dir(target)
        if not root.is_dir():
            raise StrategyFailed(f"grenade: no projects directory {root}")
        settings = [d / "settings" for d in sorted(root.iterdir()) if (d / "settings").is_file()]
        for plugin in self.plugins:
            path = Path(render(plugin, target)).expanduser() / "devstack" / "upgrade" / "settings"
            if not path.is_file():
                raise StrategyFailed(f"grenade: plugin has no settings file {path}")
            settings.append(path.resolve())
        probe_env = dict(env)
        if self.enabled_services is None:
            probe_env["EPHYRA_ALL_ENABLED"] = "1"
        else:
            probe_env["ENABLED_SERVICES"] = ",".join(self.enabled_services)
        found: list[Project] = []

        def read(line: str) -> None:
            parts = line.split("\t")
            if len(parts) == 3 and parts[0] == MARK:
                found.append(Project(parts[1], Path(parts[2])))
            else:
                output(line)

        stream(
            ["bash", "-c", LOAD_SETTINGS, "load_settings", *map(str, settings)],
            read,
            env=probe_env,
            cwd=root,
            what=f"grenade: loading the settings of {root}",
            timeout=self.timeout,
        )
        if not found:
            raise StrategyFailed(f"grenade: no settings file under {root} registers a project")
        if not self.only:
            return found
        wanted = [render(name, target) for name in self.only]
        names = [p.name for p in found]
        unknown = [name for name in wanted if name not in names]
        if unknown:
            raise StrategyFailed(
                f"grenade: no project {', '.join(unknown)} registered under {root} "
                f"(registered: {', '.join(names)})"
            )
        return [p for p in found if p.name in wanted]

    # -- running ------------------------------------------------------------------------

    def _script(
        self,
        project: Project,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        top_dir: str,
        output: Output,
    ) -> None:
        path = project.script(name)
        if path is None:
            return
        argv = [str(path)] if os.access(path, os.X_OK) else ["bash", str(path)]
        words = " ".join([name, *args])
        output(f"grenade: {project.name}: {words}")
        stream(
            [*argv, *args],
            output,
            env={**env, "TOP_DIR": top_dir},
            cwd=env["GRENADE_DIR"] if Path(env["GRENADE_DIR"]).is_dir() else project.directory,
            what=f"grenade: {words} of project {project.name} ({path})",
            timeout=self.timeout,
        )

    def run(self, target: Target, before: str, output: Output) -> None:
        """Shut down, upgrade and verify every project, as grenade.sh does."""
        env = self.environment(target, before)
        projects = self.discover(target, env, output)
        missing = [p.name for p in projects if p.script("upgrade.sh") is None]
        if missing:
            raise StrategyFailed(
                f"grenade: project {', '.join(missing)} has no upgrade.sh "
                f"in {self._projects_dir(target)}"
            )
        env["UPGRADE_PROJECTS"] = " ".join(p.name for p in projects)
        base_top, target_top = env["BASE_DEVSTACK_DIR"], env["TARGET_DEVSTACK_DIR"]
        backwards = list(reversed(projects))

        def resources(phase: str, side: str = "", order: Sequence[Project] = projects) -> None:
            for project in order:
                args = [phase, side] if side else [phase]
                self._script(project, "resources.sh", args, env, base_top, output)

        if self.resources == FULL:
            resources("early_create")
            resources("create")
        if self.resources != NONE:
            resources("verify", "pre-upgrade")
        for project in backwards:
            self._script(project, "shutdown.sh", [], env, base_top, output)
        if self.resources != NONE:
            resources("verify_noapi", "pre-upgrade")
        for project in projects:
            self._script(project, "upgrade.sh", [], env, target_top, output)
        if self.resources != NONE:
            resources("verify", "post-upgrade")
        if self.resources == FULL:
            resources("destroy", order=backwards)

    def version(self, target: Target) -> str:
        return shell.version(
            self.version_command, target, env=rendered(self.env, target), timeout=self.timeout
        )

    def upgrade(self, target: Target, output: Output) -> Change:
        before = self.version(target)
        self.run(target, before, output)
        after = self.version(target) if self.version_command else target.version
        return Change(before, after)

    def can_downgrade(self) -> bool:
        return False

    def downgrade(self, target: Target, output: Output) -> Change:
        raise NoDowngrade(
            "the grenade strategy has no downgrade: grenade only upgrades "
            "(its projects have no scripts that go back)"
        )
