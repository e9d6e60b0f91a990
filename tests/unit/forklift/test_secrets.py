from pathlib import Path

import pytest

from ephyra.errors import PluginError, SecretsUnavailable, UsageError
from ephyra.forklift.model import NodeSnapshot
from ephyra.forklift.secrets import FileCredentials, NoCredentials, deployable, load_credentials
from tests.unit.forklift.test_model import node


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "creds.yaml"
    path.write_text(text)
    return path


def test_file_gives_per_node_then_default_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults: {ipmi_password: d}\nnodes:\n  n1: {ipmi_password: one}\n")
    creds = load_credentials(f"file:{path}")
    snap = NodeSnapshot.of(node(), [])
    other = NodeSnapshot.of(node(id="u2", name="n2"), [])
    assert creds.secrets(snap, None) == {"ipmi_password": "one"}  # type: ignore[arg-type]
    assert creds.secrets(other, None) == {"ipmi_password": "d"}  # type: ignore[arg-type]


def test_file_without_the_field_is_reported(tmp_path: Path) -> None:
    creds = FileCredentials(str(write(tmp_path, "nodes: {n9: {ipmi_password: x}}\n")))
    snap = NodeSnapshot.of(node(), [])
    assert creds.missing(snap) == ["ipmi_password"]
    with pytest.raises(SecretsUnavailable, match="has no ipmi_password"):
        creds.secrets(snap, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["[1, 2]", "nodes: [a]", "{unclosed"])
def test_malformed_file_is_a_usage_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(UsageError):
        FileCredentials(str(write(tmp_path, text)))


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read credential file"):
        FileCredentials(str(tmp_path / "nope.yaml"))


def test_no_source_lacks_every_secret() -> None:
    snap = NodeSnapshot.of(node(), [])
    assert NoCredentials().missing(snap) == ["ipmi_password"]


def test_unknown_source_kind() -> None:
    with pytest.raises(PluginError, match=r"no ephyra\.credentials plugin named 'vault'"):
        load_credentials("vault:x")


def test_a_deploy_gets_the_instance_info_secrets_from_the_file_only(tmp_path: Path) -> None:
    """The snapshot masks the config drive and an image URL's password; the file gives
    them back for the deploy; a source without them names what it lacks."""
    info = {"image_source": "http://u:pw@images/img", "configdrive": "******", "root_gb": 10}
    snap = NodeSnapshot.of(node(instance_info=info), [])
    assert snap.instance_secret_fields == ["configdrive", "image_source"]
    path = write(
        tmp_path,
        "nodes:\n  n1:\n    ipmi_password: x\n    instance_info:\n"
        "      configdrive: H4sI\n      image_source: http://u:pw@images/img\n",
    )
    full = deployable(snap, FileCredentials(str(path)))
    assert full == {**info, "configdrive": "H4sI"}
    with pytest.raises(SecretsUnavailable, match="has no instance_info configdrive, image_source"):
        deployable(snap, NoCredentials())
    assert deployable(NodeSnapshot.of(node(), []), NoCredentials()) == {
        "image_source": "http://x/img"
    }
