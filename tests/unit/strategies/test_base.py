"""Strategies built from their options: every plugin loads by its entry point, a bad
option is refused with its name before anything runs, the downgrade each has (or says
plainly it has not), and where a command runs (``via``, ``env``)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from ephyra import plugins
from ephyra.errors import NoDowngrade, PluginError, UsageError
from ephyra.strategies.base import NAMESPACE, Invocation, Strategy, Target, build, on_host, tail
from ephyra.strategies.shell import shell_argv, target_env

NAMES = ("ansible", "command", "grenade", "noop", "package", "puppet", "source")
MINIMAL: dict[str, dict[str, Any]] = {
    "command": {"upgrade": "true"},
    "package": {"packages": ["nova-common"]},
    "source": {"repo": "https://opendev.org/openstack/nova", "checkout": "/opt/nova", "venv": "/v"},
    "ansible": {"playbook": "upgrade.yml"},
    "puppet": {"manifest": "/etc/puppet/upgrade.pp"},
    "grenade": {"projects": "/opt/grenade/projects"},
    "noop": {},
}
TARGET = Target("compute-7", "2026.2", ("nova-compute",), "service")


def _build(kind: str, **options: Any) -> Strategy:
    return build({"type": kind, **MINIMAL[kind], **options})


def _refused(kind: str, match: str, **options: Any) -> str:
    with pytest.raises(UsageError, match=match) as refused:
        _build(kind, **options)
    return str(refused.value)


def test_every_strategy_loads_by_its_entry_point_with_its_name() -> None:
    assert set(NAMES) <= set(plugins.names(NAMESPACE))
    for name in NAMES:
        strategy = _build(name)
        assert isinstance(strategy, Strategy)
        assert strategy.name == name


def test_build_needs_a_known_type_and_a_mapping() -> None:
    with pytest.raises(UsageError, match=r"a strategy needs a type .*command.*package"):
        build({"upgrade": "true"})
    with pytest.raises(PluginError, match=r"no ephyra\.strategies plugin named 'rpm'"):
        build({"type": "rpm"})
    with pytest.raises(UsageError, match="a mapping of options"):
        build(["command"])  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", NAMES)
def test_an_unknown_option_is_refused_with_its_name(kind: str) -> None:
    message = _refused(kind, "has no option 'upgrade_command'", upgrade_command="x")
    assert f"the {kind} strategy" in message


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("command", "upgrade"),
        ("package", "packages"),
        ("source", "repo"),
        ("source", "checkout"),
        ("source", "venv"),
        ("ansible", "playbook"),
        ("puppet", "manifest"),
        ("grenade", "projects"),
    ],
)
def test_a_required_option_missing_is_named(kind: str, key: str) -> None:
    options = {k: v for k, v in MINIMAL[kind].items() if k != key}
    with pytest.raises(UsageError, match=f"^{key}: required"):
        build({"type": kind, **options})


@pytest.mark.parametrize(
    ("kind", "options", "match"),
    [
        ("command", {"upgrade": "upgrade {release}"}, r"^upgrade: bad template .*'release'"),
        ("command", {"version": "awk '{print $1}' /etc/release"}, "^version: bad template"),
        ("command", {"timeout": 0}, "^timeout: must be a positive number"),
        ("command", {"timeout": "10m"}, "^timeout: must be a positive number"),
        ("command", {"env": {"1X": "a"}}, "^env: '1X' is not an environment variable"),
        ("command", {"env": ["A=1"]}, "^env: must be a mapping"),
        ("command", {"env": {"RELEASE": "{versoin}"}}, "^env.RELEASE: bad template"),
        ("command", {"via": "ssh {hostname}"}, "^via: bad template"),
        ("command", {"upgrade": ["apt-get", "upgrade"]}, "^upgrade: must be a string"),
        ("package", {"packages": "nova-common"}, "^packages: must be a list of strings"),
        ("package", {"packages": []}, "^packages: must not be empty"),
        ("package", {"packages": ["Nova_Common"]}, "^packages\\[0\\]: 'Nova_Common' is not a"),
        ("package", {"packages": ["{service"]}, "^packages\\[0\\]: bad template"),
        ("package", {"update": "yes"}, "^update: must be true or false"),
        ("package", {"sources_list": "/etc/x.list", "update": False}, "^sources_list: .*update"),
        ("package", {"apt_options": "-o X=1"}, "^apt_options: must be a list"),
        ("package", {"lock_timeout": -1}, "^lock_timeout: must be a positive number"),
        ("source", {"version_from": "pip"}, "^version_from: must be one of distribution, git"),
        ("source", {"version_from": "distribution"}, "^distribution: required with"),
        ("source", {"tag": "v{version"}, "^tag: bad template"),
        ("source", {"pip_options": [""]}, "^pip_options: must not hold an empty string"),
        ("ansible", {"inventory": {"all": {}}}, "^inventory: must be an inventory path"),
        ("ansible", {"inventory": ["a,", "{hosts}"]}, "^inventory\\[1\\]: bad template"),
        ("ansible", {"extravars": ["a"]}, "^extravars: must be a mapping"),
        ("ansible", {"extravars": {"ephyra_version": "1"}}, "^extravars.ephyra_version: the"),
        ("ansible", {"extravars": {"x": "{nope}"}}, "^extravars.x: bad template"),
        ("ansible", {"limit": "{group}"}, "^limit: bad template"),
        ("puppet", {"facts": {"ephyra_version": "1"}}, "^facts.ephyra_version: the ephyra_"),
        ("puppet", {"facts": {"zone": True}}, "^facts.zone: must be a string"),
        ("puppet", {"modulepath": 3.5, "manifest": "{x}.pp"}, "^manifest: bad template"),
        ("grenade", {"resources": "all"}, "^resources: must be one of full, none, verify"),
        ("grenade", {"only": "nova"}, "^only: must be a list of strings"),
        ("grenade", {"only": ["{project}"]}, "^only\\[0\\]: bad template"),
        ("grenade", {"enabled_services": "nova"}, "^enabled_services: must be a list"),
        ("grenade", {"via": "ssh {host}"}, "has no option 'via'"),
        ("ansible", {"via": "ssh {host}"}, "has no option 'via'"),
    ],
)
def test_a_bad_option_is_refused_with_its_name(
    kind: str, options: dict[str, Any], match: str
) -> None:
    _refused(kind, match, **options)


def test_templates_with_doubled_braces_are_literal() -> None:
    strategy = _build("command", version="awk '{{print $1}}' /etc/release")
    assert strategy.options["version"] == "awk '{{print $1}}' /etc/release"


@pytest.mark.parametrize(
    ("kind", "options", "can"),
    [
        ("command", {}, False),
        ("command", {"downgrade": "apt-get install nova={version}"}, True),
        ("package", {}, True),
        ("source", {}, True),
        ("ansible", {}, False),
        ("ansible", {"rollback_playbook": "rollback.yml"}, True),
        ("puppet", {}, True),
        ("grenade", {}, False),
    ],
)
def test_which_strategies_can_downgrade(kind: str, options: dict[str, Any], can: bool) -> None:
    assert _build(kind, **options).can_downgrade() is can


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("command", "its options give no 'downgrade' command"),
        ("ansible", "its options give no 'rollback_playbook'"),
        ("grenade", "grenade only upgrades"),
    ],
)
def test_no_downgrade_says_why(kind: str, says: str) -> None:
    strategy = _build(kind)
    with pytest.raises(NoDowngrade, match=f"the {kind} strategy has no downgrade: {says}"):
        strategy.downgrade(TARGET, lambda line: None)


def test_on_host_gives_via_a_fixed_command_line_and_the_command_on_stdin() -> None:
    argv = ["sh", "-c", "echo 'a b' > /tmp/x"]
    assert on_host(argv, {}, TARGET) == Invocation(tuple(argv))
    remote = on_host(argv, {"via": "ssh -o BatchMode=yes root@{host}"}, TARGET, {"K": "s3 cr'et"})
    assert remote.argv == ("ssh", "-o", "BatchMode=yes", "root@compute-7", "sh -s")
    assert remote.env == {}
    assert remote.script == f"export K='s3 cr'\"'\"'et'\nexec {shlex.join(argv)}\n"
    with_env = on_host(["apt-get", "update"], {}, TARGET, {"DEBIAN_FRONTEND": "noninteractive"})
    assert with_env == Invocation(("apt-get", "update"), {"DEBIAN_FRONTEND": "noninteractive"})


def test_shell_commands_see_their_target() -> None:
    assert target_env(TARGET) == {
        "EPHYRA_HOST": "compute-7",
        "EPHYRA_VERSION": "2026.2",
        "EPHYRA_SERVICES": "nova-compute",
        "EPHYRA_SERVICE": "nova-compute",
        "EPHYRA_KIND": "service",
    }
    call = shell_argv("true", TARGET, {"via": "ssh {host}"}, {"X": "1"})
    assert call.argv == ("ssh", "compute-7", "sh -s")
    assert call.script is not None
    assert call.script.splitlines()[-2:] == ["export X=1", "exec sh -c true"]
    assert "X=1" not in " ".join(call.argv)


def test_tail_keeps_the_last_non_blank_lines() -> None:
    assert tail(["a", "", "b", "c", "d", "e", "f", "  "]) == "b\nc\nd\ne\nf"
    assert tail([]) == "(no output)"
