"""``ephyra inventory show`` as an operator runs it, on files (static YAML, Ansible)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ephyra.cli.main import main

STATIC = """\
hosts:
  ctl-1: {roles: [controller], services: [nova-api, nova-conductor]}
  cmp-1: {services: [nova-compute], servers: 4}
"""
ANSIBLE = """\
[compute]
cmp-1 rack=r1
cmp-2
[network]
net-1
"""


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Two sources, named by paths relative to the working directory."""
    monkeypatch.chdir(tmp_path)
    Path("inv.yaml").write_text(STATIC)
    Path("hosts.ini").write_text(ANSIBLE)
    return "static:inv.yaml", "ansible:hosts.ini"


def _show(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_table(files: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    static, ansible = files
    code, out, _ = _show(capsys, "inventory", "show", "--source", static, "--source", ansible)
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert {"cmp-1", "cmp-2", "ctl-1", "net-1"} <= set(lines)
    assert "nova-compute:unknown" in lines["cmp-1"] and " 4 " in lines["cmp-1"]
    assert static in lines["cmp-1"] and ansible in lines["cmp-1"]  # both sources know it
    assert "controller" in lines["ctl-1"] and "nova-api:unknown" in lines["ctl-1"]
    assert "network" in lines["net-1"]
    assert "4 host(s)" in out


def test_json_and_a_role_filter(files: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    static, ansible = files
    code, out, _ = _show(
        capsys, "--format", "json", "inventory", "show", "--source", static,
        "--source", ansible, "--role", "compute",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert [h["name"] for h in data["hosts"]] == ["cmp-1", "cmp-2"]
    (cmp1,) = [h for h in data["hosts"] if h["name"] == "cmp-1"]
    assert cmp1["facts"]["rack"] == "r1" and cmp1["servers"] == 4
    assert data["sources"] == [static, ansible]


def test_yaml_output_reads_back_as_a_static_source(
    files: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    static, ansible = files
    args = ["--source", static, "--source", ansible]
    code, first, _ = _show(capsys, "--format", "yaml", "inventory", "show", *args)
    assert code == 0
    saved = tmp_path / "saved.yaml"
    saved.write_text(first)
    code, second, _ = _show(
        capsys, "--format", "yaml", "inventory", "show", "--source", f"static:{saved}"
    )
    assert code == 0
    assert yaml.safe_load(second) == yaml.safe_load(first)
    assert second == first


def test_bad_input_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OS_CLOUD", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts: {cmp-1: {rolez: [compute]}}\n")
    code, _, err = _show(capsys, "inventory", "show", "--source", f"static:{bad}")
    assert code == 2
    assert f"static inventory {bad}: hosts.cmp-1.rolez: unknown key" in err
    code, _, err = _show(capsys, "inventory", "show")
    assert code == 2 and "--source" in err
    code, _, err = _show(capsys, "inventory", "show", "--source", "nosuch:x")
    assert code == 2 and "no ephyra.inventory plugin named 'nosuch'" in err


def test_help_lists_the_sources_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["inventory", "show", "--help"])
    out = capsys.readouterr().out
    assert "--source KIND[:ARG]" in out and "--role ROLE" in out
    assert "exit codes:" in out and "2    usage or bad input" in out
    with pytest.raises(SystemExit):
        main(["inventory", "--help"])
    out = capsys.readouterr().out
    assert "puppetdb:URL" in out and "ansible:INVENTORY" in out
