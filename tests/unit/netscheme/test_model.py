"""The environment model's checks."""

from __future__ import annotations

import pytest

from ephyra.errors import UsageError
from ephyra.netscheme.model import Environment
from tests.unit.netscheme.sample import doc


def test_a_bad_environment_is_refused_with_what_is_wrong() -> None:
    bad = doc()
    bad["vips"][0]["address"] = "10.0.0.2"
    with pytest.raises(UsageError, match=r"is not in 192\.168\.0\.0/24"):
        Environment.parse(bad)
    bad = doc()
    bad["nodes"][1]["addresses"]["management"] = "192.168.0.2"
    with pytest.raises(UsageError, match="also VIP management's"):
        Environment.parse(bad)
    bad = doc()
    bad["networks"][0]["bridge"] = "a-bridge-name-too-long"
    with pytest.raises(UsageError, match=r"networks\.0\.bridge"):
        Environment.parse(bad)
