"""Every upgrade strategy run for real, built from its options through its entry point:
apt packages from a local repository, a git tag into a virtualenv, an Ansible playbook,
a Puppet manifest, grenade project scripts, shell commands. Each test checks what
changed on the machine, the versions the strategy reports, and the lines it streamed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ephyra.errors import NoDowngrade, StrategyFailed, UsageError
from ephyra.strategies.base import Change, Strategy, Target, build
from testbed.aptrepo import AptRepo

pytestmark = pytest.mark.functional

DATA = Path(__file__).resolve().parent / "strategies"
PACKAGE = "ephyra-demo"


def _target(version: str, host: str = "localhost", services: tuple[str, ...] = ("demo",)) -> Target:
    return Target(host, version, services, "service")


def _strategy(options: dict[str, Any]) -> Strategy:
    return build(options)


class Lines(list[str]):
    """What a strategy gave its ``output``, one line each."""

    def __call__(self, line: str) -> None:
        self.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self)


def _apt_get_install(deb: str) -> None:
    if shutil.which(deb):
        return
    install = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", "install", "-y", deb]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "-q", "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)


# -- package ---------------------------------------------------------------------------


@pytest.fixture
def apt_repo() -> Iterator[AptRepo]:
    """Versions 1.0 and 2.0 of ephyra-demo in a local repository, 1.0 installed."""
    with AptRepo() as repo:
        repo.add(PACKAGE, "1.0")
        repo.add(PACKAGE, "2.0")
        repo.publish()
        repo.update()
        repo.install(PACKAGE, "1.0")
        yield repo
    assert not repo.list_file.exists()
    assert not repo.root.exists()
    assert repo.installed(PACKAGE) == ""


def test_package_upgrades_to_the_release_version_and_downgrades(apt_repo: AptRepo) -> None:
    shipped = Path("/usr/share") / PACKAGE / "VERSION"
    strategy = _strategy(
        {
            "type": "package",
            "packages": [PACKAGE],
            "package_version": "{version}",
            "update": True,
            "sources_list": str(apt_repo.list_file),
        }
    )
    assert strategy.version(_target("2.0")) == "1.0"

    lines = Lines()
    change = strategy.upgrade(_target("2.0"), lines)
    assert change == Change("1.0", "2.0")
    assert apt_repo.installed(PACKAGE) == "2.0"
    assert shipped.read_text() == "2.0\n"
    assert lines.has(f"Unpacking {PACKAGE} (2.0) over (1.0)")

    assert strategy.can_downgrade()
    lines = Lines()
    back = strategy.downgrade(_target(change.before), lines)
    assert back == Change("2.0", "1.0")
    assert apt_repo.installed(PACKAGE) == "1.0"
    assert shipped.read_text() == "1.0\n"
    assert lines.has(f"Unpacking {PACKAGE} (1.0) over (2.0)")


def test_package_without_a_version_takes_the_newest_and_refuses_what_is_not_installed(
    apt_repo: AptRepo,
) -> None:
    strategy = _strategy({"type": "package", "packages": ["{service}"]})
    lines = Lines()
    change = strategy.upgrade(_target("2026.2", services=(PACKAGE,)), lines)
    assert change == Change("1.0", "2.0")
    assert apt_repo.installed(PACKAGE) == "2.0"
    assert lines.has(f"Setting up {PACKAGE} (2.0)")

    subprocess.run(["dpkg", "--purge", PACKAGE], check=True, capture_output=True)
    with pytest.raises(StrategyFailed, match=f"{PACKAGE} not installed"):
        strategy.upgrade(_target("2026.2", services=(PACKAGE,)), Lines())
    assert apt_repo.installed(PACKAGE) == ""


def test_package_version_the_repository_lacks_fails_with_apts_words(apt_repo: AptRepo) -> None:
    strategy = _strategy({"type": "package", "packages": [PACKAGE], "package_version": "{version}"})
    with pytest.raises(StrategyFailed, match=f"Version '9.9' for '{PACKAGE}' was not found"):
        strategy.upgrade(_target("9.9"), Lines())
    assert apt_repo.installed(PACKAGE) == "1.0"


# -- source ----------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ephyra tests",
        "GIT_AUTHOR_EMAIL": "tests@localhost",
        "GIT_COMMITTER_NAME": "Ephyra tests",
        "GIT_COMMITTER_EMAIL": "tests@localhost",
    }
    subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True)


def _release(repo: Path, version: str) -> None:
    """Commit and tag ``version`` of a tiny package, built by a stdlib-only PEP 517 backend
    (pip needs nothing from the network)."""
    (repo / "ephyra_demo").mkdir(exist_ok=True)
    (repo / "ephyra_demo" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    shutil.copy(DATA / "source" / "wheel_backend.py", repo / "wheel_backend.py")
    (repo / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "wheel_backend"\nbackend-path = ["."]\n'
    )
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"release {version}")
    _git(repo, "tag", version)


@pytest.fixture
def source_repo(tmp_path: Path) -> Path:
    """A git repository of a tiny Python package, tags 1.0 and 2.0."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _release(repo, "1.0")
    _release(repo, "2.0")
    return repo


def _imported_version(venv: Path) -> str:
    script = "import ephyra_demo; print(ephyra_demo.__version__)"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_source_installs_a_tag_into_the_venv_and_goes_back(
    source_repo: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    options = {
        "type": "source",
        "repo": str(source_repo),
        "checkout": str(tmp_path / "checkout"),
        "venv": str(venv),
        "pip_options": ["--no-index"],  # nothing from the network
    }
    strategy = _strategy(options)
    assert strategy.version(_target("1.0")) == ""  # no checkout yet

    lines = Lines()
    assert strategy.upgrade(_target("1.0"), lines) == Change("", "1.0")  # cloned
    assert _imported_version(venv) == "1.0"

    lines = Lines()
    change = strategy.upgrade(_target("2.0"), lines)  # fetched
    assert change == Change("1.0", "2.0")
    assert _imported_version(venv) == "2.0"
    assert lines.has("Successfully installed ephyra-demo-2.0")

    installed = _strategy(
        {**options, "version_from": "distribution", "distribution": "ephyra-demo"}
    )
    assert installed.version(_target("2.0")) == "2.0"

    lines = Lines()
    assert strategy.downgrade(_target(change.before), lines) == Change("2.0", "1.0")
    assert _imported_version(venv) == "1.0"
    assert installed.version(_target("1.0")) == "1.0"
    assert lines.has("Successfully installed ephyra-demo-1.0")

    with pytest.raises(StrategyFailed, match=r"git checkout of tag 3\.0"):
        strategy.upgrade(_target("3.0"), Lines())
    assert _imported_version(venv) == "1.0"


def test_source_installs_a_requirement_from_wheels_and_goes_back(
    source_repo: Path, tmp_path: Path
) -> None:
    wheels = tmp_path / "wheels"
    for tag in ("1.0", "2.0"):
        tree = tmp_path / f"tree-{tag}"
        subprocess.run(
            ["git", "clone", "-q", "--branch", tag, str(source_repo), str(tree)], check=True
        )
        pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index"]
        subprocess.run([*pip, "-w", str(wheels), str(tree)], check=True, capture_output=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    options = {
        "type": "source",
        "requirement": "ephyra-demo=={version}",
        "distribution": "ephyra-demo",
        "venv": str(venv),
        "pip_options": ["--no-index", "--find-links", str(wheels)],
    }
    strategy = _strategy(options)
    assert strategy.version(_target("1.0")) == ""  # not installed yet
    assert strategy.upgrade(_target("1.0"), Lines()) == Change("", "1.0")
    lines = Lines()
    change = strategy.upgrade(_target("2.0"), lines)
    assert change == Change("1.0", "2.0")
    assert _imported_version(venv) == "2.0"
    assert lines.has("Successfully installed ephyra-demo-2.0")
    assert strategy.downgrade(_target(change.before), Lines()) == Change("2.0", "1.0")
    assert _imported_version(venv) == "1.0"

    with pytest.raises(StrategyFailed, match=r"pip install ephyra-demo==3\.0 into"):
        strategy.upgrade(_target("3.0"), Lines())
    assert _imported_version(venv) == "1.0"
    for bad, message in (
        ({"repo": str(source_repo)}, "repo, checkout and tag are for a git checkout"),
        ({"version_from": "git"}, "a requirement's version is its distribution's"),
    ):
        with pytest.raises(UsageError, match=message):
            _strategy({**options, **bad})


# -- ansible ---------------------------------------------------------------------------


def _ansible(release_file: Path, playbook: str, **extra: Any) -> Strategy:
    return _strategy(
        {
            "type": "ansible",
            "playbook": str(DATA / "ansible" / playbook),
            "inventory": str(DATA / "ansible" / "inventory.ini"),
            "extravars": {"release_file": str(release_file)},
            "version": f"cut -d' ' -f1 {release_file}",
            **extra,
        }
    )


def test_ansible_playbook_writes_the_release_and_the_rollback_playbook_restores_it(
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    release.write_text("1.0 demo\n")
    strategy = _ansible(release, "release.yml", rollback_playbook=str(DATA / "ansible/release.yml"))

    lines = Lines()
    change = strategy.upgrade(_target("2.0", services=("nova-api", "nova-conductor")), lines)
    assert change == Change("1.0", "2.0")
    assert release.read_text() == "2.0 nova-api,nova-conductor\n"
    assert lines.has("TASK [Write the release file]")
    assert lines.has("changed: [localhost]")
    assert lines.has("localhost                  : ok=1    changed=1")

    assert strategy.can_downgrade()
    back = strategy.downgrade(_target(change.before), Lines())
    assert back == Change("2.0", "1.0")
    assert release.read_text() == "1.0 demo\n"


def test_ansible_failed_task_raises_with_its_message(tmp_path: Path) -> None:
    release = tmp_path / "release"
    release.write_text("1.0 demo\n")
    strategy = _ansible(release, "refuse.yml")
    lines = Lines()
    with pytest.raises(StrategyFailed) as failed:
        strategy.upgrade(_target("2.0"), lines)
    message = str(failed.value)
    assert "task 'Check the release is supported' on localhost" in message
    assert "release 2.0 is not supported on localhost" in message
    assert release.read_text() == "1.0 demo\n"
    assert lines.has("fatal: [localhost]: FAILED!")

    assert not strategy.can_downgrade()
    with pytest.raises(NoDowngrade, match="no 'rollback_playbook'"):
        strategy.downgrade(_target("1.0"), Lines())


# -- puppet ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def puppet() -> str:
    _apt_get_install("puppet")
    path = shutil.which("puppet")
    assert path, "puppet is not installed (Debian's puppet package)"
    return path


def test_puppet_applies_the_manifest_with_the_version_and_downgrades(
    puppet: str, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    release.write_text("release 1.0\n")
    strategy = _strategy(
        {
            "type": "puppet",
            "manifest": str(DATA / "puppet" / "release.pp"),
            "facts": {"release_file": str(release)},
            "version": f"sed -n 's/^release //p' {release}",
            "puppet": puppet,
        }
    )
    lines = Lines()
    change = strategy.upgrade(_target("2.0"), lines)
    assert change == Change("1.0", "2.0")
    assert release.read_text() == "release 2.0\n"
    assert lines.has(f"File[{release}]/content: content changed")

    lines = Lines()
    assert strategy.upgrade(_target("2.0"), lines) == Change("2.0", "2.0")  # exit code 0
    assert not lines.has("content changed")

    back = strategy.downgrade(_target(change.before), Lines())
    assert back == Change("2.0", "1.0")
    assert release.read_text() == "release 1.0\n"


def test_puppet_failed_resource_raises_with_puppets_error(puppet: str) -> None:
    strategy = _strategy({"type": "puppet", "manifest": str(DATA / "puppet" / "refuse.pp")})
    lines = Lines()
    with pytest.raises(StrategyFailed) as failed:
        strategy.upgrade(_target("2.0"), lines)
    assert "Exec[migrate-database]" in str(failed.value)
    assert lines.has("schema 2.0 refused")


# -- grenade ---------------------------------------------------------------------------


def _grenade(state: Path, **extra: Any) -> Strategy:
    state.mkdir(exist_ok=True)
    return _strategy(
        {
            "type": "grenade",
            "projects": str(DATA / "grenade" / "projects"),
            "stack_root": "/opt/stack",
            "version": f"cat {state}/release",
            "env": {"DEMO_STATE": str(state)},
            **extra,
        }
    )


def test_grenade_runs_the_projects_scripts_as_grenade_does(tmp_path: Path) -> None:
    state = tmp_path / "state"
    strategy = _grenade(state, enabled_services=["demo", "extra"])
    (state / "release").write_text("2025.2\n")
    lines = Lines()
    change = strategy.upgrade(_target("2026.1"), lines)
    assert change == Change("2025.2", "2026.1")
    assert (state / "release").read_text() == "2026.1\n"
    assert lines.has("demo verified at 2026.1")
    base, target = "/opt/stack/2025.2/devstack", "/opt/stack/2026.1/devstack"
    assert (state / "log").read_text().splitlines() == [
        "resources demo verify pre-upgrade",
        "shutdown extra",  # reverse order
        f"shutdown demo 2025.2 TOP_DIR={base}",
        "resources demo verify_noapi pre-upgrade",
        f"upgrade demo 2025.2->2026.1 TOP_DIR={target}",
        "upgrade extra demo extra",  # optional not registered: not enabled
        "resources demo verify post-upgrade",
    ]
    assert not strategy.can_downgrade()
    with pytest.raises(NoDowngrade, match="grenade only upgrades"):
        strategy.downgrade(_target("2025.2"), Lines())


def test_grenade_failing_upgrade_stops_with_its_output(tmp_path: Path) -> None:
    state = tmp_path / "state"
    strategy = _grenade(state, env={"DEMO_STATE": str(state), "DEMO_FAIL": "upgrade"})
    (state / "release").write_text("2025.2\n")
    with pytest.raises(StrategyFailed) as failed:
        strategy.upgrade(_target("2026.1"), Lines())
    assert "upgrade.sh of project demo" in str(failed.value)
    assert "database migration to 2026.1 failed" in str(failed.value)
    log = (state / "log").read_text()
    assert "upgrade extra" not in log  # the first failure stops the upgrade
    assert (state / "release").read_text() == "2025.2\n"


def test_grenade_verify_catches_an_upgrade_that_did_not_take(tmp_path: Path) -> None:
    state = tmp_path / "state"
    strategy = _grenade(
        state, env={"DEMO_STATE": str(state), "DEMO_FAIL": "no-write"}, only=["demo"]
    )
    (state / "release").write_text("2025.2\n")
    with pytest.raises(StrategyFailed) as failed:
        strategy.upgrade(_target("2026.1"), Lines())
    assert "resources.sh verify post-upgrade of project demo" in str(failed.value)
    assert "demo: runs release 2025.2, not 2026.1" in str(failed.value)
    assert "extra" not in (state / "log").read_text()  # only: [demo]


# -- command ---------------------------------------------------------------------------


def test_command_upgrades_tells_the_version_and_downgrades(tmp_path: Path) -> None:
    state = tmp_path / "version"
    state.write_text("1.0\n")
    strategy = _strategy(
        {
            "type": "command",
            "upgrade": f"echo upgrading {{service}} on $EPHYRA_HOST to {{version}}; "
            f"echo {{version}} > {state}",
            "downgrade": f"echo back to {{version}}; echo {{version}} > {state}",
            "version": f"cat {state}",
        }
    )
    lines = Lines()
    change = strategy.upgrade(_target("2.0", host="compute-7"), lines)
    assert change == Change("1.0", "2.0")
    assert state.read_text() == "2.0\n"
    assert lines == ["upgrading demo on compute-7 to 2.0"]

    lines = Lines()
    assert strategy.downgrade(_target("1.0"), lines) == Change("2.0", "1.0")
    assert state.read_text() == "1.0\n"
    assert lines == ["back to 1.0"]


def test_command_failure_carries_the_tail_of_its_output() -> None:
    strategy = _strategy(
        {
            "type": "command",
            "upgrade": "for i in 1 2 3 4 5 6 7; do echo line $i; done; "
            "echo 'no space left on device' >&2; exit 3",
        }
    )
    lines = Lines()
    with pytest.raises(StrategyFailed) as failed:
        strategy.upgrade(_target("2.0"), lines)
    message = str(failed.value)
    assert "exited with 3" in message
    assert message.endswith("line 4\nline 5\nline 6\nline 7\nno space left on device")
    assert "line 3" not in message
    assert lines[-1] == "no space left on device"
    assert not strategy.can_downgrade()
    with pytest.raises(NoDowngrade, match="no 'downgrade' command"):
        strategy.downgrade(_target("1.0"), Lines())


def test_command_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    strategy = _strategy({"type": "command", "upgrade": "echo started; sleep 30", "timeout": 0.5})
    lines = Lines()
    started = time.monotonic()
    with pytest.raises(StrategyFailed, match=r"timed out after 0.5s: started"):
        strategy.upgrade(_target("2.0"), lines)
    assert time.monotonic() - started < 30  # stopped: not left to sleep its 30 s
    assert lines == ["started"]


def test_command_runs_through_via_with_its_environment(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    strategy = _strategy(
        {
            "type": "command",
            "upgrade": f'echo "$EPHYRA_SERVICES at $RELEASE on {{host}}" > {seen}; echo done',
            "env": {"RELEASE": "release-{version}"},
            "via": "env VIA_USED=yes sh -c",
            "version": "echo $VIA_USED",
        }
    )
    lines = Lines()
    change = strategy.upgrade(_target("2.0", host="compute-7", services=("a", "b")), lines)
    assert change == Change("yes", "yes")
    assert seen.read_text() == "a b at release-2.0 on compute-7\n"
    assert lines == ["done"]
