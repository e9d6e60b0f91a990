"""In-process operations on runs: the run an action targets is the run service's choice,
and a kind's typed status goes out as its JSON."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from ephyra.engine.journal import RunInfo
from ephyra.engine.states import RunState
from ephyra.errors import IllegalTransition, UsageError
from ephyra.operations.local import Local
from ephyra.progress import QuietObserver

META = {"cloud": "c1", "hosts": ["cmp-1", "cmp-2"], "also_down": [], "settings": {}}


@pytest.fixture
def local(tmp_path: Path) -> Local:
    return Local(f"sqlite:///{tmp_path / 'journal.db'}", f"file://{tmp_path / 'locks'}")


def evacuation(local: Local, state: RunState, **more: Any) -> RunInfo:
    """An evacuation as an older journal kept it: no lock names with it."""
    meta = {"state": state.value, "phase": "forward", "created": time.time(), **META, **more}
    records = {"host:cmp-1": {"forward": "drained", "drain_seconds": 2.5}, "host:cmp-2": {}}
    return local.journal.create_run("evacuate", meta, records)


def test_each_action_targets_the_run_the_service_chooses(local: Local) -> None:
    paused = evacuation(local, RunState.PAUSED)
    done = evacuation(local, RunState.SUCCEEDED)
    evacuation(local, RunState.ROLLED_BACK)
    for action in ("resume", "pause", "abort"):
        assert local.target("evacuate", None, action).id == paused.id
        assert local.target("evacuate", "latest", action).id == paused.id
    assert local.target("evacuate", None, "rollback").id == done.id  # not the rolled back one
    with pytest.raises(IllegalTransition, match="nothing to resume"):
        local.target("evacuate", done.id, "resume")
    with pytest.raises(UsageError, match="no action 'explode' on a run"):
        local.target("evacuate", None, "explode")


def test_a_status_goes_out_as_the_kinds_json(local: Local) -> None:
    run = evacuation(local, RunState.PAUSED, reason="asked")
    status = local.status("evacuate", run.id)
    assert status == {
        "id": run.id,
        "state": "paused",
        "phase": "forward",
        "cloud": "c1",
        "reason": "asked",
        "counts": {},
        "hosts": [
            {
                "host": "cmp-1",
                "forward": "drained",
                "rollback": "",
                "drain_seconds": 2.5,
                "error": "",
            },
            {
                "host": "cmp-2",
                "forward": "pending",
                "rollback": "",
                "drain_seconds": None,
                "error": "",
            },
        ],
        "servers": [],
    }
    detail = local.run(run.id)
    assert detail["detail"] == status
    assert [(i["name"], i["state"]) for i in detail["items"]] == [
        ("cmp-1", "drained"),
        ("cmp-2", "pending"),
    ]


def test_an_old_run_is_paused_and_aborted_in_process(local: Local) -> None:
    run = evacuation(local, RunState.RUNNING)
    assert local.pause("evacuate", None) == f"run {run.short} had no live process; marked paused"
    message = local.abort("evacuate", run.id, QuietObserver())
    assert message == f"run {run.short} aborted; its hosts stay in maintenance until rollback"
    after = local.journal.run(run.id)
    assert after.state is RunState.ABORTED
    assert after.meta.get("locks") is None  # aborted without being driven: left as it was
