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


def test_an_address_written_with_its_networks_prefix_is_that_address() -> None:
    """Network schemes write ``192.168.0.11/24``; with the network's own prefix it is
    unambiguous, and the environment keeps the address."""
    written = doc()
    written["nodes"][1]["addresses"]["management"] = "192.168.0.12/24"
    env = Environment.parse(written)
    assert str(env.nodes[1].addresses["management"]) == "192.168.0.12"
    assert env == Environment.parse(doc())  # the sample writes 192.168.0.12


def test_an_address_with_another_prefix_or_none_at_all_is_refused() -> None:
    bad = doc()
    bad["nodes"][1]["addresses"]["management"] = "192.168.0.12/16"
    with pytest.raises(UsageError, match=r"192\.168\.0\.12/16 is not in network management"):
        Environment.parse(bad)
    elided = doc()
    elided["nodes"][1]["addresses"] = {"...": None}  # what ``addresses: {...}`` reads as
    with pytest.raises(UsageError, match=r"addresses: '\.\.\.' has no address"):
        Environment.parse(elided)


@pytest.mark.parametrize(
    "networks", [[{"name": {}, "cidr": "192.168.0.0/24"}], {"management": {}}, "management", None]
)
def test_networks_of_the_wrong_shape_are_refused_as_bad_input(networks: object) -> None:
    """What the API receives is parsed as it comes: a network named by a mapping (which
    cannot name anything) is refused as bad input, never an error of Ephyra's."""
    bad = doc()
    bad["networks"] = networks
    with pytest.raises(UsageError, match="networks"):
        Environment.parse(bad)
