"""No value from a caller, an inventory or a store is parsed by a shell.

Hypothesis fuzzes host names, versions and other values (shell metacharacters, quotes,
newlines, ``/``, ``..``, NUL, very long text) through ``render``, the ``via`` argv, the
environment of a command, the gates and the agent: either the pattern refuses the value
before anything runs, or a real ``sh`` prints the value back byte for byte.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ephyra.agent.loop import REFUSED, Agent, AgentConfig
from ephyra.errors import StrategyFailed, UsageError
from ephyra.names import is_name, is_version
from ephyra.strategies import base
from ephyra.strategies.base import Invocation, Target, build, on_host, render
from ephyra.strategies.shell import shell_argv
from ephyra.upgrade.gates import Gate
from ephyra.upgrade.spec import Check, Gates
from ephyra.versions import lifecycle
from ephyra.versions.keys import Keys
from ephyra.versions.store import open_store

HOSTILE = [
    "2025.2;touch PWNED;echo",
    "$(touch PWNED)",
    "`touch PWNED`",
    "a'b\"c",
    "x\ny",
    "../../x",
    "..",
    "a/b",
    "-oProxyCommand=touch PWNED",
    "a\x00b",
    "a b",
    "${IFS}",
    "*",
    "~root",
    "x" * 5000,
    "",
]
#: Arbitrary text, the shell's special characters made likely (no surrogates: not text).
NASTY = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(";&|$`'\"\\()<>{}[]*?~#!=%^ \t\n\r/.-:@+_")),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=300,
)
#: What an argv or an environment can hold: anything but NUL.
RUNNABLE = NASTY.map(lambda text: text.replace("\x00", ""))
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PRINT = "printf '%s\\n' {host} {version}"


def sh(command: str, env: dict[str, str] | None = None) -> bytes:
    """What ``sh -c command`` prints on its standard output, as bytes."""
    done = subprocess.run(
        ["sh", "-c", command],
        capture_output=True,
        env={**os.environ, **(env or {})},
        check=True,
        timeout=60,
    )
    return done.stdout


def run(call: Invocation) -> bytes:
    """An invocation started as ``stream`` starts it, its standard output as bytes."""
    done = subprocess.run(
        list(call.argv),
        input=None if call.script is None else call.script.encode(),
        capture_output=True,
        env={**os.environ, **call.env},
        check=True,
        timeout=60,
    )
    return done.stdout


@given(host=NASTY, version=NASTY)
@example(host="cmp-1", version="2:29.0.0-0ubuntu1~cloud0")
@FUZZ
def test_a_host_and_version_are_refused_or_printed_back_exactly(host: str, version: str) -> None:
    target = Target(host, version)
    if not is_name(host) or (version and not is_version(version)):
        with pytest.raises(UsageError, match="refused"):
            render(PRINT, target, shell=True)
        return
    command = render(PRINT, target, shell=True)
    assert sh(command) == f"{host}\n{version}\n".encode()


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_hosts_and_versions_are_refused_before_a_command_exists(
    bad: str, tmp_path: Path
) -> None:
    for target in (Target(bad, "1.0"), Target("cmp-1", bad)):
        if bad == "" and target.version == "":
            continue  # no version: the agent asking what runs now
        with pytest.raises(UsageError, match="refused"):
            render(f"touch {tmp_path}/ran", target, shell=True)
        with pytest.raises(UsageError, match="refused"):
            on_host(["true"], {"via": "ssh {host}"}, target)
    assert not (tmp_path / "ran").exists()


@given(value=RUNNABLE, services=st.lists(RUNNABLE, max_size=4))
@FUZZ
def test_any_other_value_is_one_word_to_the_shell(value: str, services: list[str]) -> None:
    target = Target("cmp-1", "1.0", tuple(services))
    command = render("printf '%s\\n' {extra} {services}", target, shell=True, extra=value)
    assert sh(command) == "".join(f"{v}\n" for v in (value, *services)).encode()


@given(host=NASTY)
@example(host="cmp-1")
@FUZZ
def test_a_via_prefix_is_split_before_it_is_filled(host: str) -> None:
    options = {"via": "ssh -o 'BatchMode yes' root@{host}"}
    target = Target(host, "1.0")
    if not is_name(host):
        with pytest.raises(UsageError, match="refused"):
            on_host(["true"], options, target)
        return
    call = on_host(["true"], options, target)
    assert call.argv == ("ssh", "-o", "BatchMode yes", f"root@{host}", "sh -s")


@given(words=st.lists(RUNNABLE, min_size=1, max_size=4), secret=RUNNABLE)
@FUZZ
def test_through_via_argv_and_env_reach_the_command_exactly_and_env_not_in_argv(
    words: list[str], secret: str
) -> None:
    argv = ["sh", "-c", 'printf "%s\\n" "$@"; printf "%s\\n" "$SECRET"', "sh", *words]
    target = Target("cmp-1", "1.0")
    call = on_host(argv, {"via": "env VIA=1 sh -c"}, target, {"SECRET": secret})
    assert call.argv == ("env", "VIA=1", "sh", "-c", "sh -s")  # no value in argv
    assert run(call) == "".join(f"{w}\n" for w in (*words, secret)).encode()
    local = on_host(argv, {}, target, {"SECRET": secret})
    assert local == Invocation(tuple(argv), {"SECRET": secret})  # argv as given, env aside
    assert run(local) == "".join(f"{w}\n" for w in (*words, secret)).encode()


def test_a_strategy_env_value_never_stands_in_the_process_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command strategy's env option, seen from ``ps``: the secret is in the
    command's environment, not in any process's arguments."""
    seen, got = tmp_path / "seen", tmp_path / "got"
    monkeypatch.setenv("UPGRADE_TOKEN", "s3cret-value")
    strategy = build(
        {
            "type": "command",
            "upgrade": f'ps -eo args > {seen}; printf %s "$TOKEN" > {got}',
            "env": {"TOKEN": {"from_env": "UPGRADE_TOKEN"}},
            "via": "sh -c",
        }
    )
    strategy.upgrade(Target("cmp-1", "2.0"), lambda line: None)
    listing = seen.read_text()
    assert "sh -s" in listing and "s3cret-value" not in listing
    assert got.read_text() == "s3cret-value"


@given(host=NASTY)
@example(host="cmp-1")
@example(host="cmp-1;touch PWNED")
@FUZZ
def test_a_gate_check_whose_host_is_hostile_never_runs(host: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.unlink(missing_ok=True)
    check = Check("print", f"printf '%s\\n' {{host}} > {out}")
    gate = Gate(Gates(checks=(check,)), None, Target(host, "1.0"), since=0)
    if not is_name(host):
        with pytest.raises(UsageError, match="refused"):
            gate.failures()
        assert not out.exists()
        return
    assert gate.failures() == []
    assert out.read_bytes() == f"{host}\n".encode()


def test_a_gate_check_past_its_timeout_is_stopped_and_red() -> None:
    gate = Gate(
        Gates(checks=(Check("slow", "sleep 30", timeout=0.5),)), None, Target("cmp-1", "1"), 0
    )
    started = time.monotonic()
    assert gate.failures() == ["slow timed out after 0.5s: (no output)"]
    assert time.monotonic() - started < 25  # stopped, not left to its 30 s


def test_a_command_without_a_timeout_gets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (base.COMMAND_TIMEOUT, base.CHECK_TIMEOUT, base.REBOOT_TIMEOUT) == (1800, 60, 600)
    monkeypatch.setattr(base, "COMMAND_TIMEOUT", 0.5)
    started = time.monotonic()
    with pytest.raises(StrategyFailed, match=r"timed out after 0.5s"):
        base.stream(shell_argv("sleep 30", Target("cmp-1", "1")), lambda line: None)
    assert time.monotonic() - started < 25  # stopped, not left to its 30 s


@given(found=NASTY)
@example(found="2025.2;touch PWNED;echo")
@example(found="../../x")
@example(found="3.0")
@FUZZ
def test_the_agent_takes_a_valid_desired_version_and_records_any_other_as_refused(
    found: str, tmp_path: Path
) -> None:
    said: list[str] = []
    ran = tmp_path / "ran"
    strategy = build({"type": "command", "upgrade": f"touch {ran}"})
    config = AgentConfig("cmp-1", {"compute": "10.0.0.1"}, strategy, log_dir=tmp_path / "logs")
    with open_store(f"sqlite:///{tmp_path / 'v.db'}") as store:
        keys = Keys(f"/k{time.monotonic_ns()}")
        agent = Agent(store, keys, config, say=said.append)
        want = agent._checked(found)
        state = lifecycle.state_of(store, keys, "cmp-1")
        if is_version(found):
            assert want == found and not said and state.service is None
            return
        assert want is None
        assert (state.service, state.version) == ("configured/failure", REFUSED)
        assert len(said) == 1 and "refused" in said[0]
        assert agent._checked(found) is None and len(said) == 1  # said once per value
        keys_written = store.range(keys.status())
        assert list(keys_written) == [keys.status("configured/failure", REFUSED, "cmp-1")]
    assert not ran.exists() and not (tmp_path / "logs").exists()


def test_quoted_values_keep_valid_names_as_they_are() -> None:
    """Valid names are shell-safe words: today's templates see them unchanged."""
    target = Target("cmp-1.example.org", "2026.2", ("nova-compute", "nova-api"))
    assert render("{host} {version} {services}", target, shell=True) == (
        "cmp-1.example.org 2026.2 nova-compute nova-api"
    )
    assert render("{version}", Target("h", "1:2~b"), shell=True) == shlex.quote("1:2~b")
