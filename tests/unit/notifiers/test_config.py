"""The operator's notifiers: configured targets, chosen by name; the file is private."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ephyra.errors import PluginError, UsageError
from ephyra.notifiers.config import NotifyConfig, load, where
from ephyra.notifiers.log import LogNotifier
from ephyra.notifiers.webhook import WebhookNotifier


def written(path: Path, data: Any, mode: int = 0o600) -> Path:
    path.write_text(yaml.safe_dump(data))
    path.chmod(mode)
    return path


CONFIG = {
    "default": ["hook"],
    "flush_seconds": 3,
    "notifiers": {"hook": {"type": "webhook", "url": "https://hooks.example.org/e"}},
}


def test_names_are_chosen_among_the_configured_and_log(tmp_path: Path) -> None:
    config = load(written(tmp_path / "n.yaml", CONFIG))
    assert config.chosen(None) == ["hook"]  # the default
    assert config.chosen([]) == []  # none, on purpose
    assert config.chosen(["log", "hook", "log"]) == ["log", "hook"]
    assert config.flush_seconds == 3
    assert isinstance(config.build("hook"), WebhookNotifier)
    assert isinstance(config.build("log"), LogNotifier)


def test_an_unknown_name_is_a_usage_error_naming_the_configured(tmp_path: Path) -> None:
    config = load(written(tmp_path / "n.yaml", CONFIG))
    with pytest.raises(UsageError, match=r"no notifier named 'nope' \(configured: hook, log\)"):
        config.chosen(["hook", "nope"])


def test_nothing_configured_only_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EPHYRA_NOTIFIERS", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert where() is None
    config = load()
    assert config.chosen(None) == [] and config.chosen(["log"]) == ["log"]


def test_the_state_directorys_file_is_found_and_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EPHYRA_NOTIFIERS", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    (tmp_path / "ephyra").mkdir(mode=0o700)
    path = written(tmp_path / "ephyra" / "notifiers.yaml", CONFIG, 0o644)
    assert where() == path
    assert load().chosen(None) == ["hook"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_file_elsewhere_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = written(tmp_path / "n.yaml", CONFIG, 0o640)
    with pytest.raises(UsageError, match=r"mode 0640, readable by others.*chmod 600"):
        load(path)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"notifiers": {"x": {"type": "pager"}}}, "no notifier type 'pager'"),
        ({"notifiers": {"bad name": {"type": "log"}}}, "notifier name"),
        ({"default": ["x"], "other": 1}, "other"),
        ({"flush_seconds": -1}, "flush_seconds"),
    ],
)
def test_a_bad_file_is_refused(tmp_path: Path, data: Any, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        load(written(tmp_path / "n.yaml", data))


def test_a_plugins_bad_options_are_refused_when_it_is_made() -> None:
    config = NotifyConfig.model_validate(
        {"notifiers": {"hook": {"type": "webhook", "url": "ftp://x/"}}}
    )
    with pytest.raises(PluginError, match="notifier 'hook' \\(webhook\\): url"):
        config.build("hook")
