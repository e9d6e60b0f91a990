"""A real forklift run: the state it leaves is its owner's only, and the journal holds
masks where the nodes have BMC secrets (IPMI Kg and SNMP keys too, which Ironic's API
shows in clear)."""

from __future__ import annotations

import base64
import gzip
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.ironic import Testbed
from testbed.seed import StateWaiter, enroll, node_spec, snapshot
from tests.functional.ephyra_cli import Ephyra
from tests.functional.invariants import assert_home, stored_secret
from tests.functional.test_api import ADMIN, TOKENS, Server

pytestmark = pytest.mark.functional

#: BMC secrets besides ipmi_password; Ironic's API masks only the SNMP auth and priv keys.
EXTRA_SECRETS = ("ipmi_kg", "snmp_auth_key", "snmp_priv_key", "snmp_community")
CP1_TO_CP2 = ("--from", "cp1", "--to", "cp2")


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what the files would get if Ephyra did not say otherwise
    yield
    os.umask(old)


def seed(tb: Testbed, count: int) -> list[dict[str, Any]]:
    conn = tb.connect("cp1")
    waiter = StateWaiter(conn)
    specs = []
    for index in range(count):
        spec = node_spec(index)
        spec["create"]["driver_info"].update(
            {key: f"{key}-{index}-{os.urandom(6).hex()}" for key in EXTRA_SECRETS}
        )
        enroll(conn, spec, waiter)
        specs.append(spec)
    return specs


def secrets_of(spec: dict[str, Any]) -> dict[str, str]:
    info = spec["create"]["driver_info"]
    return {k: v for k, v in info.items() if k in ("ipmi_password", *EXTRA_SECRETS)}


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_a_move_keeps_private_state_and_only_masks(
    clean_testbed: Testbed, tmp_path: Path, usual_umask: None
) -> None:
    tb = clean_testbed
    specs = seed(tb, 2)
    original = snapshot(tb.connect("cp1"))
    assert original[specs[0]["create"]["uuid"]]["driver_info"]["ipmi_kg"] != "******"
    creds = tmp_path / "credentials.yaml"
    creds.write_text(yaml.safe_dump({"nodes": {s["create"]["name"]: secrets_of(s) for s in specs}}))
    state = tmp_path / "state"
    (state / "ephyra").mkdir(parents=True)
    os.chmod(state / "ephyra", 0o755)  # as an older Ephyra left it
    ephyra = Ephyra(tb.clouds_yaml, state)

    partial = tmp_path / "partial.yaml"
    partial.write_text(
        yaml.safe_dump({"nodes": {s["create"]["name"]: {"ipmi_password": "x"} for s in specs}})
    )
    refused = ephyra("forklift", "plan", *CP1_TO_CP2, "--credentials", f"file:{partial}")
    assert refused.code == 2
    assert "node-0000: cp1 masks ipmi_kg, snmp_auth_key, snmp_community, snmp_priv_key" in (
        refused.err
    )

    plan = ephyra(
        "--format",
        "json",
        "forklift",
        "plan",
        "--from",
        "cp1",
        "--to",
        "cp2",
        "--credentials",
        f"file:{creds}",
    )
    assert plan.code == 0, plan.err
    moved = ephyra("forklift", "start", *CP1_TO_CP2, "--credentials", f"file:{creds}")
    assert moved.code == 0, moved.err
    tightened = f"{state / 'ephyra'} was mode 0755, readable by others: now 0700"
    assert (refused.err + plan.err + moved.err).count(tightened) == 1  # said once
    for spec in specs:  # the real values arrived in cp2, though cp1 showed some masked
        for key, value in secrets_of(spec).items():
            assert stored_secret(tb, "cp2", spec["create"]["uuid"], key) == value
    status = ephyra("--format", "json", "forklift", "status")
    assert status.code == 0
    assert yaml.safe_load(status.out)["counts"] == {"moved": 2}

    root = state / "ephyra"
    files = modes(root)
    assert files["."] == 0o700
    assert files["journal.db"] == 0o600 and files["locks"] == 0o700
    # in the 0700 locks directory, tooz's files keep its own modes: no one else reaches them
    wider = {
        name: oct(mode)
        for name, mode in files.items()
        if mode & 0o077 and not name.startswith("locks/")
    }
    assert not wider, wider
    stored = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    shown = plan.out + plan.err + moved.out + moved.err + status.out + status.err
    for spec in specs:
        for value in secrets_of(spec).values():
            assert value.encode() not in stored
            assert value not in shown
    assert b"******" in stored  # the snapshot holds the masks

    back = ephyra("forklift", "rollback")
    assert back.code == 0, back.err
    assert_home(tb, original, "cp1")  # and the secrets came back from the credential file
    for spec in specs:
        kg = stored_secret(tb, "cp1", spec["create"]["uuid"], "ipmi_kg")
        assert kg == secrets_of(spec)["ipmi_kg"]


def test_secrets_in_instance_info_come_from_the_credential_file_or_the_node_is_refused(
    clean_testbed: Testbed, tmp_path: Path
) -> None:
    """A deployed node whose ``instance_info`` holds an image URL with a password and a
    config drive: refused while the credential file lacks them; given there, they arrive
    in cp2's database as they were in cp1's, and back, and never in Ephyra's state."""
    tb = clean_testbed
    conn = tb.connect("cp1")
    spec = node_spec(0)
    spec["instance_info"]["image_source"] = "http://mirror:Sup3rS3cret@images.internal/img.qcow2"
    enroll(conn, spec, StateWaiter(conn))
    uuid = spec["create"]["uuid"]
    drive = base64.b64encode(gzip.compress(b"user-data: Dr1veS3cret\n" * 64)).decode()
    conn.baremetal.set_node_provision_state(uuid, "rebuild", config_drive=drive, wait=False)
    StateWaiter(conn).wait(uuid, "active")
    hidden = {
        key: stored_secret(tb, "cp1", uuid, key, "instance_info")
        for key in ("image_source", "configdrive")
    }
    assert hidden == {"image_source": spec["instance_info"]["image_source"], "configdrive": drive}
    before = snapshot(conn)
    creds = tmp_path / "credentials.yaml"
    creds.write_text(yaml.safe_dump({"nodes": {"node-0000": secrets_of(spec)}}))
    ephyra = Ephyra(tb.clouds_yaml, tmp_path / "state")
    refused = ephyra("forklift", "start", *CP1_TO_CP2, "--credentials", f"file:{creds}")
    assert refused.code == 2
    said = "node-0000: instance_info configdrive, image_source hold(s) a secret the journal"
    assert said in refused.err
    assert "Sup3rS3cret" not in refused.out + refused.err
    assert snapshot(conn) == before

    given = {**secrets_of(spec), "instance_info": hidden}
    creds.write_text(yaml.safe_dump({"nodes": {"node-0000": given}}))
    moved = ephyra("forklift", "start", *CP1_TO_CP2, "--credentials", f"file:{creds}")
    assert moved.code == 0, moved.err
    for key, value in hidden.items():
        assert stored_secret(tb, "cp2", uuid, key, "instance_info") == value
    back = ephyra("forklift", "rollback")
    assert back.code == 0, back.err
    assert_home(tb, before, "cp1")
    for key, value in hidden.items():
        assert stored_secret(tb, "cp1", uuid, key, "instance_info") == value
    stored = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
    shown = moved.out + moved.err + back.out + back.err
    for secret in ("Sup3rS3cret", drive):
        assert secret.encode() not in stored and secret not in shown


def test_an_agent_keeps_its_store_and_logs_private(tmp_path: Path, usual_umask: None) -> None:
    """``ephyra agent`` with the embedded defaults: the versions store and the logs of
    its updates in the state directory, its owner's only."""
    ephyra = Ephyra(tmp_path / "no-clouds.yaml", tmp_path / "state")
    version = tmp_path / "version"
    version.write_text("1.0\n")
    trigger = ephyra("version", "trigger", "2.0", "--max-at-once", "compute=all")
    assert trigger.code == 0, trigger.err
    agent = ephyra(
        "agent",
        "--host", "cmp-1",
        "--role", "compute",
        "--address", "10.0.0.1",
        "--upgrade", f"echo {{version}} > {version}; echo upgraded {{host}}",
        "--version-command", f"cat {version}",
        "--ttl", "3",
        "--poll", "0.5",
        "--once",
        timeout=120,
    )  # fmt: skip
    assert agent.code == 0, agent.err
    assert version.read_text() == "2.0\n"
    root = tmp_path / "state" / "ephyra"
    files = modes(root)
    assert files["."] == 0o700 and files["agent-logs"] == 0o700
    assert files["versions.db"] == 0o600
    assert files["agent-logs/cmp-1-2.0.log"] == 0o600
    assert "upgraded cmp-1" in (root / "agent-logs" / "cmp-1-2.0.log").read_text()
    wider = {name: oct(mode) for name, mode in files.items() if mode & 0o077}
    assert not wider, wider


def test_the_servers_default_tokens_file_is_private(tmp_path: Path, usual_umask: None) -> None:
    """``ephyra serve`` with the default tokens file: made 0600 in a 0700 state directory,
    and an older one, readable by others, tightened."""
    fresh = Ephyra(tmp_path / "no-clouds.yaml", tmp_path / "fresh")
    server = Server(fresh, tmp_path, auth=[])
    try:
        made = tmp_path / "fresh" / "ephyra" / "api-tokens.yaml"
        assert modes(made.parent)["."] == 0o700 and modes(made)["."] == 0o600
    finally:
        assert server.stop() in (0, -15)  # uvicorn ends by the SIGTERM it handled
    old = Ephyra(tmp_path / "no-clouds.yaml", tmp_path / "old")
    tokens = tmp_path / "old" / "ephyra" / "api-tokens.yaml"
    tokens.parent.mkdir(parents=True)
    tokens.write_text(yaml.safe_dump(TOKENS))
    os.chmod(tokens.parent, 0o755)
    os.chmod(tokens, 0o644)
    server = Server(old, tmp_path, auth=[])
    try:
        assert server.call("GET", "/v1/runs", token=ADMIN).status_code == 200
        assert modes(tokens.parent)["."] == 0o700 and modes(tokens)["."] == 0o600
    finally:
        assert server.stop() in (0, -15)  # uvicorn ends by the SIGTERM it handled
    log = (tmp_path / "serve.log").read_text()
    assert f"{tokens} was mode 0644, readable by others: now 0600" in log
