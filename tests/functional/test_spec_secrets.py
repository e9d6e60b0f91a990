"""A real upgrade whose command strategy gets a database password by reference: the
command sees the password, read when it runs; the journal, its WAL and every output
hold only the reference."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml

from ephyra.strategies.base import Target, build
from tests.functional.ephyra_cli import Ephyra

pytestmark = pytest.mark.functional

INVENTORY = Path(__file__).resolve().parent / "strategies" / "ansible" / "inventory.ini"

#: Each command writes the SHA-256 of what it sees in $DB_PASS and $FILE_PASS, and the
#: version it took the host to.
SEEN = (
    'printf %s "$DB_PASS" | sha256sum > {dir}/{what}-db; '
    'printf %s "$FILE_PASS" | sha256sum > {dir}/{what}-file; '
    "echo {{version}} > {dir}/version"
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def seen(out: Path, what: str) -> tuple[str, str]:
    return tuple(  # type: ignore[return-value]
        (out / f"{what}-{kind}").read_text().split()[0] for kind in ("db", "file")
    )


def write(tmp_path: Path, env: dict[str, object]) -> tuple[Path, Path, Path]:
    out = tmp_path / "seen"
    out.mkdir(exist_ok=True)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "hosts": [
                    {
                        "name": "ctl-1",
                        "roles": ["controller"],
                        "services": [{"name": "keystone", "project": "identity"}],
                    }
                ]
            }
        )
    )
    spec = tmp_path / "spec.yaml"
    (out / "version").write_text("2026.1\n")
    command = {
        "type": "command",
        "upgrade": SEEN.format(dir=out, what="upgrade"),
        "downgrade": SEEN.format(dir=out, what="downgrade"),
        "version": f"cat {out}/version",
        "env": env,
    }
    spec.write_text(
        yaml.safe_dump(
            {
                "release": "2026.2",
                "strategies": {"default": command},
                "gates": {"services_up": False},
            }
        )
    )
    return spec, inventory, out


def test_a_password_by_reference_reaches_the_command_and_never_the_journal(
    tmp_path: Path,
) -> None:
    first, second, in_file = (f"{w}-{os.urandom(8).hex()}" for w in ("pw1", "pw2", "pwf"))
    secret_file = tmp_path / "file.pass"
    secret_file.write_text(in_file + "\n")
    secret_file.chmod(0o600)
    spec, inventory, out = write(
        tmp_path,
        {"DB_PASS": {"from_env": "DB_PASS"}, "FILE_PASS": {"from_file": str(secret_file)}},
    )
    ephyra = Ephyra(tmp_path / "no-clouds.yaml", tmp_path / "state")
    source = ("--spec", str(spec), "--source", f"static:{inventory}")

    done = ephyra("upgrade", "start", "--yes", *source, env={"DB_PASS": first})
    assert done.code == 0, done.err
    assert seen(out, "upgrade") == (sha(first), sha(in_file))  # the final newline dropped
    status = ephyra("--format", "json", "upgrade", "status")
    assert json.loads(status.out)["state"] == "succeeded"

    # read when the step runs: the rollback's downgrade sees what is there then
    secret_file.write_text(second)
    back = ephyra("upgrade", "rollback", env={"DB_PASS": second})
    assert back.code == 0, back.err
    assert seen(out, "downgrade") == (sha(second), sha(second))
    assert (out / "version").read_text() == "2026.1\n"

    state = tmp_path / "state" / "ephyra"
    stored = b"".join(p.read_bytes() for p in state.rglob("*") if p.is_file())
    assert b"from_env" in stored and b"DB_PASS" in stored  # the reference is kept
    shown = done.out + done.err + status.out + status.err + back.out + back.err
    for secret in (first, second, in_file):
        assert secret.encode() not in stored
        assert secret not in shown


def test_a_password_written_in_the_spec_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    spec, inventory, out = write(tmp_path, {"DB_PASSWORD": "hunter2-plain", "FILE_PASS": "x"})
    ephyra = Ephyra(tmp_path / "no-clouds.yaml", tmp_path / "state")
    result = ephyra(
        "upgrade", "start", "--yes", "--spec", str(spec), "--source", f"static:{inventory}"
    )
    assert result.code == 2
    assert "spec.strategies.default.env.DB_PASSWORD: looks like a secret" in result.err
    assert "{from_env: NAME}" in result.err
    assert "hunter2-plain" not in result.err + result.out
    assert sorted(p.name for p in out.iterdir()) == ["version"]  # nothing ran
    missing = write(tmp_path, {"DB_PASS": {"from_env": "DB_PASS"}})[0]
    ephyra.env.pop("DB_PASS", None)  # not in the environment of the process that runs it
    failed = ephyra(
        "upgrade", "start", "--yes", "--spec", str(missing), "--source", f"static:{inventory}"
    )
    assert failed.code == 1
    assert "DB_PASS is not in the environment of Ephyra" in failed.err


def test_an_ansible_extravar_by_reference_reaches_the_play(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    playbook = tmp_path / "secret.yml"
    playbook.write_text(
        "- hosts: all\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Write what the play was given\n"
        "      ansible.builtin.copy:\n"
        '        dest: "{{ out_file }}"\n'
        "        content: \"{{ db_password | hash('sha256') }} {{ db.token | hash('sha256') }}\"\n"
    )
    token_file = tmp_path / "token"
    token_file.write_text("tok-" + os.urandom(8).hex())
    out = tmp_path / "seen"
    strategy = build(
        {
            "type": "ansible",
            "playbook": str(playbook),
            "inventory": str(INVENTORY),
            "extravars": {
                "out_file": str(out),
                "db_password": {"from_env": "DB_PASS"},
                "db": {"token": {"from_file": str(token_file)}},
            },
        }
    )
    password = "pw-" + os.urandom(8).hex()
    monkeypatch.setenv("DB_PASS", password)
    lines: list[str] = []
    strategy.upgrade(Target("localhost", "2026.2", ("demo",)), lines.append)
    assert out.read_text() == f"{sha(password)} {sha(token_file.read_text())}"
    assert password not in "\n".join(lines)
