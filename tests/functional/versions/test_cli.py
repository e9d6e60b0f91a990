"""``ephyra version``, ``roles`` and ``hiera`` as an operator types them, on a real etcd and
on SQLite: exit codes, bad input, the history, and Hiera's file kept up to date."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ephyra.cli.main import main
from ephyra.versions import lifecycle, roles
from ephyra.versions.keys import Keys
from ephyra.versions.store import Store


def ephyra(store_url: str, keys: Keys, *args: str) -> int:
    return main(["--store", store_url, "--prefix", keys.prefix, *args])


def running(store: Store, keys: Keys, version: str, *hosts: str) -> None:
    for host in hosts:
        lifecycle.report_running(store, keys, host, version, None)


def test_verify_exits_0_only_when_every_host_runs_the_version(
    store_url: str, store: Store, keys: Keys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running(store, keys, "2.0", "h1", "h2")
    running(store, keys, "1.0", "h3")
    assert ephyra(store_url, keys, "version", "verify", "2.0", "h1", "h2") == 0
    assert "all 2 host(s) run 2.0" in capsys.readouterr().out
    listed = tmp_path / "hosts"
    listed.write_text("h1\nh2\nh3\n")
    assert ephyra(store_url, keys, "version", "verify", "2.0", "--hosts-file", str(listed)) == 1
    assert "1 of 3 host(s) do not run 2.0: h3" in capsys.readouterr().out
    assert ephyra(store_url, keys, "--format", "json", "version", "verify", "2.0", "h3", "h9") == 1
    assert json.loads(capsys.readouterr().out) == {
        "version": "2.0",
        "ok": False,
        "missing": ["h3", "h9"],
    }
    assert ephyra(store_url, keys, "version", "verify", "2.0") == 2
    assert "name the hosts to verify" in capsys.readouterr().err


def test_trigger_keeps_a_history_and_refuses_bad_rules(
    store_url: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ephyra(store_url, keys, "version", "trigger", "1.0") == 0
    assert ephyra(store_url, keys, "version", "trigger", "2.0", "--max-at-once", "db=2") == 0
    assert "current version 2.0 (was 1.0)" in capsys.readouterr().out
    for bad, said in [
        (["--max-at-once", "db=some"], "not ROLE=N or ROLE=all"),
        (["--max-at-once", "db=-1"], "cannot be negative"),
        (["--after", "a=b", "--after", "b=a"], "goes round in a circle: a -> b -> a"),
        (["--after", "compute"], "not ROLE=DEP"),
    ]:
        assert ephyra(store_url, keys, "version", "trigger", "3.0", *bad) == 2
        assert said in capsys.readouterr().err
    assert ephyra(store_url, keys, "version", "trigger", "bad/version") == 2
    assert "VERSION 'bad/version' refused" in capsys.readouterr().err
    assert ephyra(store_url, keys, "--format", "json", "version", "history") == 0
    history = json.loads(capsys.readouterr().out)
    assert [(t["version"], t["previous"], t["rules"]["max_at_once"]) for t in history] == [
        ("1.0", "", {}),
        ("2.0", "1.0", {"db": 2}),
    ]


def test_status_names_failures_with_the_link_to_their_log(
    store_url: str, store: Store, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ephyra(store_url, keys, "version", "trigger", "2.0") == 0
    running(store, keys, "2.0", "h1")
    running(store, keys, "1.0", "h2")
    for state in ("configured/success", "validated/success"):
        lifecycle.set_state(store, keys, "h1", state, "2.0")
    log = "https://swift.example/logs/h2/2.0.log"
    lifecycle.set_state(
        store, keys, "h2", "configured/failure", "2.0", lifecycle.record("apt: held", log)
    )
    capsys.readouterr()
    assert ephyra(store_url, keys, "--format", "json", "version", "status") == 0
    found = json.loads(capsys.readouterr().out)
    assert found["current_version"] == "2.0"
    assert found["running"] == {"1.0": 1, "2.0": 1}
    assert found["converged"] == 1
    rows = {r["host"]: r for r in found["hosts"]}
    assert (rows["h2"]["state"], rows["h2"]["message"], rows["h2"]["log"]) == (
        "configured/failure",
        "apt: held",
        log,
    )
    assert ephyra(store_url, keys, "version", "status", "--failed") == 0
    table = capsys.readouterr().out
    assert "h2" in table and "swift.example" in table and " h1 " not in table


def test_hiera_export_rewrites_its_file_when_roles_change(
    store_url: str, store: Store, keys: Keys, tmp_path: Path
) -> None:
    assert ephyra(store_url, keys, "version", "trigger", "2.0") == 0
    roles.publish(store, keys, "2.0", "db-1", {"db": "10.0.0.1"}, {"eth2": "10.2.0.1"}, None)
    out = tmp_path / "hieradata" / "active_roles.yaml"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "ephyra.cli.main", "--store", store_url, "--prefix", keys.prefix,
         "hiera", "export", "--watch", "--output", str(out), "--poll", "0.5"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not out.exists():
            assert time.monotonic() < deadline and watcher.poll() is None
            time.sleep(0.1)
        assert yaml.safe_load(out.read_text())["etcdlookup::active_roles::db"] == {
            "db-1": {"address": "10.0.0.1", "eth2": "10.2.0.1"}
        }
        roles.publish(store, keys, "2.0", "db-2", {"db": "10.0.0.2"}, {}, None)
        changed = time.monotonic()
        while "db-2" not in out.read_text():
            assert time.monotonic() - changed < 5, "not rewritten"
            time.sleep(0.05)
        assert sorted(yaml.safe_load(out.read_text())["etcdlookup::active_roles::db"]) == [
            "db-1",
            "db-2",
        ]
    finally:
        watcher.terminate()
        watcher.wait(10)


def test_roles_without_a_version_say_how_to_name_one(
    store_url: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ephyra(store_url, keys, "roles", "hosts-of", "db") == 2
    assert "no version is triggered yet" in capsys.readouterr().err
    assert (
        ephyra(store_url, keys, "--format", "json", "roles", "hosts-of", "db", "--version", "1")
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {}
