"""docs/security.md's examples are what the code takes: the serve configuration loads
with the limits it states, and the specification's strategy builds with its secret
references (and refuses the same secret written in plain)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ephyra.api.config import Named, ServeConfig
from ephyra.errors import UsageError
from ephyra.strategies.base import build

DOC = Path(__file__).resolve().parents[3] / "docs" / "security.md"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_serve_configuration_example_loads(tmp_path: Path) -> None:
    (block,) = [b for b in yaml_blocks() if "credentials:" in b and "limits:" in b]
    path = tmp_path / "serve.yaml"
    path.write_text(block)
    config = ServeConfig.load(path)
    assert config.limits.body_bytes == 1_048_576
    assert config.limits.streams_per_caller == 4
    named = Named(config)
    assert named.credentials("dc1") == "file:/etc/ephyra/bmc.yaml"
    with pytest.raises(UsageError):
        named.credentials("file:/etc/ephyra/bmc.yaml")


def test_the_secret_references_example_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = [b for b in yaml_blocks() if "from_env" in b]
    options = yaml.safe_load(re.sub(r"(?m)^  ", "", block))["strategies"]["nova"]
    build(options)
    plain = {**options, "env": {"DB_PASSWORD": "s3cret"}}
    with pytest.raises(UsageError, match="from_env"):
        build(plain)
