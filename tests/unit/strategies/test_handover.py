"""Hand-overs: configured by the operator in an owner-only file, named by a run; their
commands see the host and the cloud shell-quoted and checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ephyra.errors import PluginError, StrategyFailed, UsageError
from ephyra.strategies import handover


def config(tmp_path: Path, handovers: dict[str, object], mode: int = 0o600) -> Path:
    path = tmp_path / "handovers.yaml"
    path.write_text(yaml.safe_dump({"handovers": handovers}))
    path.chmod(mode)
    return path


def test_commands_get_the_host_and_cloud_as_single_words(tmp_path: Path) -> None:
    said = tmp_path / "said"
    spec = {
        "type": "command",
        "release": f"printf '%s|' release {{host}} {{cloud}} \"$EPHYRA_CLOUD\" >> {said}",
        "adopt": f"printf '%s|' adopt {{host}} {{cloud}} >> {said}",
    }
    built = handover.load(config(tmp_path, {"lab": spec})).build("lab")
    lines: list[str] = []
    built.release("compute-1", "a", lines.append)
    built.adopt("compute-1", "b", lines.append)
    assert built.discover("compute-1", "b", lines.append) is False  # none configured
    assert said.read_text() == "release|compute-1|a|a|adopt|compute-1|b|"


def test_a_name_that_is_not_one_never_reaches_the_shell(tmp_path: Path) -> None:
    built = handover.CommandHandover({"release": "true {host}", "adopt": "true {host} {cloud}"})
    with pytest.raises(UsageError, match="refused"):
        built.release("x; rm -rf /", "a", print)
    with pytest.raises(UsageError, match="refused"):
        built.adopt("compute-1", "$(reboot)", print)


def test_a_failing_command_fails_the_step_with_its_output(tmp_path: Path) -> None:
    built = handover.CommandHandover({"release": "echo nope; exit 3", "adopt": "true"})
    with pytest.raises(StrategyFailed, match="exited with 3: nope"):
        built.release("compute-1", "a", print)


def test_unknown_name_missing_option_and_open_file_are_refused(tmp_path: Path) -> None:
    path = config(tmp_path, {"lab": {"type": "command", "release": "true"}})
    with pytest.raises(UsageError, match=r"no hand-over named 'other' \(configured: lab\)"):
        handover.load(path).build("other")
    with pytest.raises(PluginError, match=r"'adopt' .* is required"):
        handover.load(path).build("lab")
    path.chmod(0o644)
    with pytest.raises(UsageError, match=r"readable by others.*chmod 600"):
        handover.load(path)


def test_bad_template_is_refused_when_built(tmp_path: Path) -> None:
    spec = {"type": "command", "release": "stop {hots}", "adopt": "true"}
    with pytest.raises(UsageError, match="bad template"):
        handover.load(config(tmp_path, {"lab": spec})).build("lab")


def test_no_configuration_names_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(handover.ENV, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    with pytest.raises(UsageError, match=r"\(configured: none\)"):
        handover.build("lab")
