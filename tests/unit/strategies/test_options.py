"""Secrets in an upgrade specification are references, read when the step runs."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from ephyra.errors import StrategyFailed, UsageError
from ephyra.strategies.ansible import AnsibleStrategy
from ephyra.strategies.base import Target
from ephyra.strategies.command import CommandStrategy
from ephyra.strategies.options import SecretRef, rendered
from ephyra.upgrade.spec import parse

TARGET = Target("ctl-1", "2026.2", ("nova-api",))


def spec(strategy: dict[str, Any]) -> dict[str, Any]:
    return {"release": "2026.2", "strategies": {"default": strategy}}


@pytest.mark.parametrize(
    ("option", "where"),
    [
        ({"env": {"DB_PASS": "hunter2"}}, "spec.strategies.default.env.DB_PASS"),
        ({"env": {"OS_PASSWORD": 1234}}, "spec.strategies.default.env.OS_PASSWORD"),
        ({"facts": {"api_token": "t"}}, "spec.strategies.default.facts.api_token"),
        ({"extravars": {"db": {"password": "x"}}}, "spec.strategies.default.extravars.db.password"),
        ({"extravars": {"ssh_keys": ["a", "b"]}}, "spec.strategies.default.extravars.ssh_keys[0]"),
    ],
)
def test_a_plain_secret_is_refused_when_the_spec_is_read(
    option: dict[str, Any], where: str
) -> None:
    with pytest.raises(UsageError) as caught:
        parse(spec({"type": "command", "upgrade": "true", **option}))
    assert str(caught.value).startswith(f"{where}: looks like a secret")
    assert "{from_env: NAME}" in str(caught.value) and "{from_file: PATH}" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_references_and_plain_values_pass_and_the_spec_keeps_the_reference() -> None:
    data = spec(
        {
            "type": "command",
            "upgrade": "true",
            "env": {
                "DB_PASS": {"from_env": "DB_PASS"},
                "KEYSTONE_URL": "http://ks",
                "ANSIBLE_VAULT_PASSWORD_FILE": "/etc/ephyra/vault.pass",  # where, not what
                "N": 3,
            },
        }
    )
    read = parse(data)
    assert read.raw["strategies"]["default"]["env"]["DB_PASS"] == {"from_env": "DB_PASS"}


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ({"from_env": "NOT A NAME"}, "from_env: 'NOT A NAME' is not an environment variable"),
        ({"from_file": "relative/path"}, "from_file: 'relative/path' is not an absolute path"),
        ({"from_env": "A", "from_file": "/b"}, "a secret reference is {from_env: NAME} or"),
    ],
)
def test_a_malformed_reference_is_refused(ref: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=r"env\.DB_PASS") as caught:
        parse(spec({"type": "command", "upgrade": "true", "env": {"DB_PASS": ref}}))
    assert message in str(caught.value)


def test_env_references_are_read_when_the_step_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "db.pass"
    secret_file.write_text("from-a-file {not a template}\n")
    strategy = CommandStrategy(
        {
            "upgrade": "true",
            "env": {
                "DB_PASS": {"from_env": "DB_PASS"},
                "FILE_PASS": {"from_file": str(secret_file)},
                "WHERE": "{host}",
            },
        }
    )
    assert "s3cret" not in json.dumps(strategy.env)  # what a strategy holds: references
    monkeypatch.setenv("DB_PASS", "s3cret-1")
    assert rendered(strategy.env, TARGET) == {
        "DB_PASS": "s3cret-1",
        "FILE_PASS": "from-a-file {not a template}",
        "WHERE": "ctl-1",
    }
    monkeypatch.setenv("DB_PASS", "s3cret-2")  # read at each step, not when built
    assert rendered(strategy.env, TARGET)["DB_PASS"] == "s3cret-2"
    monkeypatch.delenv("DB_PASS")
    with pytest.raises(StrategyFailed, match="DB_PASS is not in the environment of Ephyra"):
        rendered(strategy.env, TARGET)
    secret_file.unlink()
    monkeypatch.setenv("DB_PASS", "x")
    with pytest.raises(StrategyFailed, match=r"cannot read the secret file .*db\.pass"):
        rendered(strategy.env, TARGET)


def test_a_reference_survives_a_copy_and_a_pickle() -> None:
    ref = SecretRef("from_env", "DB_PASS")
    for copied in (copy.deepcopy(ref), pickle.loads(pickle.dumps(ref))):
        assert isinstance(copied, SecretRef)
        assert (copied.kind, copied.name, str(copied)) == ("from_env", "DB_PASS", str(ref))


def test_ansible_extravars_references_at_any_depth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    strategy = AnsibleStrategy(
        {
            "playbook": str(tmp_path / "site.yml"),
            "extravars": {
                "db_password": {"from_env": "DB_PASS"},
                "db": {"user": "nova", "token": {"from_env": "DB_TOKEN"}},
                "release_dir": "/opt/{version}",
            },
        }
    )
    monkeypatch.setenv("DB_PASS", "p-1")
    monkeypatch.setenv("DB_TOKEN", "t-1")
    assert strategy._extravars(TARGET) == {
        "db_password": "p-1",
        "db": {"user": "nova", "token": "t-1"},
        "release_dir": "/opt/2026.2",
    }
    with pytest.raises(UsageError, match=r"extravars\.api_key: looks like a secret"):
        AnsibleStrategy({"playbook": "x.yml", "extravars": {"api_key": "plain"}})
