"""The ``command`` and ``noop`` workloads, with real commands run by /bin/sh."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

from ephyra.errors import EphyraError, NodeDeferred, PluginError, StepFailed
from ephyra.workloads import Workload, load_workload
from ephyra.workloads.base import Health, NodeRef
from ephyra.workloads.command import CommandWorkload
from ephyra.workloads.noop import NoopWorkload

NODE = NodeRef(
    uuid="5d0f6c1e-0000-4000-8000-000000000001",
    name="compute-7",
    extra={"rack": "r12", "hadoop_host": "dn7.example"},
    properties={"cpus": 64, "memory_mb": 262144},
)


def test_prepare_sees_the_node_in_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    script = (
        'printf \'{"uuid": "%s", "name": "%s", "extra": %s, "properties": %s}\' '
        '"$EPHYRA_NODE_UUID" "$EPHYRA_NODE_NAME" "$EPHYRA_NODE_EXTRA" '
        f'"$EPHYRA_NODE_PROPERTIES" > {shlex.quote(str(out))}'
    )
    CommandWorkload({"prepare": script}).prepare(NODE)
    seen = json.loads(out.read_text())
    assert seen == {
        "uuid": NODE.uuid,
        "name": "compute-7",
        "extra": {"rack": "r12", "hadoop_host": "dn7.example"},
        "properties": {"cpus": 64, "memory_mb": 262144},
    }


def test_awkward_node_names_reach_the_command_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "name"
    name = "node 'one' \"two\" $HOME `id` ; rm -rf /"
    command = f'printf %s "$EPHYRA_NODE_NAME" > {shlex.quote(str(out))}'
    CommandWorkload({"return": command}).return_node(NodeRef(uuid="u", name=name))
    assert out.read_text() == name


def test_a_node_without_name_gets_an_empty_name(tmp_path: Path) -> None:
    out = tmp_path / "name"
    command = f'printf "[%s]" "${{EPHYRA_NODE_NAME-unset}}" > {shlex.quote(str(out))}'
    CommandWorkload({"prepare": command}).prepare(NodeRef(uuid="u", name=None))
    assert out.read_text() == "[]"


def test_prepare_exit_75_defers_the_node_with_the_last_stderr_line() -> None:
    workload = CommandWorkload(
        {"prepare": "echo checking >&2; echo 'rebalance running, 3 jobs left' >&2; exit 75"}
    )
    with pytest.raises(NodeDeferred) as caught:
        workload.prepare(NODE)
    assert "rebalance running, 3 jobs left" in str(caught.value)
    assert "checking" not in str(caught.value)
    assert "compute-7" in str(caught.value)


def test_the_defer_exit_code_is_configurable() -> None:
    workload = CommandWorkload({"prepare": "echo busy >&2; exit 9", "defer_exit_code": "9"})
    with pytest.raises(NodeDeferred, match="busy"):
        workload.prepare(NODE)
    # 75 is then an ordinary failure.
    workload = CommandWorkload({"prepare": "exit 75", "defer_exit_code": "9"})
    with pytest.raises(StepFailed, match="exited with code 75"):
        workload.prepare(NODE)


def test_prepare_failure_reports_exit_code_and_last_lines() -> None:
    script = 'for i in 1 2 3 4 5 6 7 8; do echo "line $i" >&2; done; exit 3'
    with pytest.raises(StepFailed) as caught:
        CommandWorkload({"prepare": script}).prepare(NODE)
    message = str(caught.value)
    assert "prepare" in message and "compute-7" in message
    assert "exited with code 3" in message
    assert "line 8" in message and "line 4" in message
    assert "line 3" not in message  # only the last lines
    assert not isinstance(caught.value, NodeDeferred)


def test_failure_falls_back_to_stdout_when_stderr_is_empty() -> None:
    with pytest.raises(StepFailed, match="disk full"):
        CommandWorkload({"return": "echo 'disk full'; exit 1"}).return_node(NODE)


def test_return_failure_and_success() -> None:
    with pytest.raises(StepFailed, match=r"return command .* exited with code 4"):
        CommandWorkload({"return": "exit 4"}).return_node(NODE)
    CommandWorkload({"return": "true"}).return_node(NODE)


def test_unknown_command_is_a_step_failure() -> None:
    with pytest.raises(StepFailed, match="127"):
        CommandWorkload({"prepare": "no-such-command-ephyra-test"}).prepare(NODE)


def test_health_commands_give_ok_and_the_last_output_line() -> None:
    workload = CommandWorkload(
        {
            "node_health": 'echo probing; echo "node $EPHYRA_NODE_NAME ok"',
            "app_health": "echo 'hdfs: 2 missing blocks'; exit 1",
        }
    )
    assert workload.node_health(NODE) == Health(ok=True, detail="node compute-7 ok")
    assert workload.app_health() == Health(ok=False, detail="hdfs: 2 missing blocks")


def test_health_detail_uses_stderr_when_stdout_is_silent() -> None:
    workload = CommandWorkload({"node_health": "echo 'no heartbeat' >&2; exit 2"})
    assert workload.node_health(NODE) == Health(ok=False, detail="no heartbeat")
    silent = CommandWorkload({"node_health": "exit 2"}).node_health(NODE)
    assert not silent.ok and "code 2" in silent.detail


def test_app_health_gets_no_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EPHYRA_NODE_UUID", raising=False)
    workload = CommandWorkload({"app_health": 'echo "[${EPHYRA_NODE_UUID-none}]"'})
    assert workload.app_health().detail == "[none]"


def test_absent_commands_do_nothing_and_are_healthy() -> None:
    workload = CommandWorkload({})
    workload.prepare(NODE)
    workload.return_node(NODE)
    assert workload.node_health(NODE).ok
    assert workload.app_health().ok


def test_timeout_kills_the_command_and_its_children() -> None:
    # Two commands: the shell forks `sleep`, which would keep the pipes open for 30 s if
    # only the shell were killed.
    workload = CommandWorkload({"prepare": "echo started; sleep 30", "timeout": "0.5"})
    start = time.monotonic()
    with pytest.raises(StepFailed) as caught:
        workload.prepare(NODE)
    assert time.monotonic() - start < 5
    assert "timed out after 0.5s" in str(caught.value)


def test_timeout_of_a_health_command_is_a_step_failure() -> None:
    workload = CommandWorkload({"app_health": "sleep 30", "timeout": "0.3"})
    with pytest.raises(StepFailed, match="timed out"):
        workload.app_health()


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(PluginError) as caught:
        CommandWorkload({"prepare": "true", "prepar": "true"})
    message = str(caught.value)
    assert "prepar" in message
    for key in ("prepare", "return", "node_health", "app_health", "timeout", "defer_exit_code"):
        assert key in message


@pytest.mark.parametrize(
    ("key", "value"),
    [("timeout", "soon"), ("timeout", "0"), ("defer_exit_code", "x"), ("defer_exit_code", "300")],
)
def test_bad_option_values_are_refused(key: str, value: str) -> None:
    with pytest.raises(PluginError, match=key):
        CommandWorkload({key: value})


def test_errors_stay_in_the_ephyra_tree() -> None:
    assert issubclass(PluginError, EphyraError) and issubclass(StepFailed, EphyraError)


def test_command_and_noop_load_through_entry_points(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    command = load_workload("command", {"prepare": f"touch {shlex.quote(str(marker))}"})
    assert isinstance(command, CommandWorkload) and isinstance(command, Workload)
    assert command.name == "command"
    command.prepare(NODE)
    assert marker.exists()
    noop = load_workload("noop")
    assert isinstance(noop, NoopWorkload) and noop.name == "noop"


def test_noop_does_nothing_and_is_healthy() -> None:
    noop = NoopWorkload({})
    noop.prepare(NODE)
    noop.return_node(NODE)
    assert noop.node_health(NODE).ok and noop.app_health().ok


def test_noop_refuses_options() -> None:
    with pytest.raises(PluginError, match="no options"):
        load_workload("noop", {"prepare": "true"})
