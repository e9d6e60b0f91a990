"""Where the API's policy comes from: ``--policy-file`` or the package's defaults, never a
``policy.yaml`` lying in ``~``, ``~/.ephyra``, ``/etc/ephyra`` or named by the environment;
and a changed file is read again without a restart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from oslo_config import cfg
from oslo_policy import policy as oslo

from ephyra.api.policy import Identity, Policy

READER = Identity("rea", "ops", ("reader",))
MEMBER = Identity("max", "ops", ("member",))
PERMISSIVE = '"ephyra:run:start": "@"\n"ephyra:run:abort": "@"\n'


@pytest.fixture
def stray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Permissive policy files wherever oslo.config and oslo.policy look, with HOME, SNAP and
    the OS_OSLO_POLICY__* variables pointing at them."""
    home, snap = tmp_path / "home", tmp_path / "snap"
    for folder in (home, home / ".ephyra", snap / "etc" / "ephyra", tmp_path / "policy.d"):
        folder.mkdir(parents=True)
        (folder / "policy.yaml").write_text(PERMISSIVE)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SNAP", str(snap))
    monkeypatch.setenv("SNAP_COMMON", str(snap))
    monkeypatch.setenv("OS_OSLO_POLICY__POLICY_FILE", str(home / "policy.yaml"))
    monkeypatch.setenv("OS_OSLO_POLICY__POLICY_DIRS", str(tmp_path / "policy.d"))
    return home


def test_oslo_policy_alone_would_take_the_stray_file(
    stray: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the library's own search finds the file the fixture left in ~."""
    monkeypatch.delenv("OS_OSLO_POLICY__POLICY_FILE")
    monkeypatch.delenv("OS_OSLO_POLICY__POLICY_DIRS")
    conf = cfg.ConfigOpts()
    conf([], project="ephyra", default_config_files=[], default_config_dirs=[])
    enforcer = oslo.Enforcer(conf)
    enforcer.register_default(oslo.RuleDefault("ephyra:run:start", "role:admin"))
    assert enforcer.enforce("ephyra:run:start", {}, {"roles": ["reader"]})


def test_the_defaults_ignore_stray_files(stray: Path) -> None:
    policy = Policy()
    assert not policy.allows("run:start", READER)
    assert not policy.allows("run:abort", MEMBER)
    assert policy.allows("run:list", READER)


def test_a_policy_file_ignores_stray_files(stray: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text('"ephyra:run:plan": "rule:admin"\n')
    policy = Policy(str(mine))
    assert not policy.allows("run:plan", MEMBER)
    assert not policy.allows("run:start", READER)
    assert not policy.allows("run:abort", MEMBER)


def test_a_relative_policy_file_is_not_searched_for(
    stray: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``policy.yaml`` means the one in the working directory, not one of ~/.ephyra."""
    monkeypatch.chdir(tmp_path)
    from ephyra.errors import UsageError

    with pytest.raises(UsageError, match="no policy file"):
        Policy("policy.yaml")


def test_a_changed_file_changes_the_decisions(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('"ephyra:run:start": "rule:admin"\n')
    policy = Policy(str(path), recheck=0)
    assert not policy.allows("run:start", MEMBER)
    path.write_text('"ephyra:run:start": "rule:member"\n')
    assert policy.allows("run:start", MEMBER)
    assert not policy.allows("run:start", READER)
    replaced = tmp_path / "new.yaml"  # replaced whole, as an editor or a deployment does
    replaced.write_text('"ephyra:run:start": "rule:admin"\n')
    os.replace(replaced, path)
    assert not policy.allows("run:start", MEMBER)


def test_a_broken_file_keeps_the_rules_last_read(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('"ephyra:run:start": "rule:member"\n')
    policy = Policy(str(path), recheck=0)
    assert policy.allows("run:start", MEMBER)
    path.write_text('"ephyra:run:start": [unclosed\n')
    assert policy.allows("run:start", MEMBER)
    path.unlink()
    assert policy.allows("run:start", MEMBER)
    assert not policy.allows("run:start", READER)


def test_the_file_is_looked_at_no_more_than_the_recheck_interval(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('"ephyra:run:start": "rule:admin"\n')
    policy = Policy(str(path), recheck=3600)
    assert not policy.allows("run:start", MEMBER)
    path.write_text('"ephyra:run:start": "rule:member"\n')
    assert not policy.allows("run:start", MEMBER)  # within the interval: the rules kept
