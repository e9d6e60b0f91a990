"""An environment's state changes."""

from __future__ import annotations

import pytest

from ephyra.errors import IllegalTransition, UsageError
from ephyra.netscheme.lifecycle import installed, upgrade
from tests.unit.netscheme.sample import env


def test_upgrade_refuses_what_makes_no_sense() -> None:
    with pytest.raises(UsageError, match="already runs release 1"):
        env("lnx", upgrade(1))
    with pytest.raises(IllegalTransition, match="already being upgraded to release 2"):
        env("lnx", upgrade(2), upgrade(3))
    with pytest.raises(UsageError, match="no node nope"):
        env("lnx", upgrade(2, ["nope"]))
    with pytest.raises(IllegalTransition, match="no pending release"):
        env("lnx", installed("ctl-2"))


def test_the_last_node_installed_makes_the_environment_operational() -> None:
    e = env("lnx", upgrade(2, ["ctl-1", "ctl-2", "ctl-3", "cmp-1"]))
    for name in ("ctl-1", "ctl-2", "ctl-3"):
        e = installed(name)(e)
        assert e.status == "upgrade"
    e = installed("cmp-1")(e)
    assert e.status == "operational" and {n.release_id for n in e.nodes} == {2}
