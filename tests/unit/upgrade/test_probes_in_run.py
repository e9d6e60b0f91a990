"""A run whose probes cannot be made where it runs is left paused, saying why, before it
touches a unit."""

from __future__ import annotations

from pathlib import Path

import icmplib
import pytest

from ephyra.engine.states import RunState
from ephyra.errors import UsageError
from tests.unit.probes.test_icmp import Denied
from tests.unit.upgrade.test_runner import Env, _spec
from tests.unit.upgrade.upgrade_fakes import WORLD, World


def test_a_run_that_may_not_ping_here_is_left_paused_saying_why_and_goes_on_once_it_may(
    tmp_path: Path, fake_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Env(tmp_path)
    spec = _spec(probes={"targets": [{"name": "fip", "type": "icmp", "target": "127.0.0.1"}]})
    allowed = icmplib.ICMPv4Socket
    monkeypatch.setattr(icmplib, "ICMPv4Socket", Denied)  # planned here, run where it may not
    with pytest.raises(UsageError, match="the icmp probe needs an ICMP socket"):
        env.start(spec, computes=1)
    (run,) = env.journal.runs("upgrade")
    assert run.state is RunState.PAUSED and WORLD.calls == []
    assert "the icmp probe needs an ICMP socket" in run.reason
    with pytest.raises(UsageError, match="the icmp probe needs an ICMP socket"):
        env.resume()  # still paused, nothing begun
    assert env.journal.runs("upgrade")[0].state is RunState.PAUSED and WORLD.calls == []
    monkeypatch.setattr(icmplib, "ICMPv4Socket", allowed)
    assert env.resume().state is RunState.SUCCEEDED
